package org.retroinfer.wave;

import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.SoftmaxState;
import org.retroinfer.wave.index.ClusterRanking;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The wave-attention cache of one (layer, KV head): tripartite attention over a wave index.
 *
 * <p>Every token is in exactly one place: the first S tokens (sinks) and the tail (tokens after the
 * last indexed segment: the window of the last W tokens and those decoded since the last update)
 * form the steady zone, read exactly; everything else is in the {@link WaveIndex}. Per query group
 * the index's clusters are ranked; the top r are read exactly (retrieval zone), the next e are
 * estimated from centroid, size and value sum (estimation zone), the rest skipped; exact and
 * estimated parts are combined with the log-sum-exp merge of {@link SoftmaxState}.
 *
 * <p>{@link #endPrefill()} clusters all but the last W tokens of the prompt, segment by segment,
 * each centred on the mean key of all of them (the head's mean key, kept in the index).
 * Afterwards, whenever the tail reaches W + U tokens, its oldest U tokens become one new segment of
 * U / tokensPerCluster clusters; old segments are never re-clustered. Contexts shorter than
 * S + W + U have no index and are attended exactly.
 */
public final class WaveHeadCache implements HeadCache {
  private final WaveConfig config;
  private final int dim;
  private final int groupSize;
  private final float scale;
  private final VectorStore sinkKeys;
  private final VectorStore sinkValues;
  private final VectorStore tailKeys;
  private final VectorStore tailValues;
  private final WaveIndex index;
  private boolean prefillDone;

  private final ClusterRanking ranking;
  private final ZonePlan plan = new ZonePlan();
  private final SoftmaxState exact;
  private final SoftmaxState estimated;
  private float[] estLogits = new float[0];
  private float[] estWeights = new float[0];
  private int[] estIds = new int[0];
  private int[] rangeStarts = new int[0];
  private int[] rangeEnds = new int[0];
  private final double[] steadyLogMass;
  private int lastExact;

  /** An empty cache. */
  public WaveHeadCache(WaveConfig config, int dim, int groupSize) {
    this(config, dim, groupSize,
        VectorStore.allocate(dim, config.kvType(), Math.max(1, config.sinkTokens())),
        VectorStore.allocate(dim, config.kvType(), Math.max(1, config.sinkTokens())),
        WaveIndex.empty(dim, config.kvType()),
        VectorStore.allocate(dim, config.kvType(), 4096),
        VectorStore.allocate(dim, config.kvType(), 4096),
        false);
  }

  private WaveHeadCache(WaveConfig config, int dim, int groupSize, VectorStore sinkKeys,
      VectorStore sinkValues, WaveIndex index, VectorStore tailKeys, VectorStore tailValues,
      boolean prefillDone) {
    if (dim <= 0 || groupSize <= 0) {
      throw new IllegalArgumentException("head dim and group size must be positive, got " + dim
          + " and " + groupSize);
    }
    this.config = config;
    this.dim = dim;
    this.groupSize = groupSize;
    this.scale = (float) (1.0 / Math.sqrt(dim));
    this.sinkKeys = sinkKeys;
    this.sinkValues = sinkValues;
    this.index = index;
    this.tailKeys = tailKeys;
    this.tailValues = tailValues;
    this.prefillDone = prefillDone;
    this.ranking = new ClusterRanking(groupSize);
    this.exact = new SoftmaxState(groupSize, dim);
    this.estimated = new SoftmaxState(groupSize, dim);
    this.steadyLogMass = new double[groupSize];
    fitScratch();
  }

  /**
   * A cache put back together from its parts (e.g. read from a store), without re-clustering. The
   * cache takes ownership of the stores and the index. Tokens: {@code sinkKeys.size()} sinks, then
   * the index's segments, then the tail, contiguous in position.
   */
  public static WaveHeadCache restore(WaveConfig config, int groupSize, VectorStore sinkKeys,
      VectorStore sinkValues, WaveIndex index, VectorStore tailKeys, VectorStore tailValues,
      boolean prefillDone) {
    int dim = index.dim();
    for (VectorStore s : new VectorStore[] {sinkKeys, sinkValues, tailKeys, tailValues}) {
      if (s.dim() != dim || s.type() != index.kvType()) {
        throw new IllegalArgumentException("store " + s + " does not match the index's "
            + dim + " x " + index.kvType());
      }
    }
    if (sinkKeys.size() != sinkValues.size() || tailKeys.size() != tailValues.size()) {
      throw new IllegalArgumentException("key and value row counts differ");
    }
    if (sinkKeys.size() > config.sinkTokens()
        || (sinkKeys.size() < config.sinkTokens() && index.tokenCount() + tailKeys.size() > 0)) {
      throw new IllegalArgumentException(sinkKeys.size() + " sink tokens do not match the"
          + " configuration's " + config.sinkTokens());
    }
    int expect = sinkKeys.size();
    for (int s = 0; s < index.segmentCount(); s++) {
      if (index.segmentFirstPosition(s) != expect) {
        throw new IllegalArgumentException("segment " + s + " starts at position "
            + index.segmentFirstPosition(s) + ", expected " + expect);
      }
      expect += index.segmentTokens(s);
    }
    return new WaveHeadCache(config, dim, groupSize, sinkKeys, sinkValues, index, tailKeys,
        tailValues, prefillDone);
  }

  public WaveConfig config() {
    return config;
  }

  @Override
  public int headDim() {
    return dim;
  }

  @Override
  public int groupSize() {
    return groupSize;
  }

  @Override
  public int size() {
    return sinkKeys.size() + index.tokenCount() + tailKeys.size();
  }

  /** The index (read-only use). */
  public WaveIndex index() {
    return index;
  }

  /** Sink keys, position order (read-only use). */
  public VectorStore sinkKeys() {
    return sinkKeys;
  }

  public VectorStore sinkValues() {
    return sinkValues;
  }

  /** Tail keys: positions {@link #tailStart()} onward, in order (read-only use). */
  public VectorStore tailKeys() {
    return tailKeys;
  }

  public VectorStore tailValues() {
    return tailValues;
  }

  /** Position of the first tail token. */
  public int tailStart() {
    return sinkKeys.size() + index.tokenCount();
  }

  public boolean prefillDone() {
    return prefillDone;
  }

  @Override
  public void append(float[] key, int keyOff, float[] value, int valueOff) {
    boolean sink = sinkKeys.size() < config.sinkTokens();
    VectorStore k = sink ? sinkKeys : tailKeys;
    VectorStore v = sink ? sinkValues : tailValues;
    k.append(key, keyOff);
    try {
      v.append(value, valueOff);
    } catch (RuntimeException e) {
      k.removeLast();
      throw e;
    }
    if (prefillDone && tailIsFull(tailKeys.size())) {
      indexTail(new int[] {config.updateTokens()});
    }
  }

  @Override
  public boolean nextAppendIsHeavy() {
    return prefillDone && sinkKeys.size() >= config.sinkTokens() && tailIsFull(tailKeys.size() + 1);
  }

  /**
   * Whether a tail of {@code tokens} holds a segment's worth beyond the window: the point where
   * the prompt gets an index, and where decoding adds a segment to it.
   */
  private boolean tailIsFull(int tokens) {
    return tokens >= config.windowTokens() + config.updateTokens();
  }

  @Override
  public void endPrefill() {
    if (prefillDone) {
      return;
    }
    prefillDone = true;
    if (tailIsFull(tailKeys.size())) {
      // room for the prompt's rows and the next decode-time segments up front: growing the
      // cluster-contiguous stores later copies all of them inside one decode step
      int indexed = tailKeys.size() - config.windowTokens();
      int rows = (int) Math.min(Integer.MAX_VALUE - 8,
          (long) index.keys().size() + indexed + Math.max(indexed / 2, 4L * config.updateTokens()));
      index.keys().reserve(rows);
      index.values().reserve(rows);
      indexTail(config.segmentLengths(indexed));
    }
  }

  /** Clusters the oldest tail tokens as consecutive segments of the given lengths. */
  private void indexTail(int[] segmentLengths) {
    int base = tailStart();
    int from = 0;
    if (index.keyCentre() == null) {
      // The first build fixes the head's mean key; every later segment is centred on it too.
      int total = 0;
      for (int len : segmentLengths) {
        total += len;
      }
      index.setKeyCentre(SegmentedKMeans.meanKey(tailKeys, 0, total));
    }
    float[] centre = index.keyCentre();
    for (int len : segmentLengths) {
      ClusteredSegment seg = SegmentedKMeans.cluster(tailKeys, tailValues, from, from + len,
          base + from, config.clustersFor(len), config.kmeansIterations(), centre);
      index.addSegment(seg, tailKeys, tailValues, from);
      from += len;
    }
    tailKeys.removeFirst(from);
    tailValues.removeFirst(from);
    fitScratch();
  }

  /**
   * Sizes every scratch array of {@link #attend} for the index as it now is: the zones' cluster
   * counts and the most rows the retrieval zone can hold (its r largest clusters). Called whenever
   * the index changes, so that attend never allocates. It matters beyond allocation: a growth
   * branch that a compiled decode step had never seen taken (only a new cache's first step takes
   * it) sends the step back to the interpreter and makes C2 recompile it: about 100 ms of compiler
   * time that took the second core away from the decode. In the demo, when that landed in the
   * timed pass, wave's median step went from about 1.2 ms to 2.7-2.9 ms.
   */
  private void fitScratch() {
    int clusters = index.clusterCount();
    if (clusters == 0) {
      return;
    }
    int r = config.retrievalClusters(clusters);
    int e = config.estimationClusters(clusters);
    ranking.reserve(clusters);
    plan.reserve(r, e);
    if (rangeStarts.length < r) {
      rangeStarts = new int[r];
      rangeEnds = new int[r];
    }
    if (estWeights.length < e) {
      estWeights = new float[e];
      estLogits = new float[groupSize * e];
      estIds = new int[e];
    }
    int[] sizes = new int[clusters];
    for (int c = 0; c < clusters; c++) {
      sizes[c] = index.clusterSize(c);
    }
    java.util.Arrays.sort(sizes);
    long rows = 0;
    for (int i = 0; i < r; i++) {
      rows += sizes[clusters - 1 - i];
    }
    exact.reserveRows((int) rows);
  }

  /** The scratch of {@link #attend}, for tests: arrays by identity, then the gather capacity. */
  Object[] scratch() {
    return new Object[] {rangeStarts, rangeEnds, estWeights, estLogits, estIds, ranking.logits(),
        exact.reservedRows()};
  }

  /**
   * Plans the zones for a query group without attending: which clusters would be retrieved and
   * estimated. For inspection; {@link #attend} does the same internally.
   */
  public ZonePlan planZones(float[] queries, int qOff) {
    if (config.adaptive()) {
      exact.reset();
      absorbSteady(queries, qOff);
    }
    planInto(queries, qOff);
    return plan.copy();
  }

  /** The steady zone (sinks and tail) into the exact part. */
  private void absorbSteady(float[] queries, int qOff) {
    exact.absorbRange(sinkKeys, sinkValues, 0, sinkKeys.size(), queries, qOff, scale);
    exact.absorbRange(tailKeys, tailValues, 0, tailKeys.size(), queries, qOff, scale);
  }

  /** Plans the zones; in ADAPTIVE mode after the steady zone was absorbed into {@code exact}. */
  private void planInto(float[] queries, int qOff) {
    int clusters = index.clusterCount();
    if (config.adaptive()) {
      boolean none = exact.isEmpty();
      for (int h = 0; h < groupSize; h++) {
        steadyLogMass[h] = none ? Double.NEGATIVE_INFINITY : exact.logMass(h);
      }
      ranking.planAdaptive(index, queries, qOff, scale, steadyLogMass, config.retrievalError(),
          config.estimationMass(), config.minRetrievalClusters(clusters),
          config.retrievalClusters(clusters), config.estimationClusters(clusters), plan);
    } else {
      ranking.plan(index, queries, qOff, scale, config.retrievalClusters(clusters),
          config.estimationClusters(clusters), plan);
    }
  }

  /** The last plan of {@link #attend} (read-only use; overwritten by the next attend). */
  public ZonePlan lastPlan() {
    return plan;
  }

  /**
   * Where the cache-line touches of the retrieved clusters go: a field write keeps the JIT from
   * dropping the loads. The touches start every cluster's fetch before the steady zone's arithmetic
   * and the clusters' own; without them each ~2 KiB cluster read paid its own memory latency.
   */
  private long touchSink;

  @Override
  public void attend(float[] queries, int qOff, float[] out, int outOff) {
    exact.reset();
    int exactTokens = sinkKeys.size() + tailKeys.size();
    boolean indexed = index.clusterCount() > 0;
    VectorStore keys = index.keys();
    VectorStore values = index.values();
    int r = 0;
    boolean steadyFirst = indexed && config.adaptive(); // the plan weighs the steady zone's mass
    if (steadyFirst) {
      absorbSteady(queries, qOff);
    }
    if (indexed) {
      planInto(queries, qOff);
      r = plan.retrievedCount(); // fitScratch sized the arrays for this index
      long touched = 0;
      for (int i = 0; i < r; i++) {
        int c = plan.retrieved(i);
        rangeStarts[i] = index.clusterStart(c);
        rangeEnds[i] = index.clusterStart(c + 1);
        exactTokens += rangeEnds[i] - rangeStarts[i];
        touched ^= keys.touch(rangeStarts[i], rangeEnds[i])
            ^ values.touch(rangeStarts[i], rangeEnds[i]);
      }
      touchSink = touched;
    }
    if (!steadyFirst) {
      absorbSteady(queries, qOff);
    }
    if (indexed) {
      exact.absorbRanges(keys, values, rangeStarts, rangeEnds, r, queries, qOff, scale);
      int e = plan.estimatedCount();
      if (e > 0) {
        int[] ids = estIds;
        float[] logits = ranking.logits();
        int stride = ranking.logitStride();
        int es = estWeights.length;
        for (int i = 0; i < e; i++) {
          int c = plan.estimated(i);
          ids[i] = c;
          estWeights[i] = index.clusterSize(c);
          for (int h = 0; h < groupSize; h++) {
            estLogits[h * es + i] = logits[h * stride + c];
          }
        }
        estimated.reset();
        estimated.absorbRows(index.valueSums(), ids, e, estLogits, 0, es, estWeights);
        exact.merge(estimated);
      }
    }
    exact.writeOutput(out, outOff);
    lastExact = exactTokens;
  }

  @Override
  public int lastExactTokens() {
    return lastExact;
  }

  @Override
  public long memoryBytes() {
    return sinkKeys.capacityBytes() + sinkValues.capacityBytes() + tailKeys.capacityBytes()
        + tailValues.capacityBytes() + index.memoryBytes();
  }

  @Override
  public void close() {
    sinkKeys.close();
    sinkValues.close();
    tailKeys.close();
    tailValues.close();
    index.close();
  }
}
