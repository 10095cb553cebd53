package org.retroinfer.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.retroinfer.wave.attention.SoftmaxState;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;

/**
 * The exact-attention kernels on cache-resident data (one KV head, {@code rows} tokens, one
 * thread): what full attention's arithmetic costs per token when memory is not the limit. Scores
 * {@code g} query heads against the keys, the softmax update, the weighted value sums, and the
 * three together as full attention runs them ({@link SoftmaxState#absorbRange}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class KernelBenchmark {
  @Param({"128"})
  public int dim;

  @Param({"4"})
  public int group;

  @Param({"BFLOAT16"})
  public KvDType type;

  /** Tokens: 1024 x 128-dim bfloat16 K and V are 512 KiB, inside a core's L2. */
  @Param({"1024"})
  public int rows;

  private VectorStore keys;
  private VectorStore values;
  private float[] q;
  private float[] p;
  private float[] o;
  private SoftmaxState state;

  @Setup
  public void setUp() {
    Random rnd = new Random(1);
    keys = VectorStore.allocate(dim, type, rows);
    values = VectorStore.allocate(dim, type, rows);
    float[] row = new float[dim];
    for (int j = 0; j < rows; j++) {
      for (int t = 0; t < dim; t++) {
        row[t] = (float) rnd.nextGaussian();
      }
      keys.append(row, 0);
      values.append(row, 0);
    }
    q = new float[group * dim];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) rnd.nextGaussian() * 0.1f;
    }
    p = new float[group * rows];
    for (int i = 0; i < p.length; i++) {
      p[i] = rnd.nextFloat() / rows;
    }
    o = new float[group * dim];
    state = new SoftmaxState(group, dim);
  }

  @Benchmark
  public float[] scores() {
    KvKernels.scores(keys, 0, rows, q, 0, group, 0.1f, p, 0, rows);
    return p;
  }

  @Benchmark
  public float[] accumulate() {
    KvKernels.accumulate(values, 0, rows, p, 0, rows, group, o, 0);
    return o;
  }

  @Benchmark
  public SoftmaxState absorbRange() {
    state.reset();
    state.absorbRange(keys, values, 0, rows, q, 0, 0.1f);
    return state;
  }

  @TearDown
  public void tearDown() {
    keys.close();
    values.close();
  }
}
