package org.retroinfer.store;

import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/** Exact attention in float64: the independent reference of the store tests. */
final class Reference {
  private Reference() {}

  /**
   * Attention of queries {@code q} (all query heads) over the first {@code n} tokens of {@code kv}
   * followed by the first {@code m} tokens of {@code extra} (both {@code [k|v][layer][token * kvWidth
   * + head * dim + i]}), every value rounded to {@code type} as a store would keep it.
   */
  static double[] attention(float[] q, float[][][] kv, float[][][] extra, int layer, int n, int m,
      KvDType type) {
    AttentionShape s = Synthetic.SHAPE;
    int d = s.headDim();
    int w = s.kvWidth();
    double[] out = new double[s.queryWidth()];
    for (int qh = 0; qh < s.queryHeads(); qh++) {
      int h = qh / s.groupSize();
      double[] logits = new double[n + m];
      double max = Double.NEGATIVE_INFINITY;
      for (int t = 0; t < n + m; t++) {
        float[] keys = t < n ? kv[0][layer] : extra[0][layer];
        int row = t < n ? t : t - n;
        double dot = 0;
        for (int i = 0; i < d; i++) {
          dot += (double) q[qh * d + i] * type.round(keys[row * w + h * d + i]);
        }
        logits[t] = dot / Math.sqrt(d);
        max = Math.max(max, logits[t]);
      }
      double z = 0;
      for (int t = 0; t < n + m; t++) {
        float[] values = t < n ? kv[1][layer] : extra[1][layer];
        int row = t < n ? t : t - n;
        double p = Math.exp(logits[t] - max);
        z += p;
        for (int i = 0; i < d; i++) {
          out[qh * d + i] += p * type.round(values[row * w + h * d + i]);
        }
      }
      for (int i = 0; i < d; i++) {
        out[qh * d + i] /= z;
      }
    }
    return out;
  }
}
