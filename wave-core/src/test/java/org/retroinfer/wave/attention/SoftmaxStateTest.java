package org.retroinfer.wave.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.Reference;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

class SoftmaxStateTest {

  @Test
  void mergingDisjointPartsEqualsAttentionOverTheUnion() {
    Random rnd = new Random(2);
    int d = 48;
    int g = 3;
    int n = 700;
    float[] k = new float[n * d];
    float[] v = new float[n * d];
    for (int i = 0; i < k.length; i++) {
      k[i] = (float) rnd.nextGaussian() * 2;
      v[i] = (float) rnd.nextGaussian();
    }
    VectorStore ks = VectorStore.allocate(d, KvDType.FLOAT32, n);
    VectorStore vs = VectorStore.allocate(d, KvDType.FLOAT32, n);
    ks.appendAll(k, 0, n);
    vs.appendAll(v, 0, n);
    float[] q = new float[g * d];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) rnd.nextGaussian();
    }
    float scale = (float) (1 / Math.sqrt(d));
    SoftmaxState a = new SoftmaxState(g, d);
    SoftmaxState b = new SoftmaxState(g, d);
    SoftmaxState empty = new SoftmaxState(g, d);
    a.absorbRange(ks, vs, 0, 250, q, 0, scale);
    a.absorbRange(ks, vs, 600, 700, q, 0, scale);
    // the middle part as scattered rows with explicit logits
    int[] rows = new int[350];
    float[] logits = new float[g * 350];
    for (int i = 0; i < 350; i++) {
      rows[i] = 250 + i;
      for (int h = 0; h < g; h++) {
        double s = 0;
        for (int t = 0; t < d; t++) {
          s += q[h * d + t] * k[(250 + i) * d + t];
        }
        logits[h * 350 + i] = (float) (s * scale);
      }
    }
    b.absorbRows(vs, rows, 350, logits, 0, 350, null);
    assertTrue(empty.isEmpty());
    a.merge(empty);
    empty.merge(b);
    a.merge(empty);
    float[] out = new float[g * d];
    a.writeOutput(out, 0);
    for (int h = 0; h < g; h++) {
      double[] ref = Reference.attention(q, h * d, k, v, d, n);
      assertTrue(Reference.maxAbsDiff(ref, out, h * d) < 1e-5);
      double logMass = 0;
      double m = Double.NEGATIVE_INFINITY;
      double[] l = new double[n];
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int t = 0; t < d; t++) {
          s += (double) q[h * d + t] * k[j * d + t];
        }
        l[j] = s * scale;
        m = Math.max(m, l[j]);
      }
      for (double x : l) {
        logMass += Math.exp(x - m);
      }
      assertEquals(m + Math.log(logMass), a.logMass(h), 1e-4);
    }
    assertThrows(IllegalArgumentException.class, () -> a.merge(new SoftmaxState(g, d + 1)));
    ks.close();
    vs.close();
  }

  @Test
  void weightsMultiplyTheNormaliserOnly() {
    // one item of weight w with value sum V: output is V / w (the mean), as the estimation zone needs
    int d = 4;
    VectorStore sums = VectorStore.allocate(d, KvDType.FLOAT32, 1);
    sums.append(new float[] {8, -4, 2, 6}, 0);
    SoftmaxState s = new SoftmaxState(1, d);
    s.absorbRows(sums, new int[] {0}, 1, new float[] {3.7f}, 0, 1, new float[] {4});
    float[] out = new float[d];
    s.writeOutput(out, 0);
    assertEquals(2f, out[0], 1e-6);
    assertEquals(-1f, out[1], 1e-6);
    assertEquals(0.5f, out[2], 1e-6);
    assertEquals(1.5f, out[3], 1e-6);
    sums.close();
  }
}
