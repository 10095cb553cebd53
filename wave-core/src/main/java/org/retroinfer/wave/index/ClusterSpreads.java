package org.retroinfer.wave.index;

import java.util.Objects;
import org.retroinfer.wave.kv.VectorStore;

/**
 * How a segment's keys spread around their cluster centroids, the statistics that the ADAPTIVE zone
 * budget ranks clusters by: per cluster the mean squared distance of its keys (as stored) to its
 * centroid, and per dimension the squared deviations summed over the segment's keys.
 *
 * <p>{@link #of} is the one definition, used when an index adds a segment and when the codec writes
 * one, so that the statistics stored with a segment equal, bit for bit, the ones an index would
 * compute from the same stored rows. An index restored from stored statistics therefore never reads
 * its keys to open.
 *
 * @param spreads per cluster, the mean squared distance of its keys to its centroid (not NaN, not
 *     negative)
 * @param deviationSums per dimension, the sum over the segment's keys of the squared deviation from
 *     their cluster's centroid (not NaN, not negative)
 */
public record ClusterSpreads(float[] spreads, double[] deviationSums) {

  public ClusterSpreads {
    Objects.requireNonNull(spreads, "spreads");
    Objects.requireNonNull(deviationSums, "deviationSums");
    // not NaN, not negative; +Infinity is what keys beyond 1.8e19 give a float32 spread, and an
    // index takes it (its ranking then reads such a cluster), so a stored one is accepted too
    for (float s : spreads) {
      if (!(s >= 0)) {
        throw new IllegalArgumentException("cluster spread " + s + ": spreads are not negative");
      }
    }
    for (double s : deviationSums) {
      if (!(s >= 0)) {
        throw new IllegalArgumentException("deviation sum " + s + ": deviation sums are not"
            + " negative");
      }
    }
  }

  /**
   * The statistics of a segment whose keys are rows {@code [rowBase, rowBase + offsets[k])} of
   * {@code keys} in cluster-contiguous order (cluster {@code c} is rows {@code rowBase + offsets[c]}
   * to {@code rowBase + offsets[c + 1]}), with {@code centroids} ({@code k x dim}, row-major).
   * Sums run in float64 in row order; each spread is rounded once to float32.
   */
  public static ClusterSpreads of(VectorStore keys, int rowBase, int[] offsets, float[] centroids) {
    int dim = keys.dim();
    int k = offsets.length - 1;
    if (centroids.length != (long) k * dim) {
      throw new IllegalArgumentException(k + " clusters of dim " + dim + " need " + (long) k * dim
          + " centroid components, got " + centroids.length);
    }
    float[] spreads = new float[k];
    double[] deviations = new double[dim];
    float[] rows = new float[0];
    for (int c = 0; c < k; c++) {
      int n = offsets[c + 1] - offsets[c];
      if (rows.length < n * dim) {
        rows = new float[Math.max(n * dim, 2 * rows.length)];
      }
      keys.readRows(rowBase + offsets[c], rowBase + offsets[c + 1], rows, 0);
      double sq = 0;
      int cb = c * dim;
      for (int m = 0; m < n; m++) {
        int rb = m * dim;
        for (int t = 0; t < dim; t++) {
          double x = rows[rb + t] - centroids[cb + t];
          deviations[t] += x * x;
          sq += x * x;
        }
      }
      spreads[c] = (float) (sq / n);
    }
    return new ClusterSpreads(spreads, deviations);
  }

  /** Number of clusters. */
  public int clusters() {
    return spreads.length;
  }
}
