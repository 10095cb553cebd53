package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.retroinfer.wave.attention.AttentionShape;

/** Blocked causal attention against a naive float64 softmax over every earlier key. */
class CausalAttentionTest {
  final Random random = new Random();

  @ParameterizedTest
  @CsvSource({
      // queryHeads, kvHeads, headDim, start, n
      "6, 2, 64, 0, 100", "6, 2, 64, 130, 37", "4, 4, 32, 0, 1", "8, 2, 48, 65, 64",
      "2, 1, 20, 3, 17", "3, 1, 64, 200, 129", "4, 2, 80, 10, 70", "2, 1, 128, 0, 65"})
  void matchesFloat64(int queryHeads, int kvHeads, int d, int start, int n) {
    AttentionShape shape = new AttentionShape(1, queryHeads, kvHeads, d);
    int total = start + n;
    int qw = shape.queryWidth();
    int kw = shape.kvWidth();
    float[] q = gaussian(n * qw, 2.0);
    float[] keys = gaussian(total * kw, 1.0);
    float[] values = gaussian(total * kw, 1.0);
    float[] out = new float[n * qw];
    new CausalAttention(shape).attend(q, n, start, keys, values, out);
    int g = shape.groupSize();
    double scale = 1 / Math.sqrt(d);
    for (int t = 0; t < n; t++) {
      int pos = start + t;
      for (int h = 0; h < queryHeads; h++) {
        int kh = h / g;
        double[] logits = new double[pos + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= pos; j++) {
          double s = 0;
          for (int c = 0; c < d; c++) {
            s += (double) q[t * qw + h * d + c] * keys[j * kw + kh * d + c];
          }
          logits[j] = s * scale;
          max = Math.max(max, logits[j]);
        }
        double z = 0;
        double[] o = new double[d];
        for (int j = 0; j <= pos; j++) {
          double w = Math.exp(logits[j] - max);
          z += w;
          for (int c = 0; c < d; c++) {
            o[c] += w * values[j * kw + kh * d + c];
          }
        }
        for (int c = 0; c < d; c++) {
          assertEquals(o[c] / z, out[t * qw + h * d + c], 2e-5,
              "position " + pos + " head " + h + " dim " + c);
        }
      }
    }
  }

  float[] gaussian(int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (random.nextGaussian() * scale);
    }
    return x;
  }
}
