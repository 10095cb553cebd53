package org.retroinfer.gpu.buffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The updater applies steps in order on its own thread and never loses an error. */
class CacheUpdaterTest {

  @Test
  void decisionsArriveInStepOrderAndCompleteToHits() {
    BlockCache cache = new BlockCache(1000, 100, 8);
    try (CacheUpdater u = new CacheUpdater(cache)) {
      for (int step = 0; step < 50; step++) {
        int[] misses = {step * 2, step * 2 + 1};
        int[] tokens = {5 + step % 7, 9};
        u.submit(new int[0], 0, misses, tokens, 2);
      }
      u.awaitIdle();
      List<Admission> decided = u.drainAdmissions();
      assertEquals(100, decided.size());
      for (int i = 1; i < decided.size(); i++) {
        assertTrue(decided.get(i).generation() > decided.get(i - 1).generation(), "step order");
      }
      int resident = 0;
      for (Admission a : decided) {
        if (cache.complete(a)) {
          resident++;
        }
      }
      // 100 blocks, clusters of 1-2 blocks: the latest ones fit, earlier ones were evicted
      assertTrue(resident > 40 && resident < 100, "resident " + resident);
      assertTrue(cache.stats().evicted() > 0);
    }
  }

  @Test
  void failuresOnTheUpdaterThreadSurface() {
    BlockCache cache = new BlockCache(10, 10, 8);
    try (CacheUpdater u = new CacheUpdater(cache)) {
      u.submit(new int[0], 0, new int[] {3}, new int[] {0}, 1); // empty cluster: rejected
      IllegalStateException e = assertThrows(IllegalStateException.class, u::awaitIdle);
      assertTrue(e.getMessage().contains("never empty"), e.getMessage());
    }
  }

  @Test
  void stepsAreCopiedAtSubmitAndCloseAppliesThemAll() {
    BlockCache cache = new BlockCache(100, 100, 8);
    CacheUpdater u = new CacheUpdater(cache);
    int[] misses = {1, 2, 3};
    int[] tokens = {8, 16, 8};
    u.submit(new int[0], 0, misses, tokens, 3);
    misses[0] = 50; // the caller reuses its arrays at once
    tokens[1] = 0;
    u.submit(new int[] {2}, 1, new int[] {4}, new int[] {8}, 1);
    u.close();
    List<Admission> decided = u.drainAdmissions();
    assertEquals(List.of(1, 2, 3, 4), decided.stream().map(Admission::cluster).toList());
    assertEquals(2, decided.get(1).blocks().length);
    assertThrows(IllegalStateException.class,
        () -> u.submit(new int[0], 0, new int[0], new int[0], 0));
  }

  @Test
  void anIdleUpdaterWakesForTheNextStep() throws InterruptedException {
    BlockCache cache = new BlockCache(100, 100, 8);
    try (CacheUpdater u = new CacheUpdater(cache)) {
      u.submit(new int[0], 0, new int[] {7}, new int[] {8}, 1);
      u.awaitIdle();
      Thread.sleep(120); // past the polling period: the thread sleeps until woken
      u.submit(new int[] {7}, 1, new int[] {8}, new int[] {8}, 1);
      u.awaitIdle();
      assertEquals(List.of(7, 8), u.drainAdmissions().stream().map(Admission::cluster).toList());
    }
  }
}
