package org.retroinfer.gpu.buffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.retroinfer.gpu.bench.DecodeBenchmark;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;

/**
 * Host time of the block-cache side of an {@code OFFLOAD_CACHED} decode step, without a GPU: the
 * benchmark's layout ({@code DecodeBenchmark.tables}: 580 steady tokens, clusters of 8..24 tokens),
 * a 5% block cache of 8-token blocks, and selections of {@code retrieve[i]} clusters per item of
 * which about 98% repeat from the previous step. Times {@link ExecutionAssembler#assemble} plus
 * {@link ExecutionAssembler#submitTo} per step (the engine's critical path), and separately the
 * engine's staging of the plan into native memory. Between steps (untimed, standing in for the GPU
 * step) it waits for the updater and completes the admissions drained a step earlier, as the
 * engine's fills do.
 *
 * <p>A main-method harness, not a test: {@code AssemblerBench [contexts=131072,524288] [batch=8]
 * [steps=400] [warm=200] [repeat=0.98]}. The block pool fragments as the cache turns over (a
 * cluster's blocks stop being consecutive ids), so a long warm-up shows the steady state of a long
 * decode.
 */
public final class AssemblerBench {
  private static final int KV_HEADS = 8;
  private static final int G = 4;

  private AssemblerBench() {}

  public static void main(String[] args) {
    int[] contexts = Arrays.stream(arg(args, 0, "131072,524288").split(","))
        .mapToInt(Integer::parseInt).toArray();
    int batch = Integer.parseInt(arg(args, 1, "8"));
    int steps = Integer.parseInt(arg(args, 2, "400"));
    int warm = Integer.parseInt(arg(args, 3, "200"));
    double repeat = Double.parseDouble(arg(args, 4, "0.98"));
    for (int context : contexts) {
      run(context, batch * KV_HEADS, steps, warm, repeat);
    }
  }

  static void run(int context, int items, int steps, int warm, double repeat) {
    Random rnd = new Random(context * 31L + items);
    BatchTables t = DecodeBenchmark.tables(items, G, context, rnd); // the benchmark's layout
    BlockCache cache = new BlockCache(t.totalClusters(),
        BlockCache.blocksFor(t.clusterRows + t.steadyRows, 0.05, 8), 8);
    ExecutionAssembler asm = new ExecutionAssembler();
    GatherPlan plan = new GatherPlan(64);
    Selection sel = Selection.allocate(t);
    Picker picker = new Picker(t, rnd, repeat);
    int capacity = (int) Math.min(Integer.MAX_VALUE - 8, t.execRows);
    try (CacheUpdater updater = new CacheUpdater(cache); Arena arena = Arena.ofConfined()) {
      MemorySegment stage = arena.allocate(24L * capacity, 8);
      List<Admission> inFlight = new ArrayList<>();
      long[] stepNs = new long[steps];
      long[] submitNs = new long[steps];
      long[] stageNs = new long[steps];
      long tasks = 0;
      long hits = 0;
      long looked = 0;
      for (int s = -warm; s < steps; s++) {
        picker.next(sel);
        long t0 = System.nanoTime();
        asm.assemble(t, sel, cache, false, plan);
        long t1 = System.nanoTime();
        asm.submitTo(updater);
        long t2 = System.nanoTime();
        stage(plan, stage, capacity);
        long t3 = System.nanoTime();
        // the GPU step: the updater decides meanwhile, the last step's fills complete
        updater.awaitIdle();
        for (Admission a : inFlight) {
          cache.complete(a);
        }
        inFlight = updater.drainAdmissions();
        if (s >= 0) {
          stepNs[s] = t2 - t0;
          submitNs[s] = t2 - t1;
          stageNs[s] = t3 - t2;
          tasks += plan.size();
          hits += asm.hitCount();
          looked += asm.hitCount() + asm.missCount();
        }
      }
      System.out.printf(Locale.ROOT, "context %7d items %3d: %6d clusters/step, %7d blocks,"
              + " hit ratio %.4f | assemble+submit us: median %7.1f mean %7.1f p10 %7.1f"
              + " p90 %7.1f (submit median %5.1f) | tasks/step %6.0f, staged in %6.1f us%n",
          context, items, looked / steps, cache.blocks(), (double) hits / Math.max(1, looked),
          pct(stepNs, 0.5) / 1e3, Arrays.stream(stepNs).average().orElse(0) / 1e3,
          pct(stepNs, 0.1) / 1e3, pct(stepNs, 0.9) / 1e3, pct(submitNs, 0.5) / 1e3,
          (double) tasks / steps, pct(stageNs, 0.5) / 1e3);
    }
  }

  /** The engine's {@code Tasks.stage}: the plan's columns written into native staging memory. */
  private static void stage(GatherPlan p, MemorySegment s, long c) {
    int count = p.size();
    for (int i = 0; i < count; i++) {
      s.set(ValueLayout.JAVA_INT_UNALIGNED, 4L * i, p.source(i));
      s.set(ValueLayout.JAVA_LONG_UNALIGNED, 4 * c + 8L * i, p.srcRow(i));
      s.set(ValueLayout.JAVA_LONG_UNALIGNED, 12 * c + 8L * i, p.dstRow(i));
      s.set(ValueLayout.JAVA_INT_UNALIGNED, 20 * c + 4L * i, p.rows(i));
    }
  }

  /**
   * Selections as {@code select_top} writes them: {@code retrieve[i]} distinct local ids per item,
   * ascending, at rows after the steady zone in id order; each step keeps each id with probability
   * {@code repeat} and replaces the rest with random ids not chosen.
   */
  private static final class Picker {
    private final BatchTables t;
    private final Random rnd;
    private final double repeat;
    private final boolean[] chosen;
    private final int[][] ids;

    Picker(BatchTables t, Random rnd, double repeat) {
      this.t = t;
      this.rnd = rnd;
      this.repeat = repeat;
      this.chosen = new boolean[t.totalClusters()];
      this.ids = new int[t.items][];
      for (int i = 0; i < t.items; i++) {
        ids[i] = new int[t.retrieve[i]];
        for (int k = 0; k < ids[i].length; k++) {
          ids[i][k] = fresh(i);
        }
      }
    }

    private int fresh(int item) {
      int base = (int) t.centBase[item];
      while (true) {
        int c = rnd.nextInt(t.clusters[item]);
        if (!chosen[base + c]) {
          chosen[base + c] = true;
          return c;
        }
      }
    }

    void next(Selection s) {
      for (int i = 0; i < t.items; i++) {
        int base = (int) t.centBase[i];
        int[] a = ids[i];
        for (int k = 0; k < a.length; k++) {
          if (rnd.nextDouble() >= repeat) {
            int old = a[k];
            a[k] = fresh(i);
            chosen[base + old] = false;
          }
        }
        Arrays.sort(a);
        int off = i * s.rStride();
        int row = t.steadyLen[i];
        for (int k = 0; k < a.length; k++) {
          s.retIds()[off + k] = a[k];
          s.retDst()[off + k] = row;
          row += t.clusterSize[base + a[k]];
        }
        s.execLen()[i] = row;
      }
    }
  }



  private static double pct(long[] a, double p) {
    long[] s = a.clone();
    Arrays.sort(s);
    return s[(int) Math.min(s.length - 1, Math.round(p * (s.length - 1)))];
  }

  private static String arg(String[] args, int i, String dflt) {
    return args.length > i ? args[i] : dflt;
  }
}
