package org.retroinfer.gpu.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;
import org.retroinfer.gpu.buffer.CacheStats;
import org.retroinfer.gpu.cuda.Cuda;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.engine.GpuFullAttentionEngine;
import org.retroinfer.gpu.engine.GpuWaveEngine;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * Decode attention per layer on the GPU, Llama-3-8B shape (32 query heads, 8 KV heads, head dim
 * 128, bf16 K/V), for each context length and batch size: the own full-attention kernel, wave
 * attention with all K/V in GPU memory, wave attention with K/V in pinned CPU memory behind a 5%
 * block cache, and the same retrieved clusters fetched with no cache. Prints one table (last).
 *
 * <p>Data is synthetic and generated on the device: K/V rows with cluster structure, cluster sizes
 * drawn uniformly from 8..24 tokens (mean 16, as k-means gives), a steady zone of 4 sinks + 64 window
 * + 512 decoded tokens (half an update interval). Queries follow a random walk (each step adds
 * Gaussian noise of {@code drift} times the query scale), standing in for the temporal locality of
 * real decoding that the block cache relies on: hit ratios depend on it and are reported as
 * measured on this workload, not as the paper's. All timings are wall-clock, one synchronised step
 * at a time (host work included: launches, the selection round trip and the mapping-table lookups
 * of the offload modes); full attention is also timed as back-to-back launches synchronised once,
 * which is the kernel's own time and gives its achieved bandwidth.
 *
 * <p>Usage: {@code DecodeBenchmark [contexts=32768,131072,524288] [batches=1,8] [steps=20]
 * [drift=0.05]}.
 */
public final class DecodeBenchmark {
  private static final int QUERY_HEADS = 32;
  private static final int KV_HEADS = 8;
  private static final int DIM = 128;
  private static final int STEADY = 4 + 64 + 512;

  private DecodeBenchmark() {}

  /** One row of the table. */
  record Row(int context, int batch, double fullUs, double fullKernelUs, double fullGbs, double waveUs,
      double cachedUs,
      double hitRatio, double cachedPcieMb, double uncachedUs, double uncachedPcieMb,
      double fullGraphUs, double waveGraphUs, double waveDeviceUs, List<Wave> modes) {}

  /** One wave mode's timings: per step, host enqueue time, GPU time per stage (events). */
  record Wave(GpuWaveEngine.Mode mode, double us, double graphUs, double deviceUs, double enqueueUs,
      double[] stages, double hitRatio, double pcieBytes) {}

  /** Untimed steps before each timed series: the JIT compiles the host path meanwhile. */
  private static final int WARMUP = 30;

