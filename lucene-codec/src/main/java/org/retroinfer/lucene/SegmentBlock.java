package org.retroinfer.lucene;

import org.retroinfer.wave.kv.VectorStore;

/**
 * One wave segment of one field in the form it is written: rows in cluster-contiguous order, the
 * doc id of every row (ascending within a cluster), and the per-cluster summaries. Owns its stores.
 *
 * @param kind {@link #CLUSTERED} or {@link #STEADY}
 * @param offsets cluster {@code c} is rows {@code [offsets[c], offsets[c + 1])}
 * @param rowDocs doc id of every row
 * @param centroids {@code clusters x dim}, the mean of each cluster's stored vectors
 * @param valueSums {@code clusters x dim}, the sum of each cluster's stored values; null if unpaired
 * @param keys the rows of the field (keys), in row order
 * @param values the paired values in row order; null if unpaired
 * @param tag the wave segment's tag in the {@code assigned} layout, else -1
 */
record SegmentBlock(byte kind, int[] offsets, int[] rowDocs, float[] centroids, float[] valueSums,
    VectorStore keys, VectorStore values, long tag) implements AutoCloseable {
  static final byte CLUSTERED = 0;
  static final byte STEADY = 1;

  SegmentBlock(byte kind, int[] offsets, int[] rowDocs, float[] centroids, float[] valueSums,
      VectorStore keys, VectorStore values) {
    this(kind, offsets, rowDocs, centroids, valueSums, keys, values, -1);
  }

  int clusters() {
    return offsets.length - 1;
  }

  int rows() {
    return rowDocs.length;
  }

  boolean paired() {
    return values != null;
  }

  @Override
  public void close() {
    keys.close();
    if (values != null) {
      values.close();
    }
  }
}
