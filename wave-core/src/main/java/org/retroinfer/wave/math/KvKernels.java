package org.retroinfer.wave.math;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The inner loops of attention, over rows of a {@link VectorStore}, written with the Vector API.
 *
 * <p>16-bit rows are widened in registers: bfloat16 by a 16-bit left shift, float16 by moving the
 * exponent and mantissa into place and rescaling by 2^112 (exact for normal and subnormal values;
 * stores never hold infinities or NaN). Every query head of a group is scored against a key while
 * that key is in registers, so K and V are read once per group, not once per head.
 *
 * <p>All methods are stateless and thread-safe; they write only into the arrays they are given.
 */
public final class KvKernels {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = F.withLanes(int.class);
  static final VectorSpecies<Short> S =
      VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
  static final int L = F.length();
  static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

  private KvKernels() {}

  /** Lanes of the preferred float vector on this machine. */
  public static int lanes() {
    return L;
  }

  private static final VectorShuffle<Float> SWAP_1 = VectorShuffle.fromOp(F, i -> i ^ 1);
  private static final VectorShuffle<Float> SWAP_2 = VectorShuffle.fromOp(F, i -> i ^ 2);
  private static final VectorShuffle<Float> SWAP_4 = VectorShuffle.fromOp(F, i -> L >= 8 ? i ^ 4 : i);
  private static final VectorShuffle<Float> SWAP_8 = VectorShuffle.fromOp(F, i -> L >= 16 ? i ^ 8 : i);
  private static final VectorMask<Float> ODD_LANES = VectorMask.fromLong(F, 0xAAAA_AAAA_AAAA_AAAAL);
  private static final VectorMask<Float> LANES_2_3_MOD_4 = VectorMask.fromLong(F, 0xCCCC_CCCC_CCCC_CCCCL);

  /**
   * Horizontal sums of four vectors at once: lane h of the result is the sum of the lanes of
   * vector h (h < 4). A transposing add tree: two blend-and-swap levels fold the four vectors into
   * one, then log2(L / 4) swap-adds finish; cheaper than four separate lane reductions.
   */
  static FloatVector reduce4(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
    FloatVector b01 = a0.blend(a1, ODD_LANES).add(a1.blend(a0, ODD_LANES).rearrange(SWAP_1));
    FloatVector b23 = a2.blend(a3, ODD_LANES).add(a3.blend(a2, ODD_LANES).rearrange(SWAP_1));
    FloatVector c = b01.blend(b23, LANES_2_3_MOD_4)
        .add(b23.blend(b01, LANES_2_3_MOD_4).rearrange(SWAP_2));
    if (L >= 8) {
      c = c.add(c.rearrange(SWAP_4));
    }
    if (L >= 16) {
      c = c.add(c.rearrange(SWAP_8));
    }
    return c;
  }

