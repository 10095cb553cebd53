package org.retroinfer.gpu.layout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SplitPlanTest {
  @Test
  void coversEveryRowInWholeTilesWithinTheTarget() {
    int[] items = {1, 8, 64, 500};
    int[] rows = {0, 1, 127, 128, 4096, 32768, 131072, 524288};
    int[] targets = {1, 64, 396, 528};
    for (int n : items) {
      for (int r : rows) {
        for (int target : targets) {
          SplitPlan p = SplitPlan.of(n, r, target);
          String what = n + " items, " + r + " rows, target " + target + ": " + p;
          assertTrue((long) p.splits() * p.rowsPerSplit() >= r, "rows left out, " + what);
          assertTrue((long) (p.splits() - 1) * p.rowsPerSplit() < Math.max(1, r), "an empty split, "
              + what);
          assertEquals(0, p.rowsPerSplit() % SplitPlan.TILE, "not whole tiles, " + what);
          if (n <= target) {
            assertTrue((long) n * p.splits() <= target, "more blocks than the target, " + what);
          } else {
            assertEquals(1, p.splits(), what);
          }
        }
      }
    }
    // enough blocks to fill the GPU when the rows allow it
    assertEquals(49, SplitPlan.of(8, 131072, 396).splits());
  }
}
