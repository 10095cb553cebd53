package org.retroinfer.gpu.buffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The wave buffer's cache logic: LRU order, block accounting, the admission protocol. */
class BlockCacheTest {
  private final Random rnd = new Random(System.nanoTime());

  @Test
  void lruListOrdersByRecency() {
    LruList l = new LruList(5);
    l.touch(1);
    l.touch(2);
    l.touch(3);
    l.touch(1);
    assertArrayEquals(new int[] {1, 3, 2}, l.toArray());
    assertEquals(2, l.leastRecent());
    l.remove(2);
    assertEquals(3, l.leastRecent());
    l.remove(4); // absent: no-op
    assertEquals(2, l.size());
    assertThrows(IndexOutOfBoundsException.class, () -> l.touch(5));
  }

  @Test
  void lruListMatchesAReferenceUnderRandomOperations() {
    int n = 50;
    LruList l = new LruList(n);
    LinkedHashMap<Integer, Boolean> ref = new LinkedHashMap<>(16, 0.75f, true);
    for (int op = 0; op < 20_000; op++) {
      int id = rnd.nextInt(n);
      if (rnd.nextInt(4) == 0) {
        l.remove(id);
        ref.remove(id);
      } else {
        l.touch(id);
        ref.put(id, true);
      }
    }
    List<Integer> order = new ArrayList<>(ref.keySet()); // least recent first
    int[] expect = new int[order.size()];
    for (int i = 0; i < expect.length; i++) {
      expect[i] = order.get(order.size() - 1 - i);
    }
    assertArrayEquals(expect, l.toArray());
  }

  @Test
  void allocatorHandsOutEachBlockOnce() {
    BlockAllocator a = new BlockAllocator(10, 8);
    assertEquals(3, a.blocksFor(17));
    int[] x = a.allocate(4);
    int[] y = a.allocate(6);
    assertNull(a.allocate(1));
    Set<Integer> seen = new HashSet<>();
    for (int b : x) {
      assertTrue(seen.add(b));
    }
    for (int b : y) {
      assertTrue(seen.add(b));
    }
    a.release(x);
    assertEquals(4, a.freeBlocks());
    assertThrows(IllegalStateException.class, () -> a.release(x), "double release is a bug");
  }

  @Test
  void admittedClusterIsAHitOnlyAfterItsCopyCompletes() {
    BlockCache c = new BlockCache(100, 4, 8);
    assertNull(c.lookup(7, 20));
    Admission a = c.admit(7, 20);
    assertNotNull(a);
    assertEquals(3, a.blocks().length);
    assertNull(c.lookup(7, 20), "pending is still a miss");
    assertTrue(c.complete(a));
    assertArrayEquals(a.blocks(), c.lookup(7, 20));
    assertNull(c.admit(7, 20), "already cached");
    CacheStats s = c.stats();
    assertEquals(1, s.hitClusters());
    assertEquals(2, s.missClusters());
    assertEquals(20, s.hitTokens());
  }

  @Test
  void evictsLeastRecentlyUsedAndIgnoresStaleCompletions() {
    BlockCache c = new BlockCache(10, 4, 8); // 4 blocks
    Admission a1 = c.admit(1, 8);
    Admission a2 = c.admit(2, 8);
    Admission a3 = c.admit(3, 16);
    c.complete(a1);
    c.complete(a2);
    c.complete(a3);
    c.touch(1); // 2 is now least recent
    Admission a4 = c.admit(4, 8);
    assertNotNull(a4);
    assertEquals(ClusterMappingTable.State.ABSENT, c.state(2));
    assertEquals(ClusterMappingTable.State.RESIDENT, c.state(1));
    // 4 is pending; evict it before its copy completes, then its completion must be ignored
    Admission a5 = c.admit(5, 32); // needs all 4 blocks
    assertNotNull(a5);
    assertFalse(c.complete(a4), "a stale admission must not become resident");
    assertEquals(ClusterMappingTable.State.ABSENT, c.state(4));
    assertTrue(c.complete(a5));
    assertArrayEquals(new int[] {5}, c.residentByRecency());
    assertNull(c.admit(6, 33), "larger than the whole cache: rejected");
    assertEquals(1, c.stats().rejected());
  }

