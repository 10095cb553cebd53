package org.retroinfer.wave.index;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;
import org.roaringbitmap.RoaringBitmap;

/**
 * The meta index of one (layer, KV head): the clusters of every segment, in the order segments were
 * added, with their keys and values stored cluster-contiguous.
 *
 * <p>Global cluster ids run over all segments. Per cluster {@code c}: its centroid (the mean of its
 * keys, float32), its size, its value sum (float32), and its postings (member token positions).
 * Row {@code r} of {@link #keys()} / {@link #values()} is the token at position {@link #position(int)
 * position(r)}; cluster {@code c} is rows {@code [clusterStart(c), clusterStart(c + 1))}, one
 * sequential read.
 *
 * <p>Written by one thread (segments are only ever added, never re-clustered); readable by many
 * while nobody adds.
 */
public final class WaveIndex implements AutoCloseable {
  private final int dim;
  private final VectorStore keys;
  private final VectorStore values;
  private final VectorStore centroids;
  private final VectorStore valueSums;
  private int[] clusterStart = new int[] {0};
  private int[] positions = new int[0];
  private int[] segmentFirstCluster = new int[] {0};
  private int[] segmentFirstPosition = new int[0];
  private int[] segmentTokens = new int[0];
  private float[] sizes = new float[0];
  /** Per cluster: the mean squared distance of its keys to its centroid. */
  private float[] spreads = new float[0];
  /** Per dimension: the sum over indexed keys of (k - C)^2. */
  private double[] deviationSums;
  /** Per segment, its share of {@link #deviationSums} (kept so that a segment can be stored). */
  private double[][] segmentDeviations = new double[0][];
  private float[] spreadShape = new float[0];
  private int clusters;
  private int segments;
  private float[] keyCentre;
  /**
   * The centroids again, lane-blocked for ranking (KvKernels.blockedScores) and stored as the
   * keys' type, so that 16-bit K/V rank from half the bytes: one row per block of {@link
   * KvKernels#lanes()} clusters and dimension, its lanes the block's clusters. Off-heap like the
   * K/V: the load helpers that read it are shared with the attention kernels, and a heap segment
   * there made their segment type profile polymorphic (measured: full attention's decode steps
   * 1.7x slower with the copy in a heap array).
   */
  private final VectorStore blockedCentroids;

  private WaveIndex(int dim, VectorStore keys, VectorStore values, int clusterCapacity) {
    this.dim = dim;
    this.keys = keys;
    this.values = values;
    int lanes = KvKernels.lanes();
    this.centroids = VectorStore.allocate(dim, KvDType.FLOAT32, clusterCapacity);
    this.valueSums = VectorStore.allocate(dim, KvDType.FLOAT32, clusterCapacity);
    this.blockedCentroids = VectorStore.allocate(lanes, keys.type(),
        (clusterCapacity + lanes - 1) / lanes * dim);
  }

  /** An index with no clusters, for keys and values of {@code dim} stored as {@code type}. */
  public static WaveIndex empty(int dim, KvDType type) {
    return new WaveIndex(dim, VectorStore.allocate(dim, type, 4096),
        VectorStore.allocate(dim, type, 4096), 256);
  }

  /**
   * An index of segments whose keys and values are already cluster-contiguous in memory owned by
   * someone else (a context's mapped files): segment {@code i}'s rows are read in place from
   * {@code keys.get(i)} / {@code values.get(i)} (nothing is copied), which the caller keeps alive
   * until the index is closed. Segments added later are stored in memory the index owns.
   */
  public static WaveIndex inPlace(int dim, KvDType type, List<ClusteredSegment> segments,
      List<VectorStore> keys, List<VectorStore> values, int moreRows) {
    if (segments.size() != keys.size() || segments.size() != values.size()) {
      throw new IllegalArgumentException(segments.size() + " segments with " + keys.size()
          + " key and " + values.size() + " value blocks; give one of each per segment");
    }
    for (int i = 0; i < segments.size(); i++) {
      int n = segments.get(i).tokens();
      if (keys.get(i).size() != n || values.get(i).size() != n) {
        throw new IllegalArgumentException("segment " + i + " has " + n + " tokens, its blocks "
            + keys.get(i).size() + " key and " + values.get(i).size() + " value rows");
      }
    }
    VectorStore k = VectorStore.over(keys, dim, type, moreRows);
    VectorStore v;
    try {
      v = VectorStore.over(values, dim, type, moreRows);
    } catch (RuntimeException e) {
      k.close();
      throw e;
    }
    int total = 0;
    for (ClusteredSegment seg : segments) {
      total += seg.clusters();
    }
    // the summary stores sized for the segments (and a decode-time update or so): no doubling
    WaveIndex index = new WaveIndex(dim, k, v, total + 128);
    try {
      int row = 0;
      for (ClusteredSegment seg : segments) {
        index.checkSegment(seg);
        index.addSummaries(seg, row, false);
        row += seg.tokens();
      }
      return index;
    } catch (RuntimeException e) {
      index.close();
      throw e;
    }
  }

