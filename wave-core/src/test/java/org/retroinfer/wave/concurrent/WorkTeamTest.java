package org.retroinfer.wave.concurrent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkTeamTest {
  /** Every item of every region is visited exactly once, for many sizes and chunk counts. */
  @Test
  void coversEveryItemOnce() {
    WorkTeam team = new WorkTeam(3);
    for (int n = 1; n <= 70; n += 3) {
      for (int chunks = 1; chunks <= 9; chunks++) {
        AtomicIntegerArray hits = new AtomicIntegerArray(n);
        team.forRange(n, chunks, (from, to) -> {
          for (int i = from; i < to; i++) {
            hits.incrementAndGet(i);
          }
        });
        for (int i = 0; i < n; i++) {
          assertEquals(1, hits.get(i), "n " + n + ", chunks " + chunks + ", item " + i);
        }
      }
    }
  }

  /** Helpers do take chunks: with a chunk that waits for another, one thread alone would hang. */
  @Test
  void helpersRunChunksConcurrently() throws Exception {
    WorkTeam team = new WorkTeam(2);
    CountDownLatch both = new CountDownLatch(2);
    Set<String> threads = ConcurrentHashMap.newKeySet();
    team.forRange(2, 2, (from, to) -> {
      threads.add(Thread.currentThread().getName());
      both.countDown();
      try {
        assertTrue(both.await(10, TimeUnit.SECONDS), "the other chunk never ran alongside");
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    });
    assertEquals(2, threads.size(), threads.toString());
  }

  /** Helpers that parked after a long idle time wake for the next region. */
  @Test
  void parkedHelpersWakeUp() throws Exception {
    WorkTeam team = new WorkTeam(2);
    team.forRange(4, 4, (from, to) -> {});
    Thread.sleep(TimeUnit.NANOSECONDS.toMillis(WorkTeam.SPIN_NANOS) * 10 + 20);
    helpersRunChunksAfterIdle(team);
  }

  private static void helpersRunChunksAfterIdle(WorkTeam team) throws Exception {
    CountDownLatch both = new CountDownLatch(2);
    team.forRange(2, 2, (from, to) -> {
      both.countDown();
      try {
        assertTrue(both.await(10, TimeUnit.SECONDS), "a parked helper did not wake");
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    });
  }

  /** A region started from inside a chunk runs inline instead of deadlocking. */
  @Test
  void nestedRegionsRunInline() {
    WorkTeam team = new WorkTeam(2);
    AtomicIntegerArray hits = new AtomicIntegerArray(16);
    team.forRange(4, 4, (from, to) -> {
      for (int i = from; i < to; i++) {
        int outer = i;
        team.forRange(4, 4, (a, b) -> {
          for (int j = a; j < b; j++) {
            hits.incrementAndGet(outer * 4 + j);
          }
        });
      }
    });
    for (int i = 0; i < 16; i++) {
      assertEquals(1, hits.get(i), "item " + i);
    }
  }

  /** A failing chunk's exception reaches the caller, after the other chunks ran. */
  @Test
  void failuresPropagate() {
    WorkTeam team = new WorkTeam(2);
    AtomicIntegerArray hits = new AtomicIntegerArray(8);
    IllegalArgumentException thrown = new IllegalArgumentException("chunk 3");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> team.forRange(8, 8, (from, to) -> {
          hits.incrementAndGet(from);
          if (from == 3) {
            throw thrown;
          }
        }));
    assertSame(thrown, e);
    for (int i = 0; i < 8; i++) {
      assertEquals(1, hits.get(i), "chunk " + i);
    }
    // the team still works afterwards
    AtomicIntegerArray again = new AtomicIntegerArray(5);
    team.forRange(5, 5, (from, to) -> again.incrementAndGet(from));
    for (int i = 0; i < 5; i++) {
      assertEquals(1, again.get(i));
    }
  }

  /** Many threads sharing one team: each region still sees each of its items once. */
  @Test
  void concurrentCallers() throws Exception {
    WorkTeam team = new WorkTeam(2);
    Thread[] callers = new Thread[4];
    AtomicIntegerArray[] hits = new AtomicIntegerArray[callers.length];
    for (int c = 0; c < callers.length; c++) {
      AtomicIntegerArray mine = hits[c] = new AtomicIntegerArray(1000);
      callers[c] = new Thread(() -> {
        for (int round = 0; round < 200; round++) {
          team.forRange(5, 5, (from, to) -> {
            for (int i = from; i < to; i++) {
              for (int k = 0; k < 200; k++) {
                mine.incrementAndGet((i * 200 + k) % 1000);
              }
            }
          });
        }
      });
      callers[c].start();
    }
    for (Thread t : callers) {
      t.join(60_000);
    }
    for (AtomicIntegerArray h : hits) {
      for (int i = 0; i < 1000; i++) {
        assertEquals(200, h.get(i));
      }
    }
  }

  @Test
  void rejectsAnEmptyTeam() {
    assertThrows(IllegalArgumentException.class, () -> new WorkTeam(0));
  }
}
