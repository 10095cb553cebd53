package org.retroinfer.wave.math;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TopSelectionTest {

  @ParameterizedTest(name = "scratch={0}")
  @ValueSource(booleans = {false, true})
  void selectsTheLargestKeysLikeSorting(boolean withScratch) {
    Random rnd = new Random(12);
    for (int trial = 0; trial < 300; trial++) {
      int n = 1 + rnd.nextInt(3000);
      long[] a = new long[n + 4];
      for (int i = 0; i < n; i++) {
        // many equal scores: ids must break the ties
        float score = rnd.nextInt(4) == 0 ? 0f : rnd.nextInt(50) / 7f;
        a[2 + i] = TopSelection.pack(score, i);
      }
      int k = rnd.nextInt(n + 1);
      long[] sorted = Arrays.copyOfRange(a, 2, 2 + n);
      Arrays.sort(sorted);
      if (withScratch) {
        TopSelection.selectLargest(a, 2, 2 + n, k, new long[n + rnd.nextInt(3)]);
      } else {
        TopSelection.selectLargest(a, 2, 2 + n, k);
      }
      long[] top = Arrays.copyOfRange(a, 2, 2 + k);
      Arrays.sort(top);
      assertArrayEquals(Arrays.copyOfRange(sorted, n - k, n), top, "n=" + n + " k=" + k);
      long[] all = Arrays.copyOfRange(a, 2, 2 + n);
      Arrays.sort(all);
      assertArrayEquals(sorted, all, "selection must permute, not lose keys");
    }
  }

  @Test
  void scratchSelectionHandlesEqualKeysAndSortedInput() {
    Random rnd = new Random(13);
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + rnd.nextInt(600);
      long[] a = new long[n];
      int kind = trial % 3;
      for (int i = 0; i < n; i++) {
        a[i] = kind == 0 ? rnd.nextInt(4) : kind == 1 ? i : n - i; // duplicates, ascending, descending
      }
      int k = rnd.nextInt(n + 1);
      long[] sorted = a.clone();
      Arrays.sort(sorted);
      TopSelection.selectLargest(a, 0, n, k, new long[n]);
      long[] top = Arrays.copyOf(a, k);
      Arrays.sort(top);
      assertArrayEquals(Arrays.copyOfRange(sorted, n - k, n), top, "kind=" + kind + " n=" + n
          + " k=" + k);
      long[] all = a.clone();
      Arrays.sort(all);
      assertArrayEquals(sorted, all, "selection must permute, not lose keys");
    }
  }

  @Test
  void selectMassTakesTheShortestPrefixOfTheSortedScores() {
    Random rnd = new Random(14);
    for (int trial = 0; trial < 400; trial++) {
      int n = 1 + rnd.nextInt(trial % 4 == 0 ? 40 : 2000);
      long[] a = new long[n + 3];
      for (int i = 0; i < n; i++) {
        // heavy-tailed shares with ties, as attention mass shares are
        float score = rnd.nextInt(5) == 0 ? 1f / 64 : (float) Math.pow(rnd.nextDouble(), 6);
        a[1 + i] = TopSelection.pack(score, i);
      }
      long[] sorted = Arrays.copyOfRange(a, 1, 1 + n);
      Arrays.sort(sorted);
      double total = 0;
      for (long x : sorted) {
        total += TopSelection.score(x);
      }
      double target = trial % 7 == 0 ? total * 1.5 : trial % 11 == 0 ? -1 : rnd.nextDouble() * total;
      // the reference: walk the keys from the largest, in float64, until the target is met
      int want = 0;
      double sum = 0;
      while (want < n && (target > 0 && sum < target)) {
        sum += TopSelection.score(sorted[n - 1 - want]);
        want++;
      }
      int k = TopSelection.selectMass(a, 1, 1 + n, target, new long[n]);
      // summation order may differ only at the last bit: allow an off-by-one only on a near tie
      if (k != want) {
        double walked = 0;
        for (int i = 0; i < Math.min(k, want); i++) {
          walked += TopSelection.score(sorted[n - 1 - i]);
        }
        assertEquals(Math.abs(k - want), 1, "n=" + n + " target=" + target);
        assertEquals(target, walked, 1e-6 * total, "n=" + n + " k=" + k + " want=" + want); // float sums
      }
      long[] top = Arrays.copyOfRange(a, 1, 1 + k);
      Arrays.sort(top);
      assertArrayEquals(Arrays.copyOfRange(sorted, n - k, n), top, "n=" + n + " k=" + k);
      long[] all = Arrays.copyOfRange(a, 1, 1 + n);
      Arrays.sort(all);
      assertArrayEquals(sorted, all, "selection must permute, not lose keys");
    }
  }

  @Test
  void packKeepsScoreOrderThenLowerIdFirst() {
    long a = TopSelection.pack(0.5f, 10);
    long b = TopSelection.pack(0.25f, 3);
    long c = TopSelection.pack(0.5f, 11);
    assertEquals(10, TopSelection.id(a));
    assertEquals(1, Long.compare(a, b));
    assertEquals(1, Long.compare(a, c));
    assertEquals(0, TopSelection.id(TopSelection.pack(0f, 0)));
  }
}
