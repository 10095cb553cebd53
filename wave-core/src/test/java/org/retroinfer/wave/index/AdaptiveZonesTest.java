package org.retroinfer.wave.index;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * The adaptive zone choice against a float64 reference that ranks every cluster by its estimated
 * share and walks the ranking: the retrieval zone must be the shortest ranked prefix whose shares,
 * with the steady zone's, reach the retrieval target (clamped to the bounds), and the estimation
 * zone the shortest continuation that reaches the estimation target (at most its cap).
 */
class AdaptiveZonesTest {

  @Test
  void zonesAreTheShortestRankedPrefixesThatMeetTheTargets() {
    Random rnd = new Random(5);
    int checked = 0;
    for (int trial = 0; trial < 60; trial++) {
      int g = 1 + rnd.nextInt(4);
      SyntheticKv kv = new SyntheticKv(300 + trial, 2000 + rnd.nextInt(3000), 32, 1 + rnd.nextInt(4),
          4 + rnd.nextInt(12), 0.3 + rnd.nextDouble(), rnd.nextDouble());
      WaveConfig config = WaveConfig.adaptiveDefaults().toBuilder().kvType(KvDType.FLOAT32)
          .tokensPerCluster(8).build();
      WaveHeadCache wave = SegmentedKMeansTest.build(kv, config, g);
      WaveIndex index = wave.index();
      int n = index.clusterCount();
      float[] q = kv.query(g);
      for (int i = 0; i < q.length; i++) {
        q[i] *= (float) (0.2 + 2 * rnd.nextDouble()); // flat to sharp attention
      }
      float scale = (float) (1 / Math.sqrt(kv.d));
      double[] steady = new double[g];
      for (int h = 0; h < g; h++) {
        steady[h] = trial % 9 == 0 ? Double.NEGATIVE_INFINITY : rnd.nextGaussian() * 3 + 2;
      }
      double massR = rnd.nextDouble();
      double massE = massR + (1 - massR) * rnd.nextDouble();
      int rMin = rnd.nextInt(Math.min(n, 20));
      int rMax = rMin + rnd.nextInt(n - rMin + 1);
      int eMax = rnd.nextInt(n - rMin + 1);

      // the float64 reference
      double[] share = new double[n];
      double steadyShare = 0;
      for (int h = 0; h < g; h++) {
        double[] w = new double[n];
        double max = steady[h];
        for (int c = 0; c < n; c++) {
          double l = 0;
          for (int t = 0; t < kv.d; t++) {
            l += (double) q[h * kv.d + t] * index.rankingCentroid(c, t);
          }
          w[c] = l * scale + Math.log(index.clusterSize(c));
          max = Math.max(max, w[c]);
        }
        double z = Math.exp(steady[h] - max);
        for (int c = 0; c < n; c++) {
          w[c] = Math.exp(w[c] - max);
          z += w[c];
        }
        for (int c = 0; c < n; c++) {
          share[c] += w[c] / z;
        }
        steadyShare += Math.exp(steady[h] - max) / z;
      }
      Integer[] order = new Integer[n];
      for (int c = 0; c < n; c++) {
        order[c] = c;
      }
      Arrays.sort(order, Comparator.comparingDouble((Integer c) -> -share[c]));
      double acc = steadyShare;
      int r = 0;
      while (r < n && acc < g * massR) {
        acc += share[order[r++]];
      }
      r = Math.max(rMin, Math.min(rMax, r));
      acc = steadyShare;
      for (int i = 0; i < r; i++) {
        acc += share[order[i]];
      }
      int e = 0;
      while (r + e < n && e < eMax && acc < g * massE) {
        acc += share[order[r + e++]];
      }

      ZonePlan plan = new ZonePlan();
      new ClusterRanking(g).planByMass(index, q, 0, scale, steady, massR, massE, rMin, rMax, eMax,
          plan);
      assertTrue(plan.retrievedCount() >= rMin && plan.retrievedCount() <= rMax, "bounds");
      assertTrue(plan.estimatedCount() <= eMax, "estimation cap");
      if (nearTie(share, order, r) || nearTie(share, order, r + e)
          || nearTarget(share, order, steadyShare, r, g * massR)
          || nearTarget(share, order, steadyShare, r + e, g * massE)) {
        continue; // float32 shares and sums may cut a near tie on the other side
      }
      String at = "trial " + trial + ": g=" + g + " clusters=" + n + " targets " + massR + "/"
          + massE + " bounds [" + rMin + ", " + rMax + "] e<=" + eMax;
      assertEquals(r, plan.retrievedCount(), at);
      assertEquals(e, plan.estimatedCount(), at);
      int[] wantR = Arrays.stream(order, 0, r).mapToInt(Integer::intValue).sorted().toArray();
      int[] wantE = Arrays.stream(order, r, r + e).mapToInt(Integer::intValue).sorted().toArray();
      assertEquals(Arrays.toString(wantR), Arrays.toString(plan.retrievedClusters()), at);
      assertEquals(Arrays.toString(wantE), Arrays.toString(plan.estimatedClusters()), at);
      double exactShare = steadyShare;
      for (int i = 0; i < r; i++) {
        exactShare += share[order[i]];
      }
      assertEquals(exactShare / g, plan.exactShare(), 1e-4, at);
      assertEquals(acc / g, plan.coveredShare(), 1e-4, at);
      checked++;
      wave.close();
    }
    assertTrue(checked >= 50, "only " + checked + " of 60 cases were free of near ties");
  }

  /** Whether the shares on both sides of the cut after {@code k} clusters are within float32 noise. */
  private static boolean nearTie(double[] share, Integer[] order, int k) {
    if (k <= 0 || k >= order.length) {
      return false;
    }
    return Math.abs(share[order[k - 1]] - share[order[k]]) <= 1e-5 * share[order[k - 1]];
  }

  /** Whether the sum up to {@code k} or {@code k - 1} clusters is within float32 noise of the target. */
  private static boolean nearTarget(double[] share, Integer[] order, double steady, int k,
      double target) {
    double sum = steady;
    for (int i = 0; i < k; i++) {
      sum += share[order[i]];
    }
    double before = k > 0 ? sum - share[order[k - 1]] : sum;
    return Math.abs(sum - target) < 1e-5 || Math.abs(before - target) < 1e-5;
  }
}