  static FloatVector load(MemorySegment seg, long byteOffset, KvDType type) {
    return switch (type) {
      case FLOAT32 -> FloatVector.fromMemorySegment(F, seg, byteOffset, LE);
      case BFLOAT16 -> ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOffset, LE)
          .convertShape(VectorOperators.S2I, I, 0))
          .lanewise(VectorOperators.LSHL, 16)
          .reinterpretAsFloats();
      case FLOAT16 -> {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, seg, byteOffset, LE)
            .convertShape(VectorOperators.S2I, I, 0);
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        FloatVector magnitude = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13)
            .reinterpretAsFloats().mul(0x1p112f);
        yield magnitude.reinterpretAsInts().or(sign).reinterpretAsFloats();
      }
    };
  }

  static float loadScalar(MemorySegment seg, long byteOffset, KvDType type) {
    return switch (type) {
      case FLOAT32 -> seg.get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE), byteOffset);
      case FLOAT16, BFLOAT16 -> type.decode16(
          seg.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE), byteOffset));
    };
  }

  /**
   * Scaled dot products of {@code g} queries with {@code rows} consecutive keys:
   * {@code out[outOff + h * outStride + j] = scale * (q_h . K[from + j])}, where query head
   * {@code h} is {@code q[qOff + h * dim ..]}.
   */
  public static void scores(VectorStore keys, int from, int rows, float[] q, int qOff, int g,
      float scale, float[] out, int outOff, int outStride) {
    MemorySegment seg = keys.rawMemory();
    KvDType type = keys.type();
    int d = keys.dim();
    long rowBytes = keys.rowBytes();
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    for (int j = 0; j < rows; j++) {
      long base = (from + j) * rowBytes;
      int h = 0;
      for (; g - h >= 2; h += 4) {
        int q0 = qOff + h * d;
        int q1 = qOff + (h + 1) * d;
        int q2 = qOff + Math.min(h + 2, g - 1) * d;
        int q3 = qOff + Math.min(h + 3, g - 1) * d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        for (int c = 0; c < vecEnd; c += L) {
          FloatVector k = load(seg, base + (long) c * eb, type);
          a0 = k.fma(FloatVector.fromArray(F, q, q0 + c), a0);
          a1 = k.fma(FloatVector.fromArray(F, q, q1 + c), a1);
          a2 = k.fma(FloatVector.fromArray(F, q, q2 + c), a2);
          a3 = k.fma(FloatVector.fromArray(F, q, q3 + c), a3);
        }
        FloatVector sums = reduce4(a0, a1, a2, a3);
        float s0 = sums.lane(0);
        float s1 = sums.lane(1);
        float s2 = sums.lane(2);
        float s3 = sums.lane(3);
        for (int c = vecEnd; c < d; c++) {
          float k = loadScalar(seg, base + (long) c * eb, type);
          s0 += k * q[q0 + c];
          s1 += k * q[q1 + c];
          s2 += k * q[q2 + c];
          s3 += k * q[q3 + c];
        }
        int o = outOff + h * outStride + j;
        out[o] = s0 * scale;
        out[o + outStride] = s1 * scale;
        if (h + 2 < g) {
          out[o + 2 * outStride] = s2 * scale;
        }
        if (h + 3 < g) {
          out[o + 3 * outStride] = s3 * scale;
        }
      }
      for (; h < g; h++) {
        int q0 = qOff + h * d;
        FloatVector a0 = FloatVector.zero(F);
        for (int c = 0; c < vecEnd; c += L) {
          a0 = load(seg, base + (long) c * eb, type).fma(FloatVector.fromArray(F, q, q0 + c), a0);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        for (int c = vecEnd; c < d; c++) {
          s0 += loadScalar(seg, base + (long) c * eb, type) * q[q0 + c];
        }
        out[outOff + h * outStride + j] = s0 * scale;
      }
    }
  }

  /**
   * Weighted sums of {@code rows} consecutive value rows into {@code g} accumulators:
   * {@code o[oOff + h * dim + c] += sum_j p[pOff + h * pStride + j] * V[from + j][c]}.
   */
  public static void accumulate(VectorStore values, int from, int rows, float[] p, int pOff,
      int pStride, int g, float[] o, int oOff) {
    MemorySegment seg = values.rawMemory();
    KvDType type = values.type();
    int d = values.dim();
    long rowBytes = values.rowBytes();
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    long start = from * rowBytes;
    for (int c = 0; c < vecEnd; c += L) {
      long col = start + (long) c * eb;
      int h = 0;
      // four heads per pass: each value chunk is loaded and widened once for all of them
      for (; g - h >= 4; h += 4) {
        int o0 = oOff + h * d + c;
        int p0 = pOff + h * pStride;
        FloatVector a0 = FloatVector.fromArray(F, o, o0);
        FloatVector a1 = FloatVector.fromArray(F, o, o0 + d);
        FloatVector a2 = FloatVector.fromArray(F, o, o0 + 2 * d);
        FloatVector a3 = FloatVector.fromArray(F, o, o0 + 3 * d);
        for (int j = 0; j < rows; j++) {
          FloatVector v = load(seg, col + j * rowBytes, type);
          a0 = v.fma(FloatVector.broadcast(F, p[p0 + j]), a0);
          a1 = v.fma(FloatVector.broadcast(F, p[p0 + pStride + j]), a1);
          a2 = v.fma(FloatVector.broadcast(F, p[p0 + 2 * pStride + j]), a2);
          a3 = v.fma(FloatVector.broadcast(F, p[p0 + 3 * pStride + j]), a3);
        }
        a0.intoArray(o, o0);
        a1.intoArray(o, o0 + d);
        a2.intoArray(o, o0 + 2 * d);
        a3.intoArray(o, o0 + 3 * d);
      }
      for (; g - h >= 2; h += 2) {
        int o0 = oOff + h * d + c;
        int o1 = o0 + d;
        int p0 = pOff + h * pStride;
        int p1 = p0 + pStride;
        FloatVector a0 = FloatVector.fromArray(F, o, o0);
        FloatVector a1 = FloatVector.fromArray(F, o, o1);
        for (int j = 0; j < rows; j++) {
          FloatVector v = load(seg, col + j * rowBytes, type);
          a0 = v.fma(FloatVector.broadcast(F, p[p0 + j]), a0);
          a1 = v.fma(FloatVector.broadcast(F, p[p1 + j]), a1);
        }
        a0.intoArray(o, o0);
        a1.intoArray(o, o1);
      }
      if (h < g) {
        int o0 = oOff + h * d + c;
        int p0 = pOff + h * pStride;
        FloatVector a0 = FloatVector.fromArray(F, o, o0);
        for (int j = 0; j < rows; j++) {
          a0 = load(seg, col + j * rowBytes, type).fma(FloatVector.broadcast(F, p[p0 + j]), a0);
        }
        a0.intoArray(o, o0);
      }
    }
    for (int c = vecEnd; c < d; c++) {
      long col = start + (long) c * eb;
      for (int h = 0; h < g; h++) {
        float acc = 0;
        int p0 = pOff + h * pStride;
        for (int j = 0; j < rows; j++) {
          acc += p[p0 + j] * loadScalar(seg, col + j * rowBytes, type);
        }
        o[oOff + h * d + c] += acc;
      }
    }
  }

  /**
   * Like {@link #accumulate} over the listed rows {@code rowIds[0..count)} instead of a range:
   * {@code o[oOff + h * dim + c] += sum_i p[pOff + h * pStride + i] * V[rowIds[i]][c]}.
   */
  public static void accumulateRows(VectorStore values, int[] rowIds, int count, float[] p, int pOff,
      int pStride, int g, float[] o, int oOff) {
    MemorySegment seg = values.rawMemory();
    KvDType type = values.type();
    int d = values.dim();
    long rowBytes = values.rowBytes();
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    for (int c = 0; c < vecEnd; c += L) {
      long col = (long) c * eb;
      for (int h = 0; h < g; h++) {
        int o0 = oOff + h * d + c;
        int p0 = pOff + h * pStride;
        FloatVector a0 = FloatVector.fromArray(F, o, o0);
        for (int i = 0; i < count; i++) {
          a0 = load(seg, rowIds[i] * rowBytes + col, type).fma(FloatVector.broadcast(F, p[p0 + i]), a0);
        }
        a0.intoArray(o, o0);
      }
    }
    for (int c = vecEnd; c < d; c++) {
      for (int h = 0; h < g; h++) {
        float acc = 0;
        int p0 = pOff + h * pStride;
        for (int i = 0; i < count; i++) {
          acc += p[p0 + i] * loadScalar(seg, rowIds[i] * rowBytes + (long) c * eb, type);
        }
        o[oOff + h * d + c] += acc;
      }
    }
  }

  /** Largest of {@code x[off..off+n)}; negative infinity when {@code n == 0}. */
  public static float max(float[] x, int off, int n) {
    int i = 0;
    float m = Float.NEGATIVE_INFINITY;
    if (n >= L) {
      FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
      for (int end = F.loopBound(n); i < end; i += L) {
        acc = acc.max(FloatVector.fromArray(F, x, off + i));
      }
      m = acc.reduceLanes(VectorOperators.MAX);
    }
    for (; i < n; i++) {
      m = Math.max(m, x[off + i]);
    }
    return m;
  }

  /** Replaces {@code x[off..off+n)} by {@code exp(x - shift)} and returns their sum. */
  public static float expShifted(float[] x, int off, int n, float shift) {
    int i = 0;
    FloatVector acc = FloatVector.zero(F);
    for (int end = F.loopBound(n); i < end; i += L) {
      FloatVector e = FloatVector.fromArray(F, x, off + i).sub(shift).lanewise(VectorOperators.EXP);
      e.intoArray(x, off + i);
      acc = acc.add(e);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      float e = (float) Math.exp(x[off + i] - shift);
      x[off + i] = e;
      sum += e;
    }
    return sum;
  }

  /** {@code x[off..off+n) *= factor}. */
  public static void scale(float[] x, int off, int n, float factor) {
    int i = 0;
    for (int end = F.loopBound(n); i < end; i += L) {
      FloatVector.fromArray(F, x, off + i).mul(factor).intoArray(x, off + i);
    }
    for (; i < n; i++) {
      x[off + i] *= factor;
    }
  }

  /** {@code a[aOff..] . b[bOff..]} over {@code n} floats. */
  public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
    int i = 0;
    FloatVector acc = FloatVector.zero(F);
    for (int end = F.loopBound(n); i < end; i += L) {
      acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
    }
    float s = acc.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      s += a[aOff + i] * b[bOff + i];
    }
    return s;
  }

  /** {@code y[yOff..] += alpha * x[xOff..]} over {@code n} floats. */
  public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
    int i = 0;
    for (int end = F.loopBound(n); i < end; i += L) {
      FloatVector.fromArray(F, x, xOff + i).fma(FloatVector.broadcast(F, alpha), FloatVector.fromArray(F, y, yOff + i))
          .intoArray(y, yOff + i);
    }
    for (; i < n; i++) {
      y[yOff + i] += alpha * x[xOff + i];
    }
  }
}