  @Test
  void randomWorkloadKeepsBlocksConsistentAndMatchesAReferenceLru() {
    int clusters = 400;
    int blocks = 60;
    int bt = 8;
    BlockCache c = new BlockCache(clusters, blocks, bt);
    int[] size = new int[clusters];
    for (int i = 0; i < clusters; i++) {
      size[i] = 1 + rnd.nextInt(24);
    }
    // reference: recency-ordered map of cached clusters, evicting least recent for room
    LinkedHashMap<Integer, Integer> ref = new LinkedHashMap<>(16, 0.75f, true);
    int refUsed = 0;
    ArrayDeque<Admission> pending = new ArrayDeque<>();
    for (int step = 0; step < 5000; step++) {
      int k = (int) Math.min(clusters - 1, Math.abs(rnd.nextGaussian()) * 40); // skewed popularity
      boolean hit = c.lookup(k, size[k]) != null;
      assertEquals(ref.containsKey(k) && pending.stream().noneMatch(p -> p.cluster() == k), hit,
          "step " + step + ": hit status of cluster " + k);
      if (ref.containsKey(k)) {
        c.touch(k);
        ref.get(k);
      } else {
        Admission a = c.admit(k, size[k]);
        assertNotNull(a);
        int need = (size[k] + bt - 1) / bt;
        while (refUsed + need > blocks) {
          Map.Entry<Integer, Integer> victim = ref.entrySet().iterator().next();
          refUsed -= victim.getValue();
          ref.remove(victim.getKey());
        }
        ref.put(k, need);
        refUsed += need;
        pending.add(a);
      }
      if (rnd.nextBoolean()) {
        while (!pending.isEmpty()) {
          c.complete(pending.poll());
        }
      }
      assertEquals(blocks - refUsed, c.freeBlocks(), "step " + step + ": free blocks");
    }
  }

  @Test
  void blocksForIsFivePercentOfTokensByDefault() {
    assertEquals(640, BlockCache.blocksFor(102_400, 0.05, 8));
    assertEquals(1, BlockCache.blocksFor(3, 0.05, 8));
    assertThrows(IllegalArgumentException.class, () -> BlockCache.blocksFor(100, 1.5, 8));
  }

  @Test
  void mappingTableKnowsConsecutiveAndScatteredBlocks() {
    ClusterMappingTable t = new ClusterMappingTable(10); // learns the block count as it goes
    t.assign(1, new int[] {2, 3, 4}, 1);
    assertEquals(ClusterMappingTable.State.PENDING, t.state(1));
    assertNull(t.residentBlocks(1));
    assertArrayEquals(new int[] {2, 3, 4}, t.assignedBlocks(1));
    t.markResident(1);
    assertEquals(ClusterMappingTable.RUN, ClusterMappingTable.kind(t.meta(1)));
    assertEquals(2, ClusterMappingTable.first(t.meta(1)));
    assertEquals(3, ClusterMappingTable.count(t.meta(1)));
    t.assign(2, new int[] {600, 0, 7, 9}, 2);
    t.markResident(2);
    assertEquals(ClusterMappingTable.SCATTERED, ClusterMappingTable.kind(t.meta(2)));
    assertEquals(0, ClusterMappingTable.second(t.more(2)));
    assertEquals(7, ClusterMappingTable.third(t.more(2)));
    assertEquals(9, t.nextBlock(7));
    assertArrayEquals(new int[] {600, 0, 7, 9}, t.residentBlocks(2));
    assertEquals(2, t.residentCount());
    assertEquals(2, t.generation(2));
    assertThrows(IllegalStateException.class, () -> t.assign(2, new int[] {5}, 3));
    assertThrows(IllegalStateException.class, () -> t.markResident(2));
    assertArrayEquals(new int[] {2, 3, 4}, t.clear(1));
    assertEquals(ClusterMappingTable.State.ABSENT, t.state(1));
    assertNull(t.clear(1));
    assertEquals(1, t.residentCount());
    assertThrows(IndexOutOfBoundsException.class, () -> t.state(10));
  }

  @Test
  void releasedBlocksAreHandedOutAgainInTheirOrder() {
    BlockAllocator a = new BlockAllocator(10, 8);
    int[] x = a.allocate(3);
    assertArrayEquals(new int[] {0, 1, 2}, x, "a fresh pool hands out its blocks from the front");
    assertArrayEquals(new int[] {3, 4}, a.allocate(2));
    a.release(x);
    assertArrayEquals(x, a.allocate(3), "a freed run of blocks stays a run");
  }
}
