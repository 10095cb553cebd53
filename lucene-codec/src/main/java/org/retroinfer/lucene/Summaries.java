package org.retroinfer.lucene;

import org.retroinfer.wave.kv.VectorStore;

/**
 * Cluster summaries computed the way wave-core's k-means computes them (float64 accumulation in
 * row order, rounded once to float32), so that a summary recomputed here for an unchanged member
 * list equals wave-core's bit for bit.
 */
final class Summaries {
  private Summaries() {}

  /** The mean of rows {@code rows[from, to)} of {@code store}. */
  static float[] mean(VectorStore store, int[] rows, int from, int to) {
    double[] sum = accumulate(store, rows, from, to);
    int size = to - from;
    float[] out = new float[sum.length];
    for (int t = 0; t < sum.length; t++) {
      out[t] = (float) (sum[t] / size);
    }
    return out;
  }

  /** The sum of rows {@code rows[from, to)} of {@code store}. */
  static float[] sum(VectorStore store, int[] rows, int from, int to) {
    double[] sum = accumulate(store, rows, from, to);
    float[] out = new float[sum.length];
    for (int t = 0; t < sum.length; t++) {
      out[t] = (float) sum[t];
    }
    return out;
  }

  /** The mean of rows {@code [from, to)} of {@code store}. */
  static float[] mean(VectorStore store, int from, int to) {
    return mean(store, range(from, to), 0, to - from);
  }

  /** The sum of rows {@code [from, to)} of {@code store}. */
  static float[] sum(VectorStore store, int from, int to) {
    return sum(store, range(from, to), 0, to - from);
  }

  private static int[] range(int from, int to) {
    int[] rows = new int[to - from];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = from + i;
    }
    return rows;
  }

  private static double[] accumulate(VectorStore store, int[] rows, int from, int to) {
    int d = store.dim();
    double[] sum = new double[d];
    float[] row = new float[d];
    for (int i = from; i < to; i++) {
      store.read(rows[i], row, 0);
      for (int t = 0; t < d; t++) {
        sum[t] += row[t];
      }
    }
    return sum;
  }
}
