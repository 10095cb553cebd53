package org.retroinfer.gpu.buffer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * The assembly of the execution buffer through the block cache copies exactly the rows that the
 * uncached assembly copies, whether the hits' blocks are consecutive or scattered over the pool,
 * and counts hits and misses as the cache's lookups do.
 */
class ExecutionAssemblerTest {
  private final long seed = System.nanoTime();
  private final Random rnd = new Random(seed);

  @Test
  void cachedPlanCopiesTheSameRowsAsTheUncachedOne() {
    int items = 3;
    int[] steady = new int[items];
    int[][] sizes = new int[items][];
    for (int i = 0; i < items; i++) {
      steady[i] = 5 + rnd.nextInt(40);
      sizes[i] = new int[200 + rnd.nextInt(100)];
      for (int c = 0; c < sizes[i].length; c++) {
        sizes[i][c] = 1 + rnd.nextInt(40); // up to 5 blocks: past the three a slot holds
      }
    }
    BatchTables t = new BatchTables(16, 1, KvDType.FLOAT32, steady, sizes,
        WaveConfig.fixed().toBuilder().retrievalMinClusters(30).build());
    int bt = 8;
    // a small cache: evictions, and so hits in scattered blocks, from the first steps on
    BlockCache cache = new BlockCache(t.totalClusters(), 100, bt);
    // row labels: steady row s is -1 - s, pool row r is r; the block pool holds what fills copy
    long[] blockPool = new long[cache.blocks() * bt];
    Arrays.fill(blockPool, Long.MIN_VALUE);
    ExecutionAssembler asm = new ExecutionAssembler();
    ExecutionAssembler plain = new ExecutionAssembler();
    GatherPlan plan = new GatherPlan(16);
    GatherPlan expected = new GatherPlan(16);
    GatherPlan fill = new GatherPlan(bt);
    Selection sel = Selection.allocate(t);
    int scattered = 0;
    int runs = 0;
    int longScattered = 0;
    long hitsSeen = 0;
    try (CacheUpdater u = new CacheUpdater(cache)) {
      for (int step = 0; step < 60; step++) {
        select(t, sel, step);
        boolean steadyToo = step % 2 == 0;
        CacheStats before = cache.stats();
        for (int i = 0; i < t.items; i++) {
          for (int k = 0; k < t.retrieve[i]; k++) {
            int c = (int) t.centBase[i] + sel.retIds()[i * sel.rStride() + k];
            int[] b = cache.table().residentBlocks(c);
            if (b != null && b.length > 1) {
              boolean run = true;
              for (int j = 1; j < b.length; j++) {
                run &= b[j] == b[j - 1] + 1;
              }
              scattered += run ? 0 : 1;
              runs += run ? 1 : 0;
              longScattered += run || b.length < 4 ? 0 : 1;
            }
          }
        }
        asm.assemble(t, sel, cache, steadyToo, plan);
        plain.assemble(t, sel, null, steadyToo, expected);
        assertArrayEquals(execute(t, expected, blockPool), execute(t, plan, blockPool),
            "step " + step + ": the cached plan copies other rows (seed " + seed + ")");
        assertEquals(expected.rowsFrom(GatherPlan.CLUSTERS),
            plan.rowsFrom(GatherPlan.CACHE) + plan.rowsFrom(GatherPlan.CLUSTERS));
        assertEquals(expected.rowsFrom(GatherPlan.STEADY), plan.rowsFrom(GatherPlan.STEADY));
        for (int k = 0; k < plan.size(); k++) {
          assertTrue(plan.rows(k) > 0 && plan.rows(k) <= 16, "task " + k + " rows " + plan.rows(k));
        }
        CacheStats after = cache.stats();
        assertEquals(asm.hitCount(), after.hitClusters() - before.hitClusters());
        assertEquals(asm.missCount(), after.missClusters() - before.missClusters());
        assertEquals(plan.rowsFrom(GatherPlan.CACHE), after.hitTokens() - before.hitTokens());
        assertEquals(plain.missCount(), asm.hitCount() + asm.missCount());
        hitsSeen += asm.hitCount();
        asm.submitTo(u);
        u.awaitIdle();
        List<Admission> adm = u.drainAdmissions();
        ExecutionAssembler.fillPlan(t, adm, bt, fill);
        for (int k = 0; k < fill.size(); k++) {
          for (int r = 0; r < fill.rows(k); r++) {
            blockPool[(int) fill.dstRow(k) + r] = fill.srcRow(k) + r;
          }
        }
        for (Admission a : adm) {
          if (rnd.nextInt(5) > 0) { // some stay pending a step longer: misses still
            cache.complete(a);
          }
        }
      }
    }
    assertTrue(hitsSeen > 0, "no hits (seed " + seed + ")");
    assertTrue(longScattered > 0 && runs > 0, "hits in scattered blocks " + scattered + " ("
        + longScattered + " of 4 blocks or more) and in consecutive ones " + runs
        + ": every path must run (seed " + seed + ")");
  }

  @Test
  void aClusterResidentWithAnotherSizeIsRejected() {
    int[][] sizes = {{8, 20, 5}};
    BatchTables t = new BatchTables(16, 1, KvDType.FLOAT32, new int[] {4}, sizes,
        WaveConfig.fixed().toBuilder().retrievalMinClusters(3).build());
    BlockCache cache = new BlockCache(t.totalClusters(), 10, 8);
    cache.complete(cache.admit(1, 8)); // cluster 1 has 20 tokens: 3 blocks, not 1
    Selection sel = Selection.allocate(t);
    int row = 4;
    for (int k = 0; k < 3; k++) {
      sel.retIds()[k] = k;
      sel.retDst()[k] = row;
      row += sizes[0][k];
    }
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> new ExecutionAssembler().assemble(t, sel, cache, false, new GatherPlan(64)));
    assertTrue(e.getMessage().contains("another size"), e.getMessage());
  }

  /** Clusters drifting from step to step: most stay, some are replaced, ascending per item. */
  private void select(BatchTables t, Selection s, int step) {
    for (int i = 0; i < t.items; i++) {
      int r = t.retrieve[i];
      int off = i * s.rStride();
      boolean[] chosen = new boolean[t.clusters[i]];
      int n = 0;
      if (step > 0) {
        for (int k = 0; k < r; k++) {
          if (rnd.nextInt(10) > 0) {
            chosen[s.retIds()[off + k]] = true;
            n++;
          }
        }
      }
      while (n < r) {
        int c = rnd.nextInt(t.clusters[i]);
        if (!chosen[c]) {
          chosen[c] = true;
          n++;
        }
      }
      int row = t.steadyLen[i];
      int k = 0;
      for (int c = 0; c < chosen.length; c++) {
        if (chosen[c]) {
          s.retIds()[off + k] = c;
          s.retDst()[off + k++] = row;
          row += t.clusterSize[(int) t.centBase[i] + c];
        }
      }
      s.execLen()[i] = row;
    }
  }

  /** The labels the plan's copies leave in the execution buffer. */
  private static long[] execute(BatchTables t, GatherPlan p, long[] blockPool) {
    long[] exec = new long[(int) t.execRows];
    Arrays.fill(exec, Long.MAX_VALUE);
    for (int k = 0; k < p.size(); k++) {
      for (int r = 0; r < p.rows(k); r++) {
        long src = p.srcRow(k) + r;
        exec[(int) p.dstRow(k) + r] = switch (p.source(k)) {
          case GatherPlan.STEADY -> -1 - src;
          case GatherPlan.CACHE -> blockPool[(int) src];
          default -> src;
        };
      }
    }
    return exec;
  }
}
