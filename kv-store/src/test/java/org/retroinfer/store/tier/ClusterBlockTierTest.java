package org.retroinfer.store.tier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.index.WaveIndex;

class ClusterBlockTierTest {
  @TempDir Path dir;

  /** The reference: a plain list, most recently used last, evicting from the front. */
  static final class ListLru {
    final long capacity;
    final List<BlockKey> order = new ArrayList<>();
    final Map<BlockKey, Integer> size = new HashMap<>();
    long bytes;

    ListLru(long capacity) {
      this.capacity = capacity;
    }

    void put(BlockKey k, int s) {
      if (order.remove(k)) {
        bytes -= size.get(k);
      }
      while (bytes + s > capacity) {
        BlockKey e = order.remove(0);
        bytes -= size.remove(e);
      }
      order.add(k);
      size.put(k, s);
      bytes += s;
    }

    boolean get(BlockKey k) {
      if (order.remove(k)) {
        order.add(k);
        return true;
      }
      return false;
    }
  }

  @Test
  void holdsAtMostItsCapacityAndEvictsLeastRecentlyUsed() throws Exception {
    long seed = new SplittableRandom().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    long capacity = 120_000;
    Map<BlockKey, byte[][]> content = new HashMap<>();
    ListLru ref;
    try (ClusterBlockTier tier = ClusterBlockTier.open(dir.resolve("tier.cmap"), capacity, 1024)) {
      ref = new ListLru(tier.byteBudget());
      assertTrue(tier.byteBudget() > capacity / 3 && tier.byteBudget() < capacity);
      for (int op = 0; op < 2000; op++) {
        BlockKey k = new BlockKey(r.nextInt(3), r.nextInt(4), r.nextInt(2), r.nextInt(20));
        if (r.nextInt(3) == 0) {
          int rows = 1 + r.nextInt(30);
          byte[] kb = new byte[rows * 32];
          byte[] vb = new byte[rows * 32];
          r.nextBytes(kb);
          r.nextBytes(vb);
          tier.put(k, kb, vb);
          ref.put(k, kb.length + vb.length);
          content.put(k, new byte[][] {kb, vb});
        } else {
          ClusterBlockTier.Block b = tier.get(k);
          boolean hit = ref.get(k);
          assertEquals(hit, b != null, "op " + op + " " + k + ", seed " + seed);
          if (b != null) {
            assertArrayEquals(content.get(k)[0], b.keys());
            assertArrayEquals(content.get(k)[1], b.values());
          }
        }
        assertTrue(tier.bytes() <= capacity);
        assertEquals(ref.bytes, tier.bytes(), "op " + op + ", seed " + seed);
      }
      assertEquals(ref.order, tier.recencyOrder(), "seed " + seed);
      assertTrue(tier.evictions() > 0, "the workload must overflow the capacity");
      assertThrows(IllegalArgumentException.class,
          () -> tier.put(new BlockKey(9, 0, 0, 0), new byte[(int) tier.byteBudget()], new byte[1]));
    }
    assertTrue(java.nio.file.Files.size(dir.resolve("tier.cmap")) <= capacity,
        "the file stays within the capacity");
    // Reopened: the same blocks; recency as of their last put.
    try (ClusterBlockTier tier = ClusterBlockTier.open(dir.resolve("tags.cmap"), capacity, 1024)) {
      BlockKey k = new BlockKey(1, 2, 3, 4);
      tier.put(k, 77L, new byte[] {1, 2}, new byte[] {3, 4});
      assertNotNull(tier.get(k, 77L));
      assertNull(tier.get(k, 78L), "a block is served only to the owner that put it");
    }
    try (ClusterBlockTier tier = ClusterBlockTier.open(dir.resolve("tier.cmap"), capacity, 1024)) {
      assertEquals(ref.bytes, tier.bytes());
      for (BlockKey k : ref.order) {
        ClusterBlockTier.Block b = tier.get(k);
        assertNotNull(b, k + ", seed " + seed);
        assertArrayEquals(content.get(k)[0], b.keys());
      }
      assertNull(tier.get(new BlockKey(99, 0, 0, 0)));
    }
    assertEquals("true", System.getProperty("chronicle.analytics.disable"));
  }

  @Test
  void warmPutsEveryClusterOfAContextAsItsRows() throws Exception {
    SplittableRandom r = new SplittableRandom(new SplittableRandom().nextLong());
    AttentionShape shape = new AttentionShape(2, 2, 1, 16);
    WaveConfig config = WaveConfig.builder().windowTokens(8).updateTokens(32).segmentTokens(64)
        .tokensPerCluster(8).build();
    try (ContextCache c = new WaveAttention(config).newContext(shape);
        ClusterBlockTier tier = ClusterBlockTier.open(dir.resolve("warm.cmap"), 1 << 20, 512)) {
      for (int l = 0; l < 2; l++) {
        for (int p = 0; p < 200; p++) {
          float[] k = new float[16];
          float[] v = new float[16];
          for (int i = 0; i < 16; i++) {
            k[i] = (float) r.nextGaussian();
            v[i] = (float) r.nextGaussian();
          }
          c.append(l, k, v);
        }
      }
      c.endPrefill();
      int blocks = tier.warm(7, c);
      WaveIndex index = ((WaveHeadCache) c.head(1, 0)).index();
      assertEquals(2 * index.clusterCount(), blocks);
      int cl = index.clusterCount() / 2;
      ClusterBlockTier.Block b = tier.get(new BlockKey(7, 1, 0, cl));
      byte[] expect = index.keys().rows(index.clusterStart(cl), index.clusterStart(cl + 1))
          .toArray(ValueLayout.JAVA_BYTE);
      assertArrayEquals(expect, b.keys());
      // decode the first key row of the block and compare with the stored row, as floats
      float first = index.kvType().decode16((short) ((b.keys()[0] & 0xff) | (b.keys()[1] << 8)));
      assertEquals(index.keys().get(index.clusterStart(cl), 0), first);
    }
  }
}