  public static void main(String[] args) {
    int[] contexts = ints(arg(args, 0, "32768,131072,524288"));
    int[] batches = ints(arg(args, 1, "1,8"));
    int steps = Integer.parseInt(arg(args, 2, "20"));
    double drift = Double.parseDouble(arg(args, 3, "0.05"));
    try (CudaContext cx = CudaContext.open()) {
      double peak = peakBandwidth();
      System.out.printf(Locale.ROOT, "device: %s, %d SMs, %.1f GiB, HBM peak %.0f GB/s%n",
          cx.info().device(), cx.info().multiprocessors(), cx.info().memoryBytes() / (double) (1L << 30),
          peak / 1e9);
      // one untimed row first: the host path (launch calls, lookups) gets JIT-compiled before the
      // first measured row, not during it
      run(cx, contexts[0], batches[0], steps, drift);
      List<Row> rows = new ArrayList<>();
      for (int ctx : contexts) {
        for (int b : batches) {
          long t0 = System.nanoTime();
          try {
            Row r = run(cx, ctx, b, steps, drift);
            rows.add(r);
            System.out.printf(Locale.ROOT, "done: context %d, batch %d in %.1f s: %s%n", ctx, b,
                (System.nanoTime() - t0) / 1e9, format(r, peak));
          } catch (RuntimeException | OutOfMemoryError e) {
            // one failed row (device memory at the largest sizes, say) must not lose the others
            System.out.println("FAILED: context " + ctx + ", batch " + b + ": " + e);
            e.printStackTrace(System.out);
          }
        }
      }
      System.out.println();
      System.out.printf(Locale.ROOT, "decode attention per layer: %d query / %d KV heads, d=%d, bf16 K/V,"
          + " %d timed steps, query drift %.3f%n", QUERY_HEADS, KV_HEADS, DIM, steps, drift);
      System.out.println("| context | batch | full us | full kernel us back-to-back, GB/s (% of HBM"
          + " peak) | wave GPU-resident us"
          + " (x vs full) | wave offload+5% cache us | token hit ratio | PCIe MB/step (cached) |"
          + " offload no-cache us | PCIe MB/step (no cache) | cached x vs no-cache |");
      System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
      // full us and wave us: one synchronised step each; the kernel column: back-to-back launches
      for (Row r : rows) {
        System.out.println(format(r, peak));
      }
      System.out.println();
      System.out.println("one synchronised step replayed as a CUDA graph (one launch call), same"
          + " kernels; full attention's queries and output stay on the device, wave's too in the last"
          + " columns:");
      System.out.println("| context | batch | full graph us | wave GPU-resident graph us, with query"
          + " upload and output download (x vs full) | wave GPU-resident graph us, on the device"
          + " (x vs full) |");
      System.out.println("|---|---|---|---|---|");
      for (Row r : rows) {
        System.out.printf(Locale.ROOT, "| %dK | %d | %.1f | %.1f (%.1fx) | %.1f (%.1fx) |%n",
            r.context / 1024, r.batch, r.fullGraphUs, r.waveGraphUs, r.fullGraphUs / r.waveGraphUs,
            r.waveDeviceUs, r.fullGraphUs / r.waveDeviceUs);
      }
      System.out.println();
      System.out.println("wave step by stage: GPU us from CUDA events (profiled steps, launched one"
          + " by one), host enqueue us:");
      System.out.println("| context | batch | mode | " + String.join(" | ", GpuWaveEngine.STAGES)
          + " | host enqueue | step us |");
      System.out.println("|---|---|---|" + "---|".repeat(GpuWaveEngine.STAGES.size()) + "---|---|");
      for (Row r : rows) {
        for (Wave w : r.modes) {
          StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "| %dK | %d | %s |",
              r.context / 1024, r.batch, w.mode));
          for (double x : w.stages) {
            b.append(String.format(Locale.ROOT, " %.1f |", x));
          }
          b.append(String.format(Locale.ROOT, " %.1f | %.1f |", w.enqueueUs, w.us));
          System.out.println(b);
        }
      }
    }
  }

  private static String format(Row r, double peak) {
    return String.format(Locale.ROOT,
        "| %dK | %d | %.1f | %.1f, %.0f (%.0f%%) | %.1f (%.1fx) | %.1f | %.3f | %.1f | %.1f | %.1f | %.1fx |",
        r.context / 1024, r.batch, r.fullUs, r.fullKernelUs, r.fullGbs, 100 * r.fullGbs * 1e9 / peak,
        r.waveUs, r.fullUs / r.waveUs, r.cachedUs, r.hitRatio, r.cachedPcieMb, r.uncachedUs,
        r.uncachedPcieMb, r.uncachedUs / r.cachedUs);
  }

  static Row run(CudaContext cx, int context, int batch, int steps, double drift) {
    int items = batch * KV_HEADS;
    int g = QUERY_HEADS / KV_HEADS;
    Random rnd = new Random(context * 31L + batch);
    float[] q = new float[items * g * DIM];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) rnd.nextGaussian();
    }
    // full attention
    double fullUs;
    double fullKernelUs;
    double fullGbs;
    double fullGraphUs;
    long[] base = new long[items];
    int[] len = new int[items];
    for (int i = 0; i < items; i++) {
      base[i] = (long) i * context;
      len[i] = context;
    }
    try (GpuFullAttentionEngine full = new GpuFullAttentionEngine(cx, DIM, g, KvDType.BFLOAT16, base,
        len, (long) items * context)) {
      full.synthesize(1);
      full.setQueries(q);
      for (int w = 0; w < WARMUP; w++) {
        full.enqueue();
      }
      CudaContext.sync(cx.main());
      long t0 = System.nanoTime();
      for (int s = 0; s < steps; s++) {
        full.enqueue();
      }
      CudaContext.sync(cx.main());
      fullKernelUs = (System.nanoTime() - t0) / 1000.0 / steps;
      fullGbs = full.bytesRead(len) / (fullKernelUs * 1e-6) / 1e9;
      // per step, synchronised: timed like the wave steps, for the speed-up columns
      Runnable step = () -> {
        full.enqueue();
        CudaContext.sync(cx.main());
      };
      fullUs = microsPerCall(0, steps, step);
      full.useGraph();
      fullGraphUs = microsPerCall(WARMUP, steps, step);
    }
    BatchTables t = tables(items, g, context, rnd);
    Wave resident = timeWave(cx, t, GpuWaveEngine.Mode.RESIDENT, q, steps, drift);
    Wave cached = timeWave(cx, t, GpuWaveEngine.Mode.OFFLOAD_CACHED, q, steps, drift);
    Wave uncached = timeWave(cx, t, GpuWaveEngine.Mode.OFFLOAD_UNCACHED, q, steps, drift);
    return new Row(context, batch, fullUs, fullKernelUs, fullGbs, resident.us, cached.us,
        cached.hitRatio, cached.pcieBytes / 1e6, uncached.us, uncached.pcieBytes / 1e6, fullGraphUs,
        resident.graphUs, resident.deviceUs, List.of(resident, cached, uncached));
  }

  /**
   * One mode: timed steps, then as many profiled ones (stage events), then (RESIDENT) as many
   * replayed as a graph. Every series walks the queries on from where the last one stopped.
   */
  static Wave timeWave(CudaContext cx, BatchTables t, GpuWaveEngine.Mode mode, float[] q0, int steps,
      double drift) {
    try (GpuWaveEngine e = new GpuWaveEngine(cx, t, mode, 0.05, 8)) {
      e.synthesize(2);
      Walk walk = new Walk(q0, drift); // the same query walk for every mode
      int warm = mode == GpuWaveEngine.Mode.OFFLOAD_CACHED ? Math.max(WARMUP, 3 * steps) : WARMUP;
      for (float[] q : walk.next(warm)) {
        e.step(q);
      }
      if (e.cache() != null) {
        e.settleCache();
        e.cache().resetStats();
      }
      long pcie = 0;
      float[][] series = walk.next(steps); // drawn before the clock starts
      long t0 = System.nanoTime();
      for (float[] q : series) {
        e.step(q);
        pcie += e.lastStep().pcieBytes();
      }
      long ns = System.nanoTime() - t0;
      CacheStats cs = e.cache() == null ? null : e.cache().stats();
      double hit = cs == null ? 0 : cs.tokenHitRatio();
      e.profile();
      long enqueue = 0;
      for (float[] q : walk.next(steps)) {
        e.step(q);
        enqueue += e.lastEnqueueNanos();
      }
      double graphUs = Double.NaN;
      double deviceUs = Double.NaN;
      if (mode == GpuWaveEngine.Mode.RESIDENT) {
        e.useGraph();
        for (float[] q : walk.next(WARMUP)) {
          e.step(q);
        }
        series = walk.next(steps);
        long g0 = System.nanoTime();
        for (float[] q : series) {
          e.step(q);
        }
        graphUs = (System.nanoTime() - g0) / 1000.0 / steps;
        deviceUs = microsPerCall(WARMUP, steps, e::replayOnDevice);
      }
      return new Wave(mode, ns / 1000.0 / steps, graphUs, deviceUs, enqueue / 1000.0 / steps,
          e.stageMicros(), hit, (double) pcie / steps);
    }
  }

  /** Microseconds per call of {@code call}, timed over {@code n} calls after {@code warmup}. */
  private static double microsPerCall(int warmup, int n, Runnable call) {
    for (int w = 0; w < warmup; w++) {
      call.run();
    }
    long t0 = System.nanoTime();
    for (int s = 0; s < n; s++) {
      call.run();
    }
    return (System.nanoTime() - t0) / 1000.0 / n;
  }

  /** Queries as a random walk: each step adds Gaussian noise of {@code drift} to every component. */
  private static final class Walk {
    private final Random rnd = new Random(7);
    private final float[] q;
    private final double drift;

    Walk(float[] q0, double drift) {
      this.q = q0.clone();
      this.drift = drift;
    }

    float[][] next(int n) {
      float[][] out = new float[n][];
      for (int s = 0; s < n; s++) {
        for (int i = 0; i < q.length; i++) {
          q[i] += (float) (rnd.nextGaussian() * drift);
        }
        out[s] = q.clone();
      }
      return out;
    }
  }

  /**
   * The benchmark's synthetic layout: per item 4 + 64 + 512 steady tokens and clusters of 8..24
   * tokens for the rest, head dim 128, bf16 K/V, {@code WaveConfig.fixed()}.
   */
  public static BatchTables tables(int items, int g, int context, Random rnd) {
    int[] steady = new int[items];
    int[][] sizes = new int[items][];
    for (int i = 0; i < items; i++) {
      steady[i] = STEADY;
      int left = context - STEADY;
      int[] s = new int[left / 8 + 1];
      int n = 0;
      while (left > 0) {
        int c = Math.min(left, 8 + rnd.nextInt(17));
        s[n++] = c;
        left -= c;
      }
      sizes[i] = java.util.Arrays.copyOf(s, n);
    }
    return new BatchTables(DIM, g, KvDType.BFLOAT16, steady, sizes, WaveConfig.fixed());
  }

  /** Peak DRAM bandwidth from the memory clock and bus width (double data rate). */
  static double peakBandwidth() {
    CUdevice dev = new CUdevice();
    Cuda.check(JCudaDriver.cuDeviceGet(dev, 0), "cuDeviceGet");
    int[] clockKhz = new int[1];
    int[] busBits = new int[1];
    Cuda.check(JCudaDriver.cuDeviceGetAttribute(clockKhz,
        CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, dev), "memory clock");
    Cuda.check(JCudaDriver.cuDeviceGetAttribute(busBits,
        CUdevice_attribute.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, dev), "bus width");
    return 2.0 * clockKhz[0] * 1e3 * busBits[0] / 8;
  }

  private static String arg(String[] args, int i, String dflt) {
    return args.length > i ? args[i] : dflt;
  }

  private static int[] ints(String csv) {
    return java.util.Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
  }
}
