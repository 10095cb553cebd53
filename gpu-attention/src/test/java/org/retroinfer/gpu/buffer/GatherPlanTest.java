package org.retroinfer.gpu.buffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Tasks of a gather plan: split at the row limit, copies that continue the last task merged. */
class GatherPlanTest {

  @Test
  void continuingCopiesMergeUpToTheRowLimit() {
    GatherPlan p = new GatherPlan(16);
    p.add(GatherPlan.CACHE, 80, 1000, 8); // block 10
    p.add(GatherPlan.CACHE, 88, 1008, 8); // block 11, right after: one task
    assertEquals(1, p.size());
    assertEquals(16, p.rows(0));
    p.add(GatherPlan.CACHE, 96, 1016, 8); // continues, but the task is full
    assertEquals(2, p.size());
    p.add(GatherPlan.CACHE, 200, 1024, 4); // another block: a new task
    p.add(GatherPlan.CLUSTERS, 204, 1028, 4); // continues the rows, but from another source
    p.add(GatherPlan.CLUSTERS, 300, 1032, 0); // empty: nothing
    assertEquals(4, p.size());
    assertArrayEquals(new int[] {GatherPlan.CACHE, GatherPlan.CACHE, GatherPlan.CACHE,
        GatherPlan.CLUSTERS}, p.sources());
    assertArrayEquals(new long[] {80, 96, 200, 204}, p.srcRows());
    assertArrayEquals(new long[] {1000, 1016, 1024, 1028}, p.dstRows());
    assertArrayEquals(new int[] {16, 8, 4, 4}, p.rowCounts());
    assertEquals(28, p.rowsFrom(GatherPlan.CACHE));
    assertEquals(4, p.rowsFrom(GatherPlan.CLUSTERS));
  }

  @Test
  void aLongCopyFillsTheLastTaskThenSplits() {
    GatherPlan p = new GatherPlan(16);
    p.add(GatherPlan.CLUSTERS, 0, 500, 10);
    p.add(GatherPlan.CLUSTERS, 10, 510, 40); // 6 more fill the first task, then 16, 16, 2
    assertArrayEquals(new int[] {16, 16, 16, 2}, p.rowCounts());
    assertArrayEquals(new long[] {0, 16, 32, 48}, p.srcRows());
    assertArrayEquals(new long[] {500, 516, 532, 548}, p.dstRows());
    assertEquals(50, p.rowsFrom(GatherPlan.CLUSTERS));
    p.clear();
    assertEquals(0, p.size());
    assertEquals(0, p.rowsFrom(GatherPlan.CLUSTERS));
    p.add(GatherPlan.STEADY, 0, 0, 1);
    assertEquals(1, p.size(), "a cleared plan does not merge with its old tasks");
  }

  @Test
  void growsPastItsInitialCapacityAndRejectsBadTasks() {
    GatherPlan p = new GatherPlan(8);
    for (int i = 0; i < 1000; i++) {
      p.add(GatherPlan.CACHE, 16L * i, 8L * i, 8); // never continues: one task each
    }
    assertEquals(1000, p.size());
    assertEquals(8 * 999, p.dstRow(999));
    assertThrows(IllegalArgumentException.class, () -> p.add(3, 0, 0, 1));
    assertThrows(IllegalArgumentException.class, () -> p.add(GatherPlan.CACHE, -1, 0, 1));
    assertThrows(IllegalArgumentException.class, () -> p.add(GatherPlan.CACHE, 0, 0, -1));
    assertThrows(IllegalArgumentException.class, () -> new GatherPlan(0));
  }
}
