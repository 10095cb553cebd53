package org.retroinfer.wave;

/** Float64 attention, written as plainly as possible: the independent reference of the tests. */
public final class Reference {
  private Reference() {}

  /**
   * Softmax attention of one query over rows {@code keys[j*d..]} / {@code values[j*d..]}, j in
   * {@code tokens}, in double precision.
   */
  public static double[] attention(float[] q, int qOff, float[] keys, float[] values, int d,
      int[] tokens) {
    double scale = 1.0 / Math.sqrt(d);
    double[] logits = new double[tokens.length];
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < tokens.length; i++) {
      double s = 0;
      for (int t = 0; t < d; t++) {
        s += (double) q[qOff + t] * keys[tokens[i] * d + t];
      }
      logits[i] = s * scale;
      max = Math.max(max, logits[i]);
    }
    double z = 0;
    double[] out = new double[d];
    for (int i = 0; i < tokens.length; i++) {
      double w = Math.exp(logits[i] - max);
      z += w;
      for (int t = 0; t < d; t++) {
        out[t] += w * values[tokens[i] * d + t];
      }
    }
    for (int t = 0; t < d; t++) {
      out[t] /= z;
    }
    return out;
  }

  /** Attention over all of the first {@code n} tokens. */
  public static double[] attention(float[] q, int qOff, float[] keys, float[] values, int d, int n) {
    int[] all = new int[n];
    for (int i = 0; i < n; i++) {
      all[i] = i;
    }
    return attention(q, qOff, keys, values, d, all);
  }

  /** Largest absolute difference. */
  public static double maxAbsDiff(double[] a, float[] b, int bOff) {
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[bOff + i]));
    }
    return m;
  }

  /** ||a - b|| / ||a||. */
  public static double relativeError(float[] reference, float[] actual) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < reference.length; i++) {
      double diff = (double) reference[i] - actual[i];
      num += diff * diff;
      den += (double) reference[i] * reference[i];
    }
    return Math.sqrt(num / den);
  }
}
