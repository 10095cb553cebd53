package org.retroinfer.wave;

import java.util.ArrayList;
import java.util.List;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The stored form of one (layer, KV head) of a wave context, and the one place that knows it: the
 * first {@link #sinks()} positions (attention sinks), then the index's segments (each a run of
 * consecutive positions, stored cluster-contiguous, so a position's row is not its position), then
 * the tail (positions {@link #tailStart()} onward, in order). Everything outside wave-core that reads
 * or rebuilds a wave cache goes through this type: the codec writes and restores it, the store
 * slices prefixes and composes documents with it, the explainer and the GPU layout read it.
 *
 * <p>A layout is a read-only view of a live {@link WaveHeadCache} ({@link #of}); it is valid while
 * the cache is open and unchanged. The operations that make new caches ({@link #prefix},
 * {@link #compose}, {@link Restorer}) leave their inputs unchanged.
 */
public final class HeadLayout {
  private final WaveHeadCache head;
  private int[] rowOfPosition; // indexed positions -> index rows, built on first use

  private HeadLayout(WaveHeadCache head) {
    this.head = head;
  }

  /** Whether {@code head} is a wave cache (one that has a layout). */
  public static boolean isWave(HeadCache head) {
    return head instanceof WaveHeadCache;
  }

  /**
   * The layout of a wave cache.
   *
   * @throws IllegalArgumentException if {@code head} is the cache of another attention method
   */
  public static HeadLayout of(HeadCache head) {
    if (!(head instanceof WaveHeadCache w)) {
      throw new IllegalArgumentException("a " + (head == null ? "null" : head.getClass()
          .getSimpleName()) + " has no wave layout: only caches of the attention method \"wave\""
          + " (AttentionBackends.create(\"wave\", config)) are stored, sliced and composed");
    }
    return new HeadLayout(w);
  }

  /** The cache this layout describes (for wave-core's own callers). */
  WaveHeadCache cache() {
    return head;
  }

  public WaveConfig config() {
    return head.config();
  }

  public int dim() {
    return head.headDim();
  }

  public int groupSize() {
    return head.groupSize();
  }

  public KvDType kvType() {
    return head.index().kvType();
  }

  /** Tokens held. */
  public int size() {
    return head.size();
  }

  /** Sink tokens: positions {@code [0, sinks())}. */
  public int sinks() {
    return head.sinkKeys().size();
  }

  /** Position of the first tail token; positions {@code [sinks(), tailStart())} are indexed. */
  public int tailStart() {
    return head.tailStart();
  }

  public boolean prefillDone() {
    return head.prefillDone();
  }

  /** Clusters, segments, centroids, sizes, value sums and postings (read-only use). */
  public WaveIndex index() {
    return head.index();
  }

  /** The mean key clustering centres on, or null before the first index build. */
  public float[] keyCentre() {
    return head.index().keyCentre();
  }

  /** Sink keys in position order (read-only use). */
  public VectorStore sinkKeys() {
    return head.sinkKeys();
  }

  public VectorStore sinkValues() {
    return head.sinkValues();
  }

  /** Tail keys in position order from {@link #tailStart()} (read-only use). */
  public VectorStore tailKeys() {
    return head.tailKeys();
  }

  public VectorStore tailValues() {
    return head.tailValues();
  }

  /** Tokens of the steady zone (sinks and tail), read exactly at every step. */
  public int steadyTokens() {
    return head.sinkKeys().size() + head.tailKeys().size();
  }

  /** The zones a query group would get now (what {@link HeadCache#attend} would read). */
  public ZonePlan planZones(float[] queries, int qOff) {
    return head.planZones(queries, qOff);
  }

  // ---- position -> row ----

  /** The row in {@link #index()}'s keys and values of indexed position {@code position}. */
  public int indexRow(int position) {
    int sinks = sinks();
    if (position < sinks || position >= tailStart()) {
      throw new IndexOutOfBoundsException("position " + position + " is not indexed: indexed"
          + " positions are [" + sinks + ", " + tailStart() + ")");
    }
    return rowOfPosition()[position - sinks];
  }

  private int[] rowOfPosition() {
    WaveIndex index = head.index();
    if (rowOfPosition == null || rowOfPosition.length != index.tokenCount()) {
      int base = sinks();
      int[] rows = new int[index.tokenCount()];
      for (int r = 0; r < rows.length; r++) {
        rows[index.position(r) - base] = r;
      }
      rowOfPosition = rows;
    }
    return rowOfPosition;
  }

  /** What a position is stored as: a row of one of the layout's stores. */
  public interface RowVisitor {
    /** Position {@code position} is row {@code row} of {@code keys} and {@code values}. */
    void row(int position, VectorStore keys, VectorStore values, int row);
  }

  /** Visits positions {@code [from, to)} in position order. */
  public void forEachRow(int from, int to, RowVisitor visitor) {
    if (from < 0 || to > size() || from > to) {
      throw new IndexOutOfBoundsException("positions [" + from + ", " + to + ") outside [0, "
          + size() + ")");
    }
    int sinks = sinks();
    int tailStart = tailStart();
    WaveIndex index = head.index();
    int[] rows = from < tailStart && to > sinks ? rowOfPosition() : null;
    for (int p = from; p < to; p++) {
      if (p < sinks) {
        visitor.row(p, head.sinkKeys(), head.sinkValues(), p);
      } else if (p < tailStart) {
        visitor.row(p, index.keys(), index.values(), rows[p - sinks]);
      } else {
        visitor.row(p, head.tailKeys(), head.tailValues(), p - tailStart);
      }
    }
  }

  /**
   * Copies the keys and values of positions {@code [from, to)} as float32 into
   * {@code keys/values[off + (p - from) * stride ..]} ({@link #dim()} floats per token).
   */
  public void read(int from, int to, float[] keys, float[] values, int off, int stride) {
    forEachRow(from, to, (p, k, v, row) -> {
      int at = off + (p - from) * stride;
      k.read(row, keys, at);
      v.read(row, values, at);
    });
  }

  /** Appends the rows of positions {@code [from, to)}, as bytes, to {@code keys} and {@code values}. */
  public void copyRows(int from, int to, VectorStore keys, VectorStore values) {
    forEachRow(from, to, (p, k, v, row) -> {
      keys.appendFrom(k, row, row + 1);
      values.appendFrom(v, row, row + 1);
    });
  }

  // ---- new caches from this one ----

  /**
   * A new cache holding the first {@code tokens} tokens: the sinks, every segment that lies wholly
   * inside the prefix (clusters, centroids and value sums kept, no re-clustering), and the rest of
   * the prefix (the cut segment's tokens, then tail tokens) as its tail, in position order. Its
   * prefill is open: appending more prompt tokens and calling {@code endPrefill()} clusters the
   * tail anew (the cut segment is rebuilt). Rows are copied as bytes.
   */
  public HeadCache prefix(int tokens) {
    if (tokens < 0 || tokens > size()) {
      throw new IllegalArgumentException("cannot cut a prefix of " + tokens + " tokens from a"
          + " context of " + size());
    }
    WaveConfig config = config();
    WaveIndex src = index();
    Restorer r = restoring(config, groupSize(), dim());
    boolean ok = false;
    try {
      int keptSinks = Math.min(tokens, sinks());
      r.sinkKeys.appendFrom(sinkKeys(), 0, keptSinks);
      r.sinkValues.appendFrom(sinkValues(), 0, keptSinks);
      int next = keptSinks;
      for (int s = 0; s < src.segmentCount(); s++) {
        int end = src.segmentFirstPosition(s) + src.segmentTokens(s);
        if (end > tokens) {
          break;
        }
        int row0 = src.clusterStart(src.segmentFirstCluster(s));
        r.index().addClusteredSegment(src.segment(s), src.keys(), src.values(), row0);
        next = end;
      }
      if (r.index().segmentCount() > 0 && src.keyCentre() != null) {
        // kept segments were centred on the stored context's mean key; rebuilt ones follow it
        r.index().setKeyCentre(src.keyCentre());
      }
      copyRows(next, tokens, r.tailKeys, r.tailValues);
      HeadCache h = r.build(false);
      ok = true;
      return h;
    } finally {
      if (!ok) {
        r.close();
      }
    }
  }

  /** Re-rotates keys to a new position: the model's positional encoding, given by the caller. */
  @FunctionalInterface
  public interface KeyShift {
    /** Turns {@code key[off .. off + dim)}, a key at position p, into the key at {@code p + shift}. */
    void shift(float[] key, int off, int shift);
  }

  /**
   * One cache from documents whose caches were each computed from position 0: document {@code k}
   * is placed after the ones before it, its keys shifted by that offset with {@code shift} and its
   * values kept. Every document segment keeps its clusters (a rotation maps a cluster's keys
   * together), with centroids and value sums recomputed from the stored shifted rows; the tokens
   * the documents did not index (their sinks and tails, between the documents) are clustered as
   * new segments, except the first document's sinks (the sinks) and the last one's tail (the tail).
   * The prefill is open: append the question, then {@code endPrefill()}.
   */
  public static HeadCache compose(List<HeadLayout> documents, KeyShift shift, WaveConfig config) {
    if (documents.isEmpty()) {
      throw new IllegalArgumentException("no documents to compose; give at least one");
    }
    int d = documents.getFirst().dim();
    int group = documents.getFirst().groupSize();
    KvDType type = config.kvType();
    int total = 0;
    for (HeadLayout doc : documents) {
      if (doc.dim() != d || doc.groupSize() != group) {
        throw new IllegalArgumentException("document heads of dim " + doc.dim() + ", group "
            + doc.groupSize() + " and of dim " + d + ", group " + group + " cannot be composed:"
            + " compose documents of one model");
      }
      total += doc.size();
    }
    // 1. Every token's stored key (shifted) and value, in composed position order.
    VectorStore keys = VectorStore.allocate(d, type, Math.max(1, total));
    VectorStore values = VectorStore.allocate(d, type, Math.max(1, total));
    Restorer r = restoring(config, group, d);
    boolean ok = false;
    try {
      int[] offsets = new int[documents.size()];
      int at = 0;
      for (int i = 0; i < documents.size(); i++) {
        HeadLayout doc = documents.get(i);
        offsets[i] = at;
        int n = doc.size();
        float[] k = new float[n * d];
        float[] v = new float[n * d];
        doc.read(0, n, k, v, 0, d);
        if (at > 0) {
          for (int p = 0; p < n; p++) {
            shift.shift(k, p * d, at);
          }
        }
        keys.appendAll(k, 0, n);
        values.appendAll(v, 0, n);
        at += n;
      }
      // 2. Sinks, the documents' own segments (moved and re-summarised), new segments for the
      //    loose tokens between them, and the tail.
      int sinks = Math.min(config.sinkTokens(), total);
      r.sinkKeys.appendFrom(keys, 0, sinks);
      r.sinkValues.appendFrom(values, 0, sinks);
      int next = sinks; // first composed position not yet placed
      for (int i = 0; i < documents.size(); i++) {
        WaveIndex src = documents.get(i).index();
        for (int s = 0; s < src.segmentCount(); s++) {
          int first = offsets[i] + src.segmentFirstPosition(s);
          if (first < next) {
            continue; // only for documents without sinks
          }
          clusterLoose(keys, values, next, first, config, r.index());
          ClusteredSegment old = src.segment(s);
          r.index().addSegment(summarise(old, first, keys, values), keys, values, first);
          next = first + old.tokens();
        }
      }
      r.tailKeys.appendFrom(keys, next, total);
      r.tailValues.appendFrom(values, next, total);
      HeadCache h = r.build(false);
      ok = true;
      return h;
    } finally {
      keys.close();
      values.close();
      if (!ok) {
        r.close();
      }
    }
  }

  /** Clusters positions {@code [from, to)} as new segments (nothing if empty). */
  private static void clusterLoose(VectorStore keys, VectorStore values, int from, int to,
      WaveConfig config, WaveIndex index) {
    if (to <= from) {
      return;
    }
    int start = from;
    for (int len : config.segmentLengths(to - from)) {
      ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, start, start + len, start,
          config.clustersFor(len), config.kmeansIterations());
      index.addSegment(seg, keys, values, start);
      start += len;
    }
  }

  /**
   * The segment {@code old} moved to {@code firstPosition}: same members and order, centroids and
   * value sums recomputed (in float64) from the stored rows of {@code keys}/{@code values}, which
   * are in composed position order. The estimate's Jensen bound needs each centroid to be the mean
   * of exactly the keys that are attended (rounded to the storage type after shifting).
   */
  static ClusteredSegment summarise(ClusteredSegment old, int firstPosition, VectorStore keys,
      VectorStore values) {
    int d = old.dim();
    int k = old.clusters();
    float[] cent = new float[k * d];
    float[] sums = new float[k * d];
    double[] ck = new double[d];
    double[] cv = new double[d];
    float[] row = new float[d];
    int[] order = old.order();
    int[] offs = old.offsets();
    for (int c = 0; c < k; c++) {
      java.util.Arrays.fill(ck, 0);
      java.util.Arrays.fill(cv, 0);
      for (int m = offs[c]; m < offs[c + 1]; m++) {
        int p = firstPosition + order[m];
        keys.read(p, row, 0);
        for (int t = 0; t < d; t++) {
          ck[t] += row[t];
        }
        values.read(p, row, 0);
        for (int t = 0; t < d; t++) {
          cv[t] += row[t];
        }
      }
      int size = offs[c + 1] - offs[c];
      for (int t = 0; t < d; t++) {
        cent[c * d + t] = (float) (ck[t] / size);
        sums[c * d + t] = (float) cv[t];
      }
    }
    return new ClusteredSegment(d, firstPosition, order.clone(), offs.clone(), cent, sums);
  }

  // ---- restoring from stored parts ----

  /** Starts putting a cache back together from its stored parts (see {@link Restorer}). */
  public static Restorer restoring(WaveConfig config, int groupSize, int dim) {
    return new Restorer(config, groupSize, dim);
  }

  /**
   * Puts a wave cache back together from stored parts, without re-clustering: the sinks' and the
   * tail's rows in position order, and the segments in position order, each with its clusters and
   * its cluster-contiguous rows. {@link #build} checks that the parts form a cache (sinks, then
   * segments, then tail, contiguous in position) and hands them over; {@link #close} frees what was
   * not handed over. Used by one thread.
   */
  public static final class Restorer implements AutoCloseable {
    private final WaveConfig config;
    private final int groupSize;
    private final int dim;
    final VectorStore sinkKeys;
    final VectorStore sinkValues;
    WaveIndex index; // created at the first segment that is copied, or at build
    final VectorStore tailKeys;
    final VectorStore tailValues;
    private final List<ClusteredSegment> inPlace = new ArrayList<>();
    private final List<VectorStore> inPlaceKeys = new ArrayList<>();
    private final List<VectorStore> inPlaceValues = new ArrayList<>();
    private int inPlaceTokens;
    private float[] centre;
    private boolean built;

    private Restorer(WaveConfig config, int groupSize, int dim) {
      this.config = config;
      this.groupSize = groupSize;
      this.dim = dim;
      KvDType type = config.kvType();
      this.sinkKeys = VectorStore.allocate(dim, type, Math.max(1, config.sinkTokens()));
      this.sinkValues = VectorStore.allocate(dim, type, Math.max(1, config.sinkTokens()));
      // room for the window and one update's decoded tokens: the most a tail holds in decode (a
      // prefill that goes on grows it); opening a context then zeroes no more memory than it uses
      int tail = config.windowTokens() + config.updateTokens() + 1;
      this.tailKeys = VectorStore.allocate(dim, type, tail);
      this.tailValues = VectorStore.allocate(dim, type, tail);
    }

    /** Sets the mean key the stored segments were centred on (null: none was stored). */
    public Restorer keyCentre(float[] centre) {
      if (centre != null) {
        if (index != null) {
          index.setKeyCentre(centre);
        }
        this.centre = centre.clone();
      }
      return this;
    }

    /** The index, made at first use: over the in-place segments given so far, if any. */
    WaveIndex index() {
      if (index == null) {
        KvDType type = config.kvType();
        // room for the first decode-time segment, so that it does not grow the stores
        int more = config.updateTokens();
        index = inPlace.isEmpty() ? WaveIndex.empty(dim, type)
            : WaveIndex.inPlace(dim, type, inPlace, inPlaceKeys, inPlaceValues, more);
        if (centre != null) {
          index.setKeyCentre(centre);
        }
      }
      return index;
    }

    /** Appends rows {@code [from, to)} of {@code keys}/{@code values} as the next sink tokens. */
    public Restorer sinks(VectorStore keys, VectorStore values, int from, int to) {
      sinkKeys.appendFrom(keys, from, to);
      sinkValues.appendFrom(values, from, to);
      return this;
    }

    /**
     * Adds the next segment: {@code segment}'s clusters, whose rows are rows
     * {@code [0, segment.tokens())} of {@code keys}/{@code values} in cluster-contiguous order.
     */
    public Restorer segment(ClusteredSegment segment, VectorStore keys, VectorStore values) {
      index().addClusteredSegment(segment, keys, values, 0);
      return this;
    }

    /**
     * Adds the next segment like {@link #segment}, but reads its rows in place: nothing is copied,
     * and the cache reads {@code keys}/{@code values} for as long as it lives (the caller keeps
     * their memory valid until the cache is closed). Only before any segment is copied.
     */
    public Restorer segmentInPlace(ClusteredSegment segment, VectorStore keys,
        VectorStore values) {
      if (index != null) {
        throw new IllegalStateException("segments read in place must come before the copied ones");
      }
      if (segment.dim() != dim || keys.dim() != dim || values.dim() != dim
          || keys.type() != config.kvType() || values.type() != config.kvType()) {
        throw new IllegalArgumentException("segment of dim " + segment.dim() + " with blocks of "
            + keys.dim() + " x " + keys.type() + " does not match " + dim + " x "
            + config.kvType());
      }
      inPlace.add(segment);
      inPlaceKeys.add(keys);
      inPlaceValues.add(values);
      inPlaceTokens += segment.tokens();
      return this;
    }

    /** Appends rows {@code [from, to)} of {@code keys}/{@code values} as the next tail tokens. */
    public Restorer tail(VectorStore keys, VectorStore values, int from, int to) {
      tailKeys.appendFrom(keys, from, to);
      tailValues.appendFrom(values, from, to);
      return this;
    }

    /** Tokens indexed so far: the tail starts at {@code sinks + indexedTokens()}. */
    public int indexedTokens() {
      return index == null ? inPlaceTokens : index.tokenCount();
    }

    /**
     * The cache, which now owns every part.
     *
     * @throws IllegalArgumentException if the parts do not form a wave cache (the message says
     *     which part is wrong)
     */
    public HeadCache build(boolean prefillDone) {
      if (built) {
        throw new IllegalStateException("this restorer has built its cache already");
      }
      WaveHeadCache h = WaveHeadCache.restore(config, groupSize, sinkKeys, sinkValues, index(),
          tailKeys, tailValues, prefillDone);
      built = true;
      return h;
    }

    public int dim() {
      return dim;
    }

    /** Frees the parts unless {@link #build} handed them over. */
    @Override
    public void close() {
      if (!built) {
        sinkKeys.close();
        sinkValues.close();
        if (index != null) {
          index.close();
        }
        tailKeys.close();
        tailValues.close();
        built = true;
      }
    }
  }
}
