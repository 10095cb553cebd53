package org.retroinfer.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.wave.attention.SoftmaxState;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;

/**
 * Where full attention's time goes per core: each exact-attention kernel run over one KV head's K/V
 * in memory (bfloat16, head dim 128, 4 query heads, 64-row blocks as full attention runs them) and
 * over a cache-resident window doing the same work, side by side in one JVM, next to a plain
 * streaming read of the same bytes and to streaming reads with 0-8 multiply-adds per vector loaded.
 * The difference between the first two columns is what memory adds to each kernel; set against the
 * streaming reads it shows how much of the memory traffic the kernel's arithmetic hides. With
 * {@code threads > 1} every thread runs the same kernel at the same time on its own KV head, and
 * the times are wall times of all of them.
 *
 * <pre>
 * java [flags] -cp benchmarks/target/benchmarks.jar org.retroinfer.bench.OverlapBench [tokens] [rounds] [threads]
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

  public static void main(String[] args) throws Exception {
    int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 131072;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
    int threads = args.length > 2 ? Integer.parseInt(args[2]) : 1;
    if (tokens % WINDOW != 0 || tokens < WINDOW || rounds < 3 || threads < 1) {
      throw new IllegalArgumentException("expected [tokens] [rounds] [threads]: tokens a positive"
          + " multiple of " + WINDOW + ", rounds at least 3, threads at least 1; got " + tokens
          + ", " + rounds + ", " + threads);
    }
    Worker[] workers = new Worker[threads];
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      for (int i = 0; i < threads; i++) {
        workers[i] = new Worker(tokens, 10L * i);
      }
      run(workers, pool, rounds);
    } finally {
      pool.shutdown();
      for (Worker w : workers) {
        if (w != null) {
          w.close();
        }
      }
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

  private static final String[] NAMES = {"scores", "values", "absorb", "stream", "fma x0",
      "fma x2", "fma x4", "fma x8", "fma x8+touch"};

  /** One thread's KV head (in memory and its cache-resident window) and scratch. */
  private static final class Worker implements AutoCloseable {
    final VectorStore keys;
    final VectorStore values;
    final VectorStore wk;
    final VectorStore wv;
    final float[] q = new float[GROUP * DIM];
    final float[] block = new float[GROUP * BLOCK];
    final float[] out = new float[GROUP * DIM];
    final SoftmaxState state = new SoftmaxState(GROUP, DIM);
    final float scale = (float) (1 / Math.sqrt(DIM));

    Worker(int tokens, long seed) {
      keys = fill(tokens, seed + 1);
      values = fill(tokens, seed + 2);
      wk = fill(WINDOW, seed + 3);
      wv = fill(WINDOW, seed + 4);
      Random r = new Random(seed + 5);
      for (int i = 0; i < q.length; i++) {
        q[i] = (float) r.nextGaussian();
      }
      for (int i = 0; i < block.length; i++) {
        block[i] = r.nextFloat() / BLOCK;
      }
    }

    /** Runs kernel {@code k} over the K/V in memory ({@code where == 0}) or the window. */
    double run(int k, int where) {
      int n = keys.size();
      VectorStore ks = where == 0 ? keys : wk;
      VectorStore vs = where == 0 ? values : wv;
      int span = where == 0 ? n : WINDOW;
      switch (k) {
        case 0 -> {
          for (int b = 0; b < n; b += BLOCK) {
            KvKernels.scores(ks, b % span, BLOCK, q, 0, GROUP, scale, block, 0, BLOCK);
          }
          return block[7];
        }
        case 1 -> {
          for (int b = 0; b < n; b += BLOCK) {
            KvKernels.accumulate(vs, b % span, BLOCK, block, 0, BLOCK, GROUP, out, 0);
          }
          return out[7];
        }
        case 2 -> {
          for (int b = 0; b < n; b += span) {
            state.reset();
            state.absorbRange(ks, vs, 0, span, q, 0, scale);
          }
          return state.logMass(0);
        }
        case 3 -> {
          return StreamingRead.sum(keys.rows(0, n)) + StreamingRead.sum(values.rows(0, n));
        }
        default -> {
          int f = k == 4 ? 0 : 1 << Math.min(3, k - 4);
          long ahead = k == 8 ? 8192 : 0;
          return mixed(keys.rows(0, n), f, ahead) + mixed(values.rows(0, n), f, ahead);
        }
      }
    }

    @Override
    public void close() {
      keys.close();
      values.close();
      wk.close();
      wv.close();
    }
  }

  /** Wall time of every worker running kernel {@code k} at once, in milliseconds. */
  private static double timeAll(Worker[] workers, ExecutorService pool, int k, int where)
      throws Exception {
    if (workers.length == 1) {
      long t0 = System.nanoTime();
      sink += workers[0].run(k, where);
      return (System.nanoTime() - t0) / 1e6;
    }
    CountDownLatch start = new CountDownLatch(1);
    List<Future<Double>> done = new ArrayList<>();
    for (Worker w : workers) {
      done.add(pool.submit(() -> {
        start.await();
        return w.run(k, where);
      }));
    }
    Thread.sleep(1); // let the workers reach the latch
    long t0 = System.nanoTime();
    start.countDown();
    for (Future<Double> f : done) {
      sink += f.get();
    }
    return (System.nanoTime() - t0) / 1e6;
  }

  private static void run(Worker[] workers, ExecutorService pool, int rounds) throws Exception {
    int n = workers[0].keys.size();
    // [kernel][0: from memory, 1: cache-resident window][round]
    double[][][] ms = new double[NAMES.length][2][rounds];
    System.out.printf(Locale.ROOT, "%d thread(s), each on its own KV head: %d tokens, bfloat16,"
        + " d %d, g %d; %d rounds (the first two are warm-up)%n", workers.length, n, DIM, GROUP,
        rounds + 2);
    for (int round = -2; round < rounds; round++) {
      for (int i = 0; i < NAMES.length; i++) {
        int k = Math.floorMod(i + round, NAMES.length); // rotate the order
        for (int where = 0; where < 2; where++) {
          if (k >= 3 && where == 1) {
            continue;
          }
          double took = timeAll(workers, pool, k, where);
          if (round >= 0) {
            ms[k][where][round] = took;
          }
        }
      }
    }
    double kv = 2.0 * n * workers[0].keys.rowBytes() * workers.length;
    double stream = median(ms[3][0]);
    System.out.printf(Locale.ROOT, "%-12s %12s %12s %14s %14s%n", "kernel", "in memory ms",
        "in cache ms", "memory adds ms", "GB/s in memory");
    for (int k = 0; k < 3; k++) {
      double mem = median(ms[k][0]);
      double cache = median(ms[k][1]);
      double bytes = k == 2 ? kv : kv / 2;
      System.out.printf(Locale.ROOT, "%-12s %12.2f %12.2f %14.2f %14.1f%n", NAMES[k], mem, cache,
          mem - cache, bytes / mem / 1e6);
    }
    System.out.printf(Locale.ROOT, "%-12s %12.2f %12s %14s %14.1f%n", "stream", stream, "", "",
        kv / stream / 1e6);
    for (int k = 4; k < NAMES.length; k++) {
      System.out.printf(Locale.ROOT, "%-12s %12.2f %12s %14s %14.1f%n", NAMES[k],
          median(ms[k][0]), "", "", kv / median(ms[k][0]) / 1e6);
    }
    System.out.printf(Locale.ROOT, "absorb in memory = %.2f x (in cache + stream of K and V);"
        + " absorb reads at %.0f%% of the stream's bandwidth%n",
        median(ms[2][0]) / (median(ms[2][1]) + stream), 100 * stream / median(ms[2][0]));
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