  /**
   * Adds a clustered segment whose tokens are rows {@code [srcFrom, srcFrom + segment.tokens())} of
   * {@code srcKeys}/{@code srcValues} (position order); their rows are copied cluster-contiguous.
   */
  public void addSegment(ClusteredSegment segment, VectorStore srcKeys, VectorStore srcValues,
      int srcFrom) {
    checkSegment(segment);
    int[] order = segment.order();
    int rowBase = keys.size();
    for (int m = 0; m < order.length; m++) {
      keys.appendFrom(srcKeys, srcFrom + order[m], srcFrom + order[m] + 1);
      values.appendFrom(srcValues, srcFrom + order[m], srcFrom + order[m] + 1);
    }
    addSummaries(segment, rowBase, true);
  }

  /**
   * Adds a segment whose keys and values are already cluster-contiguous (e.g. read back from disk):
   * rows {@code [from, from + segment.tokens())} of {@code clusteredKeys}/{@code clusteredValues}
   * are in the order of {@code segment.order()}.
   */
  public void addClusteredSegment(ClusteredSegment segment, VectorStore clusteredKeys,
      VectorStore clusteredValues, int from) {
    checkSegment(segment);
    int rowBase = keys.size();
    keys.appendFrom(clusteredKeys, from, from + segment.tokens());
    values.appendFrom(clusteredValues, from, from + segment.tokens());
    addSummaries(segment, rowBase, false);
  }

  private void checkSegment(ClusteredSegment segment) {
    if (segment.dim() != dim) {
      throw new IllegalArgumentException("segment of head dim " + segment.dim()
          + " does not match the index's head dim " + dim);
    }
  }

  /**
   * Adds a segment's summaries. {@code newlyClustered}: its value sums were just computed (they
   * overflow float32 only for values near its limit, and are checked); otherwise they were read
   * back by the codec, which checks them when it opens a segment, or taken from an index.
   */
  private void addSummaries(ClusteredSegment segment, int rowBase, boolean newlyClustered) {
    int k = segment.clusters();
    int[] offsets = segment.offsets();
    clusterStart = ensure(clusterStart, clusters + k + 1);
    sizes = Arrays.copyOf(sizes, clusters + k); // exact length: ranking reads all of it
    spreads = Arrays.copyOf(spreads, clusters + k);
    for (int c = 0; c < k; c++) {
      clusterStart[clusters + c + 1] = rowBase + offsets[c + 1];
      sizes[clusters + c] = offsets[c + 1] - offsets[c];
    }
    addSpreads(segment, rowBase);
    // centroids are means of finite rows, so finite; value sums are checked where they are made
    centroids.appendFinite(segment.centroids(), 0, k);
    addBlocked(segment.centroids(), k);
    if (newlyClustered) {
      valueSums.appendAll(segment.valueSums(), 0, k);
    } else {
      valueSums.appendFinite(segment.valueSums(), 0, k);
    }
    int[] order = segment.order();
    positions = ensure(positions, rowBase + order.length);
    for (int m = 0; m < order.length; m++) {
      positions[rowBase + m] = segment.firstPosition() + order[m];
    }
    segmentFirstCluster = ensure(segmentFirstCluster, segments + 2);
    segmentFirstPosition = ensure(segmentFirstPosition, segments + 1);
    segmentTokens = ensure(segmentTokens, segments + 1);
    segmentFirstPosition[segments] = segment.firstPosition();
    segmentTokens[segments] = segment.tokens();
    clusters += k;
    segments++;
    segmentFirstCluster[segments] = clusters;
  }

