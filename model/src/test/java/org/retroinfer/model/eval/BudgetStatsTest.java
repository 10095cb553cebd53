package org.retroinfer.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BudgetStatsTest {

  @Test
  void summariesMatchAPlainComputationOverTheSamples() {
    Random rnd = new Random(3);
    BudgetStats a = new BudgetStats(3, 2);
    BudgetStats b = new BudgetStats(3, 2);
    int steps = 150;
    int[] all = new int[2 * steps * 6];
    double[] headSum = new double[6];
    for (int s = 0; s < 2 * steps; s++) {
      int[] row = new int[6];
      for (int h = 0; h < 6; h++) {
        row[h] = 100 * h + rnd.nextInt(1000);
        all[s * 6 + h] = row[h];
        headSum[h] += row[h];
      }
      (s < steps ? a : b).add(row);
    }
    BudgetStats m = BudgetStats.merge(List.of(a, b));
    assertEquals(2 * steps, m.steps());
    assertEquals(Arrays.stream(all).average().orElseThrow(), m.mean(), 1e-9);
    int[] sorted = all.clone();
    Arrays.sort(sorted);
    assertEquals(sorted[(int) Math.ceil(0.5 * sorted.length) - 1], m.p50());
    assertEquals(sorted[(int) Math.ceil(0.9 * sorted.length) - 1], m.p90());
    assertEquals(sorted[sorted.length - 1], m.max());
    double[] means = new double[6];
    for (int h = 0; h < 6; h++) {
      means[h] = headSum[h] / (2 * steps);
    }
    assertArrayEquals(means, m.headMeans(), 1e-9);
  }
}
