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
  /** K in blocks of 16 tokens, dimension by dimension (bfloat16 bits), for {@link #blockedScores}. */
  private java.lang.foreign.MemorySegment blockedKeys;

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
    blockedKeys = java.lang.foreign.Arena.ofAuto().allocate((long) rows * dim * 2, 64);
    float[] k = new float[dim];
    for (int j = 0; j < rows; j++) {
      keys.read(j, k, 0);
      for (int t = 0; t < dim; t++) {
        long at = ((long) (j / 16) * dim * 16 + (long) t * 16 + j % 16) * 2;
        blockedKeys.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, at,
            (short) (Float.floatToRawIntBits(k[t]) >>> 16));
      }
    }
    if (group == 4 && rows % 16 == 0 && type == KvDType.BFLOAT16) {
      float[] expected = scores().clone();
      float[] got = blockedScores();
      for (int i = 0; i < 4 * rows; i++) {
        if (Math.abs(expected[i] - got[i]) > 1e-4f * (1 + Math.abs(expected[i]))) {
          throw new IllegalStateException("blockedScores differs from scores at " + i + ": "
              + got[i] + " vs " + expected[i]);
        }
      }
    }
  }

  private static final jdk.incubator.vector.VectorSpecies<Float> FS =
      jdk.incubator.vector.FloatVector.SPECIES_512;
  private static final jdk.incubator.vector.VectorSpecies<Short> SS =
      jdk.incubator.vector.ShortVector.SPECIES_256;
  private static final jdk.incubator.vector.VectorSpecies<Integer> IS =
      jdk.incubator.vector.IntVector.SPECIES_512;

  /**
   * An experiment for the scores kernel, not used by wave-core: keys stored in blocks of 16
   * tokens, dimension by dimension, so that one FMA scores 16 tokens for one head and no
   * horizontal sum is needed (bfloat16, 4 heads, 16 lanes). Checked against {@link #scores} at
   * set-up.
   */
  @Benchmark
  public float[] blockedScores() {
    var le = java.nio.ByteOrder.LITTLE_ENDIAN;
    for (int b = 0; b < rows / 16; b++) {
      var a0 = jdk.incubator.vector.FloatVector.zero(FS);
      var a1 = a0;
      var a2 = a0;
      var a3 = a0;
      long base = (long) b * dim * 32;
      for (int t = 0; t < dim; t++) {
        var v = ((jdk.incubator.vector.IntVector) jdk.incubator.vector.ShortVector
            .fromMemorySegment(SS, blockedKeys, base + t * 32L, le)
            .convertShape(jdk.incubator.vector.VectorOperators.S2I, IS, 0))
            .lanewise(jdk.incubator.vector.VectorOperators.LSHL, 16).reinterpretAsFloats();
        a0 = v.fma(jdk.incubator.vector.FloatVector.broadcast(FS, q[t]), a0);
        a1 = v.fma(jdk.incubator.vector.FloatVector.broadcast(FS, q[dim + t]), a1);
        a2 = v.fma(jdk.incubator.vector.FloatVector.broadcast(FS, q[2 * dim + t]), a2);
        a3 = v.fma(jdk.incubator.vector.FloatVector.broadcast(FS, q[3 * dim + t]), a3);
      }
      a0.mul(0.1f).intoArray(p, b * 16);
      a1.mul(0.1f).intoArray(p, rows + b * 16);
      a2.mul(0.1f).intoArray(p, 2 * rows + b * 16);
      a3.mul(0.1f).intoArray(p, 3 * rows + b * 16);
    }
    return p;
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
