package org.retroinfer.gpu.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.buffer.Admission;
import org.retroinfer.gpu.buffer.BlockCache;
import org.retroinfer.gpu.buffer.CacheUpdater;
import org.retroinfer.gpu.buffer.ExecutionAssembler;
import org.retroinfer.gpu.buffer.GatherPlan;
import org.retroinfer.gpu.emulation.KernelEmulator;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;

/**
 * The benchmark's synthetic layout, and the bounds the GPU engine sizes its task buffers with
 * (execution rows for a step's gather, blocks for a fill), on the host side of the offload path.
 */
class BenchmarkLayoutTest {
  private final Random rnd = new Random(System.nanoTime());

  @Test
  void layoutCoversTheContextAndTaskBoundsHold() {
    int context = 32768;
    int items = 16;
    BatchTables t = DecodeBenchmark.tables(items, 4, context, rnd);
    for (int i = 0; i < items; i++) {
      long tokens = t.steadyLen[i];
      for (int c = 0; c < t.clusters[i]; c++) {
        int size = t.clusterSize[(int) (t.centBase[i] + c)];
        assertTrue(size >= 1 && size <= 24);
        tokens += size;
      }
      assertEquals(context, tokens);
      assertEquals(Math.max(64, (int) Math.ceil(0.018 * t.clusters[i])), t.retrieve[i]);
    }
    BlockCache cache = new BlockCache(t.totalClusters(),
        BlockCache.blocksFor(t.clusterRows + t.steadyRows, 0.05, 8), 8);
    ExecutionAssembler asm = new ExecutionAssembler();
    GatherPlan plan = new GatherPlan(64);
    GatherPlan fill = new GatherPlan(8);
    int cs = t.maxClusters();
    try (CacheUpdater u = new CacheUpdater(cache)) {
      float[] scores = new float[items * cs];
      for (int step = 0; step < 20; step++) {
        for (int k = 0; k < scores.length; k++) {
          scores[k] = step == 0 ? rnd.nextFloat() : Math.max(0, scores[k] + 0.05f * (float) rnd.nextGaussian());
        }
        Selection sel = Selection.allocate(t);
        KernelEmulator.select(t, scores, cs, sel);
        asm.assemble(t, sel, cache, false, plan);
        assertTrue(plan.size() <= t.execRows, "step tasks exceed the engine's capacity");
        long rows = plan.rowsFrom(GatherPlan.CACHE) + plan.rowsFrom(GatherPlan.CLUSTERS);
        long expect = 0;
        for (int i = 0; i < items; i++) {
          expect += sel.execLen()[i] - t.steadyLen[i];
        }
        assertEquals(expect, rows, "every retrieved row is copied exactly once");
        asm.submitTo(u);
        u.awaitIdle();
        List<Admission> adm = u.drainAdmissions();
        ExecutionAssembler.fillPlan(t, adm, 8, fill);
        assertTrue(fill.size() <= cache.blocks(), "fill tasks exceed the block count");
        adm.forEach(cache::complete);
      }
      assertTrue(cache.stats().hitClusters() > 0, "slowly drifting scores must hit: " + cache.stats());
    }
  }
}
