package org.retroinfer.wave.index;

import java.util.Objects;

/**
 * The clusters of one segment: which token goes where, and the per-cluster summaries that the
 * estimation zone needs. Produced by {@link SegmentedKMeans}; consumed by {@link WaveIndex}.
 *
 * @param dim head dim
 * @param firstPosition token position of the segment's first token
 * @param order segment-local token indices in cluster-contiguous order: cluster {@code c} is
 *     {@code order[offsets[c] .. offsets[c + 1])}, ascending within a cluster
 * @param offsets cluster boundaries in {@code order}; {@code offsets[0] = 0}, non-decreasing, and
 *     every cluster non-empty
 * @param centroids {@code clusters x dim}: the plain mean of each cluster's (stored) keys (finite:
 *     means of finite rows)
 * @param valueSums {@code clusters x dim}: the sum of each cluster's (stored) values (must be
 *     finite: checked by an index for a newly clustered segment, by the codec for a stored one)
 * @param spreads the keys' spread statistics when they are known (e.g. read back with a stored
 *     segment), else null: an index then computes them from the keys when it adds the segment
 */
public record ClusteredSegment(int dim, int firstPosition, int[] order, int[] offsets,
    float[] centroids, float[] valueSums, ClusterSpreads spreads) {

  /** A segment whose spread statistics are computed from its keys when an index adds it. */
  public ClusteredSegment(int dim, int firstPosition, int[] order, int[] offsets,
      float[] centroids, float[] valueSums) {
    this(dim, firstPosition, order, offsets, centroids, valueSums, null);
  }

  public ClusteredSegment {
    Objects.requireNonNull(order, "order");
    Objects.requireNonNull(offsets, "offsets");
    int clusters = offsets.length - 1;
    if (clusters < 0 || offsets[0] != 0 || offsets[clusters] != order.length) {
      throw new IllegalArgumentException("cluster offsets must run from 0 to the token count "
          + order.length);
    }
    for (int c = 0; c < clusters; c++) {
      if (offsets[c + 1] <= offsets[c]) {
        throw new IllegalArgumentException("cluster " + c + " is empty or offsets decrease");
      }
    }
    if (centroids.length != (long) clusters * dim || valueSums.length != (long) clusters * dim) {
      throw new IllegalArgumentException("centroids and value sums must hold " + clusters + " x "
          + dim + " floats");
    }
    if (spreads != null && (spreads.clusters() != clusters
        || spreads.deviationSums().length != dim)) {
      throw new IllegalArgumentException("spread statistics of " + spreads.clusters()
          + " clusters and " + spreads.deviationSums().length + " dimensions for a segment of "
          + clusters + " clusters of dim " + dim);
    }
  }

  /** This segment with the given spread statistics (null: computed when an index adds it). */
  public ClusteredSegment withSpreads(ClusterSpreads s) {
    return new ClusteredSegment(dim, firstPosition, order, offsets, centroids, valueSums, s);
  }

  /** Number of clusters (all non-empty). */
  public int clusters() {
    return offsets.length - 1;
  }

  /** Number of tokens. */
  public int tokens() {
    return order.length;
  }

  /** Tokens in cluster {@code c}. */
  public int size(int c) {
    return offsets[c + 1] - offsets[c];
  }
}
