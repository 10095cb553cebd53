package org.retroinfer.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
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
  /**
   * K in blocks of one vector's lanes, dimension by dimension ({@link KvKernels#blockIndex}),
   * bfloat16 bits, for {@link #blockedScores}.
   */
  private MemorySegment blockedKeys;

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
    blockedKeys = Arena.ofAuto().allocate(2L * KvKernels.blockedLength(rows, dim), 64);
    float[] k = new float[dim];
    for (int j = 0; j < rows; j++) {
      keys.read(j, k, 0);
      for (int t = 0; t < dim; t++) {
        blockedKeys.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * KvKernels.blockIndex(j, t, dim),
            (short) (Float.floatToRawIntBits(k[t]) >>> 16));
      }
    }
    if (group == 4 && rows % LANES == 0 && type == KvDType.BFLOAT16) {
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

  private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Short> SS =
      VectorSpecies.of(short.class, VectorShape.forBitSize(FS.vectorBitSize() / 2));
  private static final VectorSpecies<Integer> IS = FS.withLanes(int.class);
  private static final int LANES = FS.length();

  /**
   * An experiment for the scores kernel, not used by wave-core: keys stored in blocks of one
   * vector's lanes (16 tokens with AVX-512), dimension by dimension, so that one FMA scores a
   * block for one head and no horizontal sum is needed (bfloat16, 4 heads). Checked against
   * {@link #scores} at set-up.
   */
  @Benchmark
  public float[] blockedScores() {
    for (int b = 0; b < rows / LANES; b++) {
      FloatVector a0 = FloatVector.zero(FS);
      FloatVector a1 = a0;
      FloatVector a2 = a0;
      FloatVector a3 = a0;
      long base = 2L * KvKernels.blockIndex(b * LANES, 0, dim);
      for (int t = 0; t < dim; t++) {
        FloatVector v = ((IntVector) ShortVector.fromMemorySegment(SS, blockedKeys,
            base + 2L * LANES * t, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IS,
            0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        a0 = v.fma(FloatVector.broadcast(FS, q[t]), a0);
        a1 = v.fma(FloatVector.broadcast(FS, q[dim + t]), a1);
        a2 = v.fma(FloatVector.broadcast(FS, q[2 * dim + t]), a2);
        a3 = v.fma(FloatVector.broadcast(FS, q[3 * dim + t]), a3);
      }
      a0.mul(0.1f).intoArray(p, b * LANES);
      a1.mul(0.1f).intoArray(p, rows + b * LANES);
      a2.mul(0.1f).intoArray(p, 2 * rows + b * LANES);
      a3.mul(0.1f).intoArray(p, 3 * rows + b * LANES);
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
