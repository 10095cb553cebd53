package org.retroinfer.bench;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.wave.attention.SoftmaxState;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;

/**
 * Where full attention's time goes on one core: each exact-attention kernel run over one KV head's
 * K/V in memory (bfloat16, head dim 128, 4 query heads, 64-row blocks as full attention runs them)
 * and over a cache-resident window of the same kernels' work, side by side in one JVM, one thread,
 * with a plain streaming read of the same bytes. The difference between the two columns is what
 * memory adds to each kernel; set against the streaming read it shows how much of the memory
 * traffic the kernel's arithmetic hides.
 *
 * <pre>
 * java [flags] -cp benchmarks/target/benchmarks.jar org.retroinfer.bench.OverlapBench [tokens] [rounds]
 * </pre>
 */
public final class OverlapBench {
  private static final int DIM = 128;
  private static final int GROUP = 4;
  private static final int BLOCK = 64;
  /** Tokens of the cache-resident window: 1024 x 256 bytes of K and as much of V, in L2. */
  private static final int WINDOW = 1024;

  static volatile double sink;

  private OverlapBench() {}

  public static void main(String[] args) {
    int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 131072;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
    if (tokens % WINDOW != 0 || tokens < WINDOW || rounds < 3) {
      throw new IllegalArgumentException("tokens must be a positive multiple of " + WINDOW
          + " and rounds at least 3; got " + tokens + ", " + rounds);
    }
    try (VectorStore keys = fill(tokens, 1); VectorStore values = fill(tokens, 2);
        VectorStore windowKeys = fill(WINDOW, 3); VectorStore windowValues = fill(WINDOW, 4)) {
      run(keys, values, windowKeys, windowValues, rounds);
    }
  }

  private static VectorStore fill(int rows, long seed) {
    VectorStore s = VectorStore.allocate(DIM, KvDType.BFLOAT16, rows);
    Random r = new Random(seed);
    float[] row = new float[DIM];
    for (int j = 0; j < rows; j++) {
      for (int t = 0; t < DIM; t++) {
        row[t] = (float) r.nextGaussian();
      }
      s.append(row, 0);
    }
    return s;
  }

