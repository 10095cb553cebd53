package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.kv.KvDType;

class SmokeTest {
  @Test
  void waveWithEverythingRetrievedEqualsFull() {
    Random rnd = new Random(1);
    int d = 64, g = 3, n = 3000;
    float[] k = new float[n * d], v = new float[n * d];
    for (int i = 0; i < k.length; i++) { k[i] = (float) rnd.nextGaussian(); v[i] = (float) rnd.nextGaussian(); }
    WaveConfig cfg = WaveConfig.builder().kvType(KvDType.FLOAT32).retrievalFraction(1).estimationFraction(0).build();
    HeadCache full = new FullAttention(KvDType.FLOAT32).newHead(d, g);
    HeadCache wave = new WaveAttention(cfg).newHead(d, g);
    for (int i = 0; i < n; i++) { full.append(k, i * d, v, i * d); wave.append(k, i * d, v, i * d); }
    full.endPrefill(); wave.endPrefill();
    float[] q = new float[g * d];
    for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian() * 2;
    float[] a = new float[g * d], b = new float[g * d];
    full.attend(q, 0, a, 0);
    wave.attend(q, 0, b, 0);
    for (int h = 0; h < g; h++) {
      double[] ref = Reference.attention(q, h * d, k, v, d, n);
      System.out.println("full " + Reference.maxAbsDiff(ref, a, h * d) + " wave " + Reference.maxAbsDiff(ref, b, h * d));
      assertTrue(Reference.maxAbsDiff(ref, a, h * d) < 1e-5);
      assertTrue(Reference.maxAbsDiff(ref, b, h * d) < 1e-5);
    }
    System.out.println("exact tokens " + wave.lastExactTokens() + " index clusters " + ((WaveHeadCache) wave).index().clusterCount());
  }
}
