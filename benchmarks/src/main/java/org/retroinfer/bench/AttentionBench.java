package org.retroinfer.bench;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.retroinfer.wave.Reference;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Decode attention for one layer, methods measured side by side: every round draws a fresh query
 * and times each method on it (in rotating order) and a plain streaming read of full attention's
 * K/V bytes, so that the machine's noise hits all of them alike. Prints, per context, the median
 * time per call, speed-ups over full attention, full attention's effective bandwidth as a share of
 * the streaming read's, wave's exactly-read tokens, and each method's output error vs full.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar ... (JMH) or
 * java [flags] -cp benchmarks/target/benchmarks.jar org.retroinfer.bench.AttentionBench [--quick]
 *     [--contexts 16384,32768,131072] [--methods full,wave,quest] [--rounds 40] [--kv bf16]
 * </pre>
 */
public final class AttentionBench {
  /** Keeps the streaming read's result alive. */
  static volatile long checksum;

  public static void main(String[] args) {
    boolean quick = false;
    int[] contexts = {16384, 32768, 131072};
    List<String> methods = List.of("full", "wave", "quest");
    int rounds = 40;
    KvDType kv = KvDType.BFLOAT16;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--quick" -> quick = true;
        case "--contexts" -> contexts = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
        case "--methods" -> methods = List.of(args[++i].split(",")); // method specs: wave:fixed, ...
        case "--rounds" -> rounds = Integer.parseInt(args[++i]);
        case "--kv" -> kv = parseType(args[++i]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]
            + "; expected --quick, --contexts N,N, --methods a,b, --rounds N, --kv bf16|fp16|fp32");
      }
    }
    if (quick) {
      contexts = new int[] {16384, 32768};
      rounds = 15;
    }
    if (!methods.contains("full")) {
      throw new IllegalArgumentException("--methods must include full: it is the reference");
    }
    run(LayerFixture.LLAMA3_8B_LAYER, contexts, methods, rounds, kv, quick);
  }

  static KvDType parseType(String s) {
    return switch (s) {
      case "bf16", "bfloat16" -> KvDType.BFLOAT16;
      case "fp16", "float16" -> KvDType.FLOAT16;
      case "fp32", "float32" -> KvDType.FLOAT32;
      default -> throw new IllegalArgumentException("unknown KV type " + s + "; expected bf16, fp16 or fp32");
    };
  }

  static void run(AttentionShape shape, int[] contexts, List<String> methods, int rounds,
      KvDType kv, boolean quick) {
    WaveConfig config = WaveConfig.builder().kvType(kv).build();
    int width = Math.max(9, methods.stream().mapToInt(String::length).max().orElse(0));
    String col = "%-" + width + "s";
    System.out.printf(Locale.ROOT, "Decode attention, one layer: %d query heads, %d KV heads, head dim %d,"
        + " %s K/V, %d threads, %d rounds%s%n", shape.queryHeads(), shape.kvHeads(), shape.headDim(),
        kv, Runtime.getRuntime().availableProcessors(), rounds, quick ? " (quick mode)" : "");
    List<String> table = new ArrayList<>();
    table.add(String.format(Locale.ROOT, "%-8s " + col + " %10s %9s %10s %12s %10s", "context", "method",
        "ms/call", "vs full", "GB/s", "exact tokens", "rel. error"));
    for (int context : contexts) {
      System.out.printf(Locale.ROOT, "context %d: generating K/V ...%n", context);
      try (LayerFixture fixture = new LayerFixture(shape, context, 42)) {
        Map<String, ContextCache> caches = new LinkedHashMap<>();
        for (String m : methods) {
          long t0 = System.nanoTime();
          caches.put(m, fixture.load(m, config));
          System.out.printf(Locale.ROOT, "  " + col + " loaded and indexed in %.1f s%n", m,
              (System.nanoTime() - t0) / 1e9);
        }
        List<MemorySegment> kvBytes = LayerFixture.kvMemory(caches.get("full"));
        long bytes = StreamingRead.bytes(kvBytes);
        Map<String, double[]> times = new LinkedHashMap<>();
        Map<String, Double> error = new LinkedHashMap<>();
        Map<String, Long> exact = new LinkedHashMap<>();
        double[] streamTimes = new double[rounds];
        for (String m : methods) {
          times.put(m, new double[rounds]);
          error.put(m, 0.0);
          exact.put(m, 0L);
        }
        float[] ref = new float[shape.queryWidth()];
        float[] out = new float[shape.queryWidth()];
        long sink = 0;
        // the JIT compiles the kernels during the first calls: warm up for 10 rounds and 3 seconds
        long warmEnd = System.nanoTime() + 3_000_000_000L;
        for (int w = 0; w < 10 || System.nanoTime() < warmEnd; w++) {
          float[] q = fixture.query();
          for (String m : methods) {
            caches.get(m).attend(0, q, out);
          }
          sink += StreamingRead.readAll(kvBytes);
        }
        for (int r = 0; r < rounds; r++) {
          float[] q = fixture.query();
          caches.get("full").attend(0, q, ref);
          for (int i = 0; i < methods.size(); i++) {
            String m = methods.get(Math.floorMod(i + r, methods.size()));
            ContextCache cache = caches.get(m);
            long t0 = System.nanoTime();
            cache.attend(0, q, out);
            long dt = System.nanoTime() - t0;
            times.get(m)[r] = dt / 1e6;
            error.merge(m, Reference.relativeError(ref, out), Double::sum);
            long tokens = 0;
            for (int h = 0; h < shape.kvHeads(); h++) {
              tokens += cache.head(0, h).lastExactTokens();
            }
            exact.merge(m, tokens / shape.kvHeads(), Long::sum);
          }
          long t0 = System.nanoTime();
          sink += StreamingRead.readAll(kvBytes);
          streamTimes[r] = (System.nanoTime() - t0) / 1e6;
        }
        double fullMs = median(times.get("full"));
        double streamMs = median(streamTimes);
        for (String m : methods) {
          double ms = median(times.get(m));
          // GB/s only where it means the K/V read per call: full attention reads all of it
          table.add(String.format(Locale.ROOT, "%-8d " + col + " %10.3f %8.2fx %10s %12d %10.5f", context, m,
              ms, fullMs / ms, m.equals("full") ? String.format(Locale.ROOT, "%.1f", bytes / ms / 1e6)
                  : "-", exact.get(m) / rounds, error.get(m) / rounds));
        }
        table.add(String.format(Locale.ROOT, "%-8d " + col + " %10.3f %8s %10.1f %12s %10s", context,
            "stream", streamMs, "", bytes / streamMs / 1e6, "", ""));
        table.add(String.format(Locale.ROOT, "%-8d full attention reads K/V at %.0f%% of the streaming"
            + " read's bandwidth (%.1f MB per call)", context, 100 * streamMs / fullMs, bytes / 1e6));
        checksum += sink;
      }
    }
    System.out.println();
    table.forEach(System.out::println);
  }

  static double median(double[] x) {
    double[] s = x.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