  private static void run(VectorStore keys, VectorStore values, VectorStore wk, VectorStore wv,
      int rounds) {
    int n = keys.size();
    float[] q = new float[GROUP * DIM];
    Random r = new Random(5);
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) r.nextGaussian();
    }
    float scale = (float) (1 / Math.sqrt(DIM));
    float[] block = new float[GROUP * BLOCK];
    for (int i = 0; i < block.length; i++) {
      block[i] = r.nextFloat() / BLOCK;
    }
    float[] out = new float[GROUP * DIM];
    SoftmaxState state = new SoftmaxState(GROUP, DIM);
    String[] names = {"scores", "values", "absorb", "stream", "fma x0", "fma x2", "fma x4",
        "fma x8", "fma x8+touch"};
    // [kernel][0: from memory, 1: cache-resident window][round]
    double[][][] ms = new double[names.length][2][rounds];
    System.out.printf(Locale.ROOT, "One KV head, %d tokens, bfloat16, d %d, g %d, one thread, %d rounds"
        + " (the first two are warm-up)%n", n, DIM, GROUP, rounds + 2);
    for (int round = -2; round < rounds; round++) {
      for (int i = 0; i < names.length; i++) {
        int k = Math.floorMod(i + round, names.length); // rotate the order
        for (int where = 0; where < 2; where++) {
          if (k >= 3 && where == 1) {
            continue;
          }
          VectorStore ks = where == 0 ? keys : wk;
          VectorStore vs = where == 0 ? values : wv;
          int span = where == 0 ? n : WINDOW;
          long t0 = System.nanoTime();
          double s = 0;
          switch (k) {
            case 0 -> {
              for (int b = 0; b < n; b += BLOCK) {
                KvKernels.scores(ks, b % span, BLOCK, q, 0, GROUP, scale, block, 0, BLOCK);
              }
              s = block[7];
            }
            case 1 -> {
              for (int b = 0; b < n; b += BLOCK) {
                KvKernels.accumulate(vs, b % span, BLOCK, block, 0, BLOCK, GROUP, out, 0);
              }
              s = out[7];
            }
            case 2 -> {
              for (int b = 0; b < n; b += span) {
                state.reset();
                state.absorbRange(ks, vs, 0, span, q, 0, scale);
              }
              s = state.logMass(0);
            }
            case 3 -> s = StreamingRead.sum(keys.rows(0, n)) + StreamingRead.sum(values.rows(0, n));
            default -> {
              int f = k == 4 ? 0 : 1 << Math.min(3, k - 4);
              long ahead = k == 8 ? 8192 : 0;
              s = mixed(keys.rows(0, n), f, ahead) + mixed(values.rows(0, n), f, ahead);
            }
          }
          double took = (System.nanoTime() - t0) / 1e6;
          sink += s;
          if (round >= 0) {
            ms[k][where][round] = took;
          }
        }
      }
    }
    double kv = 2.0 * n * keys.rowBytes();
    double stream = median(ms[3][0]);
    System.out.printf(Locale.ROOT, "%-12s %12s %12s %14s %14s%n", "kernel", "in memory ms",
        "in cache ms", "memory adds ms", "GB/s in memory");
    for (int k = 0; k < 3; k++) {
      double mem = median(ms[k][0]);
      double cache = median(ms[k][1]);
      double bytes = k == 2 ? kv : kv / 2;
      System.out.printf(Locale.ROOT, "%-12s %12.2f %12.2f %14.2f %14.1f%n", names[k], mem, cache,
          mem - cache, bytes / mem / 1e6);
    }
    System.out.printf(Locale.ROOT, "%-12s %12.2f %12s %14s %14.1f%n", "stream", stream, "", "",
        kv / stream / 1e6);
    for (int k = 4; k < names.length; k++) {
      System.out.printf(Locale.ROOT, "%-12s %12.2f %12s %14s %14.1f%n", names[k],
          median(ms[k][0]), "", "", kv / median(ms[k][0]) / 1e6);
    }
    System.out.printf(Locale.ROOT, "absorb in memory = %.2f x (in cache + stream of K and V)%n",
        median(ms[2][0]) / (median(ms[2][1]) + stream));
  }

  private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

  /**
   * A streaming read that widens each 64-byte vector it loads like a bfloat16 kernel does and
   * multiply-adds it {@code fmas} times (0 to 8), each into its own accumulator: the bandwidth one
   * core pulls as arithmetic is interleaved with the loads. Full attention does 8 multiply-adds per
   * 64 bytes of K or V (4 query heads x 2 vectors of widened bfloat16). With {@code ahead > 0}
   * each step also reads one long {@code ahead} bytes further on into an integer checksum (a
   * load that no vector operation waits for: the nearest thing to a prefetch that Java has).
   */
  static double mixed(MemorySegment seg, int fmas, long ahead) {
    long end = seg.byteSize() - seg.byteSize() % IS.vectorByteSize();
    long last = seg.byteSize() - Long.BYTES;
    long touched = 0;
    FloatVector w = FloatVector.broadcast(FS, 0.5f);
    FloatVector a0 = FloatVector.zero(FS);
    FloatVector a1 = a0;
    FloatVector a2 = a0;
    FloatVector a3 = a0;
    FloatVector a4 = a0;
    FloatVector a5 = a0;
    FloatVector a6 = a0;
    FloatVector a7 = a0;
    for (long off = 0; off < end; off += IS.vectorByteSize()) {
      if (ahead > 0) {
        touched ^= seg.get(ValueLayout.JAVA_LONG_UNALIGNED, Math.min(off + ahead, last));
      }
      FloatVector v = IntVector.fromMemorySegment(IS, seg, off, ByteOrder.LITTLE_ENDIAN)
          .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
      if (fmas == 0) {
        a0 = a0.add(v);
      } else {
        a0 = v.fma(w, a0);
        if (fmas > 1) {
          a1 = v.fma(w, a1);
        }
        if (fmas > 2) {
          a2 = v.fma(w, a2);
          a3 = v.fma(w, a3);
        }
        if (fmas > 4) {
          a4 = v.fma(w, a4);
          a5 = v.fma(w, a5);
          a6 = v.fma(w, a6);
          a7 = v.fma(w, a7);
        }
      }
    }
    return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7)
        .reduceLanes(VectorOperators.ADD) + touched;
  }

  private static double median(double[] x) {
    double[] c = x.clone();
    Arrays.sort(c);
    return c[c.length / 2];
  }
}