  /**
   * Writes the {@code k} new centroids into the blocked copy after the {@code clusters} already
   * there: the last block may be shared with the previous segment's clusters.
   */
  private void addBlocked(float[] cent, int k) {
    int lanes = KvKernels.lanes();
    int firstBlock = clusters / lanes;
    int endBlock = (clusters + k + lanes - 1) / lanes;
    int have = blockedCentroids.size() / dim; // blocks already there (the last may be shared)
    // The blocks from firstBlock on, as they will be: the shared block's earlier lanes kept.
    float[] blocked = new float[(endBlock - firstBlock) * dim * lanes];
    if (firstBlock < have) {
      blockedCentroids.readRows(firstBlock * dim, have * dim, blocked, 0);
    }
    for (int c = 0; c < k; c++) {
      int g = clusters + c; // global cluster id
      int at = (g / lanes - firstBlock) * dim * lanes + g % lanes;
      for (int t = 0; t < dim; t++) {
        blocked[at + t * lanes] = cent[c * dim + t];
      }
    }
    int keep = Math.min(have, firstBlock) * dim;
    while (blockedCentroids.size() > keep) {
      blockedCentroids.removeLast();
    }
    blockedCentroids.appendFinite(blocked, 0, (endBlock - firstBlock) * dim);
  }

  /**
   * The spread statistics of a new segment's clusters: the ones it carries (stored with it), else
   * computed from its keys as stored (rows {@code rowBase} onward) by {@link ClusterSpreads#of}.
   * Per cluster, the mean squared distance to its centroid; per dimension, the squared deviations
   * summed over all indexed keys (the shape of the within-cluster spread), segment by segment.
   */
  private void addSpreads(ClusteredSegment segment, int rowBase) {
    ClusterSpreads s = segment.spreads() != null ? segment.spreads()
        : ClusterSpreads.of(keys, rowBase, segment.offsets(), segment.centroids());
    if (deviationSums == null) {
      deviationSums = new double[dim];
    }
    System.arraycopy(s.spreads(), 0, spreads, clusters, s.clusters());
    double[] seg = s.deviationSums();
    for (int t = 0; t < dim; t++) {
      deviationSums[t] += seg[t];
    }
    segmentDeviations = Arrays.copyOf(segmentDeviations, segments + 1);
    segmentDeviations[segments] = seg.clone();
    double trace = 0;
    for (double v : deviationSums) {
      trace += v;
    }
    spreadShape = new float[dim];
    for (int t = 0; t < dim; t++) {
      spreadShape[t] = trace > 0 ? (float) (deviationSums[t] / trace) : 1f / dim;
    }
  }

  private static int[] ensure(int[] a, int length) {
    return a.length >= length ? a : Arrays.copyOf(a, Math.max(length, a.length * 2));
  }

  public int dim() {
    return dim;
  }

  /**
   * The mean key that clustering centres keys on before spherical k-means, fixed by the first index
   * build of the head (the indexed prompt tokens) and reused by every later segment; null until
   * set. Persisted with the index so that decode-time updates after a reload cluster the same way.
   */
  public float[] keyCentre() {
    return keyCentre == null ? null : keyCentre.clone();
  }

  /** Sets the {@link #keyCentre()}; once set it may only be set again to the same vector. */
  public void setKeyCentre(float[] centre) {
    if (centre.length != dim) {
      throw new IllegalArgumentException("key centre of dim " + centre.length
          + " does not match the index's head dim " + dim);
    }
    for (float c : centre) {
      if (!Float.isFinite(c)) {
        throw new IllegalArgumentException("key centre has a non-finite component " + c);
      }
    }
    if (keyCentre != null && !Arrays.equals(keyCentre, centre)) {
      throw new IllegalStateException("the index's key centre is already set to another vector;"
          + " segments of one index share one centre");
    }
    keyCentre = centre.clone();
  }

  public KvDType kvType() {
    return keys.type();
  }

  /** Total clusters over all segments. */
  public int clusterCount() {
    return clusters;
  }

  /** Total indexed tokens. */
  public int tokenCount() {
    return keys.size();
  }

  public int segmentCount() {
    return segments;
  }

  /** First global cluster id of segment {@code s}; {@code s == segmentCount()} gives the total. */
  public int segmentFirstCluster(int s) {
    return segmentFirstCluster[s];
  }

  /** Position of the first token of segment {@code s}. */
  public int segmentFirstPosition(int s) {
    return segmentFirstPosition[s];
  }

  /** Tokens in segment {@code s}. */
  public int segmentTokens(int s) {
    return segmentTokens[s];
  }

  /** First row of cluster {@code c} in {@link #keys()}; {@code c == clusterCount()} gives the end. */
  public int clusterStart(int c) {
    return clusterStart[c];
  }

