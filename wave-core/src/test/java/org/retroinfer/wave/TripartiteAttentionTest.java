package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.KvDType;

/** Tripartite attention against float64 full attention and the Jensen bound of its estimates. */
class TripartiteAttentionTest {

  static float[] gaussian(Random rnd, int len, double sigma) {
    float[] x = new float[len];
    for (int i = 0; i < len; i++) {
      x[i] = (float) (sigma * rnd.nextGaussian());
    }
    return x;
  }

  /** Keys and values as a store of {@code type} would hold them. */
  static float[] rounded(float[] x, KvDType type) {
    float[] r = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      r[i] = type.round(x[i]);
    }
    return r;
  }

  @ParameterizedTest(name = "{0} d={1} g={2} n={3}")
  @CsvSource({
      "FLOAT32, 64, 3, 3000",
      "BFLOAT16, 128, 4, 5000",
      "FLOAT16, 72, 1, 2500",
      "FLOAT32, 20, 5, 1800",
  })
  void everyClusterRetrievedEqualsFullAttention(KvDType type, int d, int g, int n) {
    Random rnd = new Random(31L * d + n);
    float[] k = gaussian(rnd, n * d, 1.0);
    float[] v = gaussian(rnd, n * d, 1.0);
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(type).retrievalFraction(1)
        .estimationFraction(0).segmentTokens(1024).updateTokens(256).build();
    HeadCache wave = new WaveAttention(config).newHead(d, g);
    HeadCache full = new FullAttention(type).newHead(d, g);
    for (int i = 0; i < n; i++) {
      wave.append(k, i * d, v, i * d);
      full.append(k, i * d, v, i * d);
    }
    wave.endPrefill();
    assertTrue(((WaveHeadCache) wave).index().segmentCount() > 1, "the test needs several segments");
    float[] kr = rounded(k, type);
    float[] vr = rounded(v, type);
    float[] out = new float[g * d];
    float[] fullOut = new float[g * d];
    for (int trial = 0; trial < 3; trial++) {
      float[] q = gaussian(rnd, g * d, 1.5);
      wave.attend(q, 0, out, 0);
      full.attend(q, 0, fullOut, 0);
      assertEquals(n, wave.lastExactTokens());
      for (int h = 0; h < g; h++) {
        double[] ref = Reference.attention(q, h * d, kr, vr, d, n);
        assertTrue(Reference.maxAbsDiff(ref, out, h * d) < 2e-5,
            "wave head " + h + " differs from float64 by " + Reference.maxAbsDiff(ref, out, h * d));
        assertTrue(Reference.maxAbsDiff(ref, fullOut, h * d) < 2e-5,
            "full head " + h + " differs from float64 by " + Reference.maxAbsDiff(ref, fullOut, h * d));
      }
    }
    wave.close();
    full.close();
  }

  @Test
  void estimatedClusterMassIsALowerBoundOfTheTrueMass() {
    Random rnd = new Random(7);
    int d = 64;
    int n = 6000;
    SyntheticKv kv = new SyntheticKv(11, n, d, 4, 16);
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalFraction(0)
        .retrievalMinClusters(1).estimationFraction(1.0).build();
    WaveHeadCache wave = new WaveHeadCache(config, d, 2);
    for (int i = 0; i < n; i++) {
      wave.append(kv.keys, i * d, kv.values, i * d);
    }
    wave.endPrefill();
    WaveIndex index = wave.index();
    double scale = 1 / Math.sqrt(d);
    float[] key = new float[d];
    float[] centroid = new float[d];
    int checked = 0;
    for (int trial = 0; trial < 4; trial++) {
      float[] q = trial % 2 == 0 ? kv.query(2) : gaussian(rnd, 2 * d, 1.0);
      ZonePlan plan = wave.planZones(q, 0);
      // every non-retrieved cluster is estimated
      assertEquals(index.clusterCount(), plan.retrievedCount() + plan.estimatedCount());
      for (int c : plan.estimatedClusters()) {
        index.centroids().read(c, centroid, 0);
        for (int h = 0; h < 2; h++) {
          double estimate = index.clusterSize(c) * Math.exp(dot(q, h * d, centroid, d) * scale);
          double truth = 0;
          for (int row = index.clusterStart(c); row < index.clusterStart(c + 1); row++) {
            index.keys().read(row, key, 0);
            truth += Math.exp(dot(q, h * d, key, d) * scale);
          }
          assertTrue(estimate <= truth * (1 + 1e-5),
              "cluster " + c + " head " + h + ": estimate " + estimate + " > true mass " + truth);
          checked++;
        }
      }
    }
    assertTrue(checked > 1000);
    wave.close();
  }

  @Test
  void estimationZoneMatchesTheFormulaOfTheSpec() {
    // r = 1 cluster exact, all others estimated: output must equal the float64 evaluation of
    // (e^(m1-m) O1 + e^(m2-m) O2) / (e^(m1-m) Z1 + e^(m2-m) Z2) over the index's own data.
    int d = 32;
    int g = 2;
    int n = 3000;
    Random rnd = new Random(5);
    float[] k = gaussian(rnd, n * d, 1.0);
    float[] v = gaussian(rnd, n * d, 1.0);
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.FLOAT32).retrievalFraction(0)
        .retrievalMinClusters(1).estimationFraction(1.0).sinkTokens(4).windowTokens(16)
        .updateTokens(512).build();
    WaveHeadCache wave = new WaveHeadCache(config, d, g);
    for (int i = 0; i < n; i++) {
      wave.append(k, i * d, v, i * d);
    }
    wave.endPrefill();
    float[] q = gaussian(rnd, g * d, 2.0);
    ZonePlan plan = wave.planZones(q, 0);
    float[] out = new float[g * d];
    wave.attend(q, 0, out, 0);
    WaveIndex index = wave.index();
    double scale = 1 / Math.sqrt(d);
    for (int h = 0; h < g; h++) {
      double[] o = new double[d];
      double z = 0;
      float[] row = new float[d];
      float[] val = new float[d];
      // exact part: sinks, tail, retrieved clusters (all logits relative to 0: values are small)
      for (int j = 0; j < wave.sinkKeys().size(); j++) {
        wave.sinkKeys().read(j, row, 0);
        wave.sinkValues().read(j, val, 0);
        double w = Math.exp(dot(q, h * d, row, d) * scale);
        z += w;
        axpy(w, val, o);
      }
      for (int j = 0; j < wave.tailKeys().size(); j++) {
        wave.tailKeys().read(j, row, 0);
        wave.tailValues().read(j, val, 0);
        double w = Math.exp(dot(q, h * d, row, d) * scale);
        z += w;
        axpy(w, val, o);
      }
      for (int c : plan.retrievedClusters()) {
        for (int r = index.clusterStart(c); r < index.clusterStart(c + 1); r++) {
          index.keys().read(r, row, 0);
          index.values().read(r, val, 0);
          double w = Math.exp(dot(q, h * d, row, d) * scale);
          z += w;
          axpy(w, val, o);
        }
      }
      for (int c : plan.estimatedClusters()) {
        index.centroids().read(c, row, 0);
        index.valueSums().read(c, val, 0);
        double w = Math.exp(dot(q, h * d, row, d) * scale);
        z += index.clusterSize(c) * w;
        axpy(w, val, o);
      }
      for (int t = 0; t < d; t++) {
        assertEquals(o[t] / z, out[h * d + t], 2e-5, "head " + h + " component " + t);
      }
    }
    wave.close();
  }

  @Test
  void zonesCoverTheBudgetsOfTheConfiguration() {
    int d = 16;
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.FLOAT32).segmentTokens(2048)
        .updateTokens(512).build();
    WaveHeadCache wave = new WaveHeadCache(config, d, 1);
    Random rnd = new Random(3);
    float[] k = gaussian(rnd, d, 1);
    for (int i = 0; i < 20_000; i++) {
      k = gaussian(rnd, d, 1);
      wave.append(k, 0, k, 0);
    }
    wave.endPrefill();
    int clusters = wave.index().clusterCount();
    float[] q = gaussian(rnd, d, 1);
    ZonePlan plan = wave.planZones(q, 0);
    double[] score = rankingScores(wave.index(), q, 1);
    assertEquals(Math.max(64, (int) Math.ceil(0.018 * clusters)), plan.retrievedCount());
    assertEquals((int) Math.ceil(0.232 * clusters), plan.estimatedCount());
    int[] r = plan.retrievedClusters();
    int[] e = plan.estimatedClusters();
    for (int c : r) {
      assertTrue(java.util.Arrays.binarySearch(e, c) < 0, "cluster " + c + " is in two zones");
    }
    // the retrieved clusters are the top-ranked ones
    double minRetrieved = Double.MAX_VALUE;
    for (int c : r) {
      minRetrieved = Math.min(minRetrieved, score[c]);
    }
    double minEstimated = Double.MAX_VALUE;
    for (int c : e) {
      assertTrue(score[c] <= minRetrieved * (1 + 1e-4), "estimated cluster outranks a retrieved one");
      minEstimated = Math.min(minEstimated, score[c]);
    }
    boolean[] planned = new boolean[clusters];
    for (int c : r) {
      planned[c] = true;
    }
    for (int c : e) {
      planned[c] = true;
    }
    for (int c = 0; c < clusters; c++) {
      if (!planned[c]) {
        assertTrue(score[c] <= minEstimated * (1 + 1e-4), "skipped cluster " + c + " outranks a planned one");
      }
    }
    assertEquals(20_000 - 4 - 64, wave.index().tokenCount());
    wave.close();
  }

  /** Float64 ranking: per head softmax over centroid logits, summed over the group. */
  static double[] rankingScores(WaveIndex index, float[] q, int g) {
    int d = index.dim();
    int clusters = index.clusterCount();
    double[] total = new double[clusters];
    float[] c = new float[d];
    for (int h = 0; h < g; h++) {
      double[] l = new double[clusters];
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < clusters; i++) {
        index.centroids().read(i, c, 0);
        l[i] = dot(q, h * d, c, d) / Math.sqrt(d);
        max = Math.max(max, l[i]);
      }
      double z = 0;
      for (int i = 0; i < clusters; i++) {
        l[i] = Math.exp(l[i] - max);
        z += l[i];
      }
      for (int i = 0; i < clusters; i++) {
        total[i] += l[i] / z;
      }
    }
    return total;
  }

  @Test
  void shortContextsAreAttendedExactly() {
    int d = 32;
    WaveConfig config = WaveConfig.defaults();
    WaveHeadCache wave = new WaveHeadCache(config, d, 2);
    HeadCache full = new FullAttention(config.kvType()).newHead(d, 2);
    Random rnd = new Random(9);
    int n = config.minIndexedContext() - 1;
    for (int i = 0; i < n; i++) {
      float[] k = gaussian(rnd, d, 1);
      float[] v = gaussian(rnd, d, 1);
      wave.append(k, 0, v, 0);
      full.append(k, 0, v, 0);
    }
    wave.endPrefill();
    assertEquals(0, wave.index().clusterCount());
    float[] q = gaussian(rnd, 2 * d, 1);
    float[] a = new float[2 * d];
    float[] b = new float[2 * d];
    wave.attend(q, 0, a, 0);
    full.attend(q, 0, b, 0);
    assertArrayEquals(b, a, 1e-6f);
    assertEquals(n, wave.lastExactTokens());
    wave.close();
    full.close();
  }

  static double dot(float[] q, int off, float[] x, int d) {
    double s = 0;
    for (int t = 0; t < d; t++) {
      s += (double) q[off + t] * x[t];
    }
    return s;
  }

  static void axpy(double w, float[] x, double[] y) {
    for (int t = 0; t < y.length; t++) {
      y[t] += w * x[t];
    }
  }
}