  /** Tokens in cluster {@code c}. */
  public int clusterSize(int c) {
    return clusterStart[c + 1] - clusterStart[c];
  }


  /** Every cluster's size as a float, by cluster id (read-only use; replaced when a segment is added). */
  public float[] sizes() {
    return sizes;
  }

  /**
   * Per cluster: the mean squared distance of its keys (as stored) to its centroid, by cluster id
   * (read-only use; replaced when a segment is added). With {@link #spreadShape()} it models how
   * far a query's logits over a cluster's keys spread around the centroid's logit.
   */
  public float[] spreads() {
    return spreads;
  }

  /**
   * Per dimension, the share of the keys' within-cluster squared deviation that lies along it,
   * pooled over all clusters (sums to 1; read-only use). A cluster's deviations are modelled as
   * {@code spreads()[c]} spread over the dimensions in these shares, so a query {@code q}'s logits
   * over cluster {@code c} have variance {@code scale^2 * spreads()[c] * sum_t shape[t] q_t^2}.
   */
  public float[] spreadShape() {
    return spreadShape;
  }

  /** Token position of row {@code row}. */
  public int position(int row) {
    return positions[row];
  }

  /** Member positions of cluster {@code c}, ascending. */
  public int[] positions(int c) {
    return Arrays.copyOfRange(positions, clusterStart[c], clusterStart[c + 1]);
  }

  /** Member positions of cluster {@code c} as a bitmap: the cluster's postings. */
  public RoaringBitmap postings(int c) {
    return RoaringBitmap.bitmapOf(positions(c));
  }

  /** Keys, cluster-contiguous. */
  public VectorStore keys() {
    return keys;
  }

  /** Values, cluster-contiguous. */
  public VectorStore values() {
    return values;
  }

  /** Centroids, one float32 row per cluster. */
  public VectorStore centroids() {
    return centroids;
  }

  /**
   * The centroids lane-blocked for {@link org.retroinfer.wave.math.KvKernels#blockedScores}, as
   * {@link #rankingType()} (read-only use; valid until the next segment is added).
   */
  public MemorySegment blockedCentroids() {
    return blockedCentroids.memory();
  }

  /**
   * The type ranking reads centroids in: the keys' type. A centroid rounded to 16 bits is as
   * precise as the keys it summarises, and ranking (the largest read of wave attention at long
   * contexts) reads half the bytes. {@link #centroids()} keeps them in float32.
   */
  public KvDType rankingType() {
    return blockedCentroids.type();
  }

  /** Centroid component {@code t} of cluster {@code c} as ranking reads it. */
  public float rankingCentroid(int c, int t) {
    if (c < 0 || c >= clusters) {
      throw new IndexOutOfBoundsException("cluster " + c + " outside [0, " + clusters + ")");
    }
    int lanes = KvKernels.lanes();
    return blockedCentroids.get(c / lanes * dim + t, c % lanes);
  }

  /** Value sums, one float32 row per cluster. */
  public VectorStore valueSums() {
    return valueSums;
  }

  /** The summary of segment {@code s} as it was added (for persistence). */
  public ClusteredSegment segment(int s) {
    int c0 = segmentFirstCluster[s];
    int c1 = segmentFirstCluster[s + 1];
    int row0 = clusterStart[c0];
    int first = segmentFirstPosition[s];
    int[] order = new int[segmentTokens[s]];
    for (int m = 0; m < order.length; m++) {
      order[m] = positions[row0 + m] - first;
    }
    int[] offsets = new int[c1 - c0 + 1];
    for (int c = c0; c <= c1; c++) {
      offsets[c - c0] = clusterStart[c] - row0;
    }
    float[] cent = new float[(c1 - c0) * dim];
    float[] sums = new float[(c1 - c0) * dim];
    for (int c = c0; c < c1; c++) {
      centroids.read(c, cent, (c - c0) * dim);
      valueSums.read(c, sums, (c - c0) * dim);
    }
    return new ClusteredSegment(dim, first, order, offsets, cent, sums,
        new ClusterSpreads(Arrays.copyOfRange(spreads, c0, c1), segmentDeviations[s].clone()));
  }

  /** Off-heap bytes held. */
  public long memoryBytes() {
    return keys.capacityBytes() + values.capacityBytes() + centroids.capacityBytes()
        + valueSums.capacityBytes() + blockedCentroids.capacityBytes();
  }

  @Override
  public void close() {
    keys.close();
    values.close();
    centroids.close();
    valueSums.close();
    blockedCentroids.close();
  }
}
