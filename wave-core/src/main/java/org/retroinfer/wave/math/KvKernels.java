package org.retroinfer.wave.math;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
  private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

  static {
    VectorMath.link(); // before any kernel: EXP's native routine found whatever the user's locale
  }

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
  private static final VectorMask<Float> LANES_4_7_MOD_8 = VectorMask.fromLong(F, 0xF0F0_F0F0_F0F0_F0F0L);

  /**
   * Horizontal sums of four vectors at once: lane h of the result is the sum of the lanes of
   * vector h (h < 4). A transposing add tree: two blend-and-swap levels fold the four vectors into
   * one, then log2(L / 4) swap-adds finish. Its order of additions is fixed, so results are the
   * same bit for bit however the code runs. {@code reduceLanes(ADD)} was measured 20% faster in
   * the scores kernel but leaves the order to the implementation: interpreted, C1 and C2 code sum
   * in different orders, and decode updates stopped matching a one-go build in the last bit.
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

  /**
   * Horizontal sums of eight vectors at once, for at least eight lanes: lane h of the result is the
   * sum of the lanes of {@code a_h} and lane 4 + h that of {@code b_h} (h < 4). The same
   * transposing add tree as {@link #reduce4}, one level deeper, so it costs about as much as one
   * {@code reduce4} plus a level; its order of additions is fixed.
   */
  static FloatVector reduce8(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3,
      FloatVector b0, FloatVector b1, FloatVector b2, FloatVector b3) {
    FloatVector a01 = a0.blend(a1, ODD_LANES).add(a1.blend(a0, ODD_LANES).rearrange(SWAP_1));
    FloatVector a23 = a2.blend(a3, ODD_LANES).add(a3.blend(a2, ODD_LANES).rearrange(SWAP_1));
    FloatVector b01 = b0.blend(b1, ODD_LANES).add(b1.blend(b0, ODD_LANES).rearrange(SWAP_1));
    FloatVector b23 = b2.blend(b3, ODD_LANES).add(b3.blend(b2, ODD_LANES).rearrange(SWAP_1));
    FloatVector a = a01.blend(a23, LANES_2_3_MOD_4)
        .add(a23.blend(a01, LANES_2_3_MOD_4).rearrange(SWAP_2));
    FloatVector b = b01.blend(b23, LANES_2_3_MOD_4)
        .add(b23.blend(b01, LANES_2_3_MOD_4).rearrange(SWAP_2));
    FloatVector c = a.blend(b, LANES_4_7_MOD_8).add(b.blend(a, LANES_4_7_MOD_8).rearrange(SWAP_4));
    if (L >= 16) {
      c = c.add(c.rearrange(SWAP_8));
    }
    return c;
  }

  /*
   * Loading one vector of K/V at a byte offset, widened to float32: loadBf16, loadF16 (through
   * loadShorts) and loadF32. The kernels pick one per site with a ternary on the type that C2
   * folds, so a site inlines one helper chain of at most two levels. Each helper stays within
   * C2's always-inline bytecode size (at most 35 bytes; javap -c shows it): a site that C2 does
   * not inline passes the vector through the heap (boxed) and runs the vector operations after it
   * in their slow Java fallback, and a larger method is refused at sites that C2 does not count
   * as hot. One such site in the value kernel once cost a third of wave attention's time in a
   * decode loop; later the helpers had grown to 36 bytes and C2 refused them ("callee is too
   * large"). KvKernelsInliningTest holds the sizes. The kernels' loops also stay within C2's
   * inlining node budget: float16 used to go through two dispatch levels to a 72-byte helper,
   * came past that budget in both kernels and boxed there (float16 K/V ran 20-200x slower than
   * bfloat16).
   */

  /** bfloat16 is the upper half of a float32: widen each lane to 32 bits and shift it up. */
  static FloatVector loadBf16(MemorySegment seg, long byteOffset) {
    return ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOffset, LE).castShape(I, 0))
        .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  static FloatVector loadF32(MemorySegment seg, long byteOffset) {
    return FloatVector.fromMemorySegment(F, seg, byteOffset, LE);
  }

  /**
   * float16: sign-extended to 32 bits and shifted up by 13, which puts the exponent and mantissa
   * in place; the mask keeps the sign and clears the three extended copies of it above the
   * exponent; the product with 2^112 rebiases the exponent (exact for normal and subnormal values;
   * stores never hold infinities or NaN).
   */
  static FloatVector loadF16(MemorySegment seg, long byteOffset) {
    return loadShorts(seg, byteOffset).lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000)
        .reinterpretAsFloats().mul(0x1p112f);
  }

  /** One vector of 16-bit values at {@code byteOffset}, sign-extended to 32-bit lanes. */
  private static IntVector loadShorts(MemorySegment seg, long byteOffset) {
    return (IntVector) ShortVector.fromMemorySegment(S, seg, byteOffset, LE).castShape(I, 0);
  }

  /**
   * One element, for the components past the last whole vector. The layouts are constants:
   * {@code withOrder} builds a new layout, and a new layout looks its var handle up in a cache,
   * which made this about 40 ns a call (odd head dims ran 100x slower than even ones).
   */
  static float loadScalar(MemorySegment seg, long byteOffset, KvDType type) {
    return switch (type) {
      case FLOAT32 -> seg.get(FLOAT_LE, byteOffset);
      case FLOAT16, BFLOAT16 -> type.decode16(seg.get(SHORT_LE, byteOffset));
    };
  }

  /** Rows per kernel slice: keeps byte offsets inside a slice in int range. */
  private static int sliceRows(long rowBytes) {
    return (int) Math.max(1, (Integer.MAX_VALUE - 4096) / rowBytes);
  }

  /**
   * Scaled dot products of {@code g} queries with {@code rows} consecutive keys:
   * {@code out[outOff + h * outStride + j] = scale * (q_h . K[from + j])}, where query head
   * {@code h} is {@code q[qOff + h * dim ..]}.
   */
  public static void scores(VectorStore keys, int from, int rows, float[] q, int qOff, int g,
      float scale, float[] out, int outOff, int outStride) {
    int step = sliceRows(keys.rowBytes());
    for (int done = 0; done < rows; done += step) {
      int n = Math.min(step, rows - done);
      // a slice with int offsets lets the JIT hoist the segment's bounds checks out of the loops
      scoresSlice(keys.rows(from + done, from + done + n), keys.type(), keys.dim(),
          (int) keys.rowBytes(), n, q, qOff, g, scale, out, outOff + done, outStride);
    }
  }

  private static void scoresSlice(MemorySegment seg, KvDType type, int d, int rowBytes, int rows,
      float[] q, int qOff, int g, float scale, float[] out, int outOff, int outStride) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    float[] lanes = new float[Math.max(L, 8)];
    int h = 0;
    // four heads per pass over the rows (the last pass repeats a head when g is not a multiple of
    // four; its results are not written), two rows per step (an odd last row is paired with
    // itself): each key chunk is widened once for all heads, each query chunk loaded once for both
    // rows. Kept small on purpose: past C2's node budget its helpers stop being inlined, and
    // vectors that cross a call are boxed.
    for (; g - h >= 2; h += 4) {
      int q0 = qOff + h * d;
      int q1 = qOff + (h + 1) * d;
      int q2 = qOff + Math.min(h + 2, g - 1) * d;
      int q3 = qOff + Math.min(h + 3, g - 1) * d;
      int o0 = outOff + h * outStride;
      int heads = Math.min(4, g - h);
      for (int j = 0; j < rows; j += 2) {
        int base = j * rowBytes;
        int base2 = j + 1 < rows ? base + rowBytes : base;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F);
        FloatVector b1 = FloatVector.zero(F);
        FloatVector b2 = FloatVector.zero(F);
        FloatVector b3 = FloatVector.zero(F);
        for (int c = 0; c < vecEnd; c += L) {
          FloatVector k = bf16 ? loadBf16(seg, base + c * eb)
              : f16 ? loadF16(seg, base + c * eb) : loadF32(seg, base + c * eb);
          FloatVector k2 = bf16 ? loadBf16(seg, base2 + c * eb)
              : f16 ? loadF16(seg, base2 + c * eb) : loadF32(seg, base2 + c * eb);
          FloatVector x = FloatVector.fromArray(F, q, q0 + c);
          a0 = k.fma(x, a0);
          b0 = k2.fma(x, b0);
          x = FloatVector.fromArray(F, q, q1 + c);
          a1 = k.fma(x, a1);
          b1 = k2.fma(x, b1);
          x = FloatVector.fromArray(F, q, q2 + c);
          a2 = k.fma(x, a2);
          b2 = k2.fma(x, b2);
          x = FloatVector.fromArray(F, q, q3 + c);
          a3 = k.fma(x, a3);
          b3 = k2.fma(x, b3);
        }
        // one store and eight loads: cheaper than lane extractions from a wide register. With
        // eight or more lanes both rows are reduced at once and stored by one call (two calls
        // put the second past C2's inlining node budget, a call per row pair)
        if (L >= 8) {
          reduce8(a0, a1, a2, a3, b0, b1, b2, b3).intoArray(lanes, 0);
        } else {
          reduce4(a0, a1, a2, a3).intoArray(lanes, 0);
          reduce4(b0, b1, b2, b3).intoArray(lanes, 4);
        }
        if (vecEnd < d) {
          finishRow(seg, base, type, vecEnd, d, q, q0, q1, q2, q3, lanes, 0);
          finishRow(seg, base2, type, vecEnd, d, q, q0, q1, q2, q3, lanes, 4);
        }
        store8(out, o0 + j, outStride, heads, j + 1 < rows, lanes, scale);
      }
    }
    for (; h < g; h++) {
      scoresOneHead(seg, type, d, rowBytes, rows, q, qOff + h * d, scale, out,
          outOff + h * outStride);
    }
  }

  /** Scores of one query head (what is left when g is odd and above 2, or g = 1). */
  private static void scoresOneHead(MemorySegment seg, KvDType type, int d, int rowBytes,
      int rows, float[] q, int q0, float scale, float[] out, int o0) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    for (int j = 0; j < rows; j++) {
      int base = j * rowBytes;
      FloatVector a0 = FloatVector.zero(F);
      for (int c = 0; c < vecEnd; c += L) {
        int at = base + c * eb;
        FloatVector k = bf16 ? loadBf16(seg, at) : f16 ? loadF16(seg, at) : loadF32(seg, at);
        a0 = k.fma(FloatVector.fromArray(F, q, q0 + c), a0);
      }
      float s0 = a0.reduceLanes(VectorOperators.ADD);
      for (int c = vecEnd; c < d; c++) {
        s0 += loadScalar(seg, base + c * eb, type) * q[q0 + c];
      }
      out[o0 + j] = s0 * scale;
    }
  }

  /**
   * Writes the first {@code heads} of four per-head scores of row {@code at} ({@code lanes[0..4)})
   * and, if {@code second}, of the next row ({@code lanes[4..8)}), head-major.
   */
  private static void store8(float[] out, int at, int stride, int heads, boolean second,
      float[] lanes, float scale) {
    for (int x = 0; x < heads; x++) {
      out[at + x * stride] = lanes[x] * scale;
    }
    if (second) {
      for (int x = 0; x < heads; x++) {
        out[at + 1 + x * stride] = lanes[4 + x] * scale;
      }
    }
  }

  /**
   * Adds the components past the last whole vector (head dims that are not a lane multiple) to
   * {@code lanes[at .. at + 4)}.
   */
  private static void finishRow(MemorySegment seg, int base, KvDType type, int vecEnd, int d,
      float[] q, int q0, int q1, int q2, int q3, float[] lanes, int at) {
    for (int c = vecEnd; c < d; c++) {
      float k = loadScalar(seg, base + c * type.bytes(), type);
      lanes[at] += k * q[q0 + c];
      lanes[at + 1] += k * q[q1 + c];
      lanes[at + 2] += k * q[q2 + c];
      lanes[at + 3] += k * q[q3 + c];
    }
  }

  /**
   * Scaled dot products of {@code g} queries with {@code count} vectors of {@code type} stored in
   * lane blocks ({@link #blockIndex}, in elements of {@code type}):
   * {@code out[outOff + h * outStride + i] = scale * (q_h . x_i)} for {@code i < count}, rounded
   * up to whole blocks of {@link #lanes()} (the padding scores 0 against zero vectors; {@code out}
   * must have room). Vectorised across the vectors, not within them, so
   * there are no horizontal reductions: this is the layout for scoring many short, fixed vectors
   * (centroids) per query.
   */
  public static void blockedScores(MemorySegment blocked, KvDType type, int count, int d,
      float[] q, int qOff, int g, float scale, float[] out, int outOff, int outStride) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    long vb = (long) L * type.bytes();
    int blocks = (count + L - 1) / L;
    FloatVector s = FloatVector.broadcast(F, scale);
    for (int b = 0; b < blocks; b++) {
      long base = (long) b * d * vb;
      int h = 0;
      for (; g - h >= 2; h += 4) {
        int q0 = qOff + h * d;
        int q1 = q0 + d;
        int q2 = qOff + Math.min(h + 2, g - 1) * d;
        int q3 = qOff + Math.min(h + 3, g - 1) * d;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        for (int t = 0; t < d; t++) {
          long at = base + t * vb;
          FloatVector x = bf16 ? loadBf16(blocked, at)
              : f16 ? loadF16(blocked, at) : loadF32(blocked, at);
          a0 = x.fma(FloatVector.broadcast(F, q[q0 + t]), a0);
          a1 = x.fma(FloatVector.broadcast(F, q[q1 + t]), a1);
          a2 = x.fma(FloatVector.broadcast(F, q[q2 + t]), a2);
          a3 = x.fma(FloatVector.broadcast(F, q[q3 + t]), a3);
        }
        int o = outOff + h * outStride + b * L;
        a0.mul(s).intoArray(out, o);
        a1.mul(s).intoArray(out, o + outStride);
        if (h + 2 < g) {
          a2.mul(s).intoArray(out, o + 2 * outStride);
        }
        if (h + 3 < g) {
          a3.mul(s).intoArray(out, o + 3 * outStride);
        }
      }
      for (; h < g; h++) {
        int q0 = qOff + h * d;
        FloatVector a0 = FloatVector.zero(F);
        for (int t = 0; t < d; t++) {
          long at = base + t * vb;
          FloatVector x = bf16 ? loadBf16(blocked, at)
              : f16 ? loadF16(blocked, at) : loadF32(blocked, at);
          a0 = x.fma(FloatVector.broadcast(F, q[q0 + t]), a0);
        }
        a0.mul(s).intoArray(out, outOff + h * outStride + b * L);
      }
    }
  }

  /** Where component {@code t} of vector {@code i} lives in a lane-blocked array of dim {@code d}. */
  public static int blockIndex(int i, int t, int d) {
    return (i / L * d + t) * L + i % L;
  }

  /** Floats a lane-blocked array of {@code count} vectors of dim {@code d} needs. */
  public static int blockedLength(int count, int d) {
    return (count + L - 1) / L * L * d;
  }

  /**
   * Weighted sums of {@code rows} consecutive value rows into {@code g} accumulators:
   * {@code o[oOff + h * dim + c] += sum_j p[pOff + h * pStride + j] * V[from + j][c]}.
   */
  public static void accumulate(VectorStore values, int from, int rows, float[] p, int pOff,
      int pStride, int g, float[] o, int oOff) {
    int step = sliceRows(values.rowBytes());
    for (int done = 0; done < rows; done += step) {
      int n = Math.min(step, rows - done);
      accumulateSlice(values.rows(from + done, from + done + n), values.type(), values.dim(),
          (int) values.rowBytes(), n, p, pOff + done, pStride, g, o, oOff);
    }
  }

  private static void accumulateSlice(MemorySegment seg, KvDType type, int d, int rowBytes,
      int rows, float[] p, int pOff, int pStride, int g, float[] o, int oOff) {
    int eb = type.bytes();
    int vecEnd = F.loopBound(d);
    int groupEnd = vecEnd / (4 * L) * (4 * L);
    int h = 0;
    // four heads per pass; three heads (a group of 3, 6, ...) use the same kernel with the third
    // head repeated as the fourth: it computes the third head's sums twice, in the same order, so
    // both stores write identical values, and the rows are read in one pass instead of two
    for (; g - h >= 3; h += 4) {
      int heads = Math.min(4, g - h);
      int p0 = pOff + h * pStride;
      int p3 = heads == 4 ? p0 + 3 * pStride : p0 + 2 * pStride;
      int d3 = heads == 4 ? 3 * d : 2 * d;
      for (int c = 0; c < groupEnd; c += 4 * L) {
        accumulate4x4(seg, type, rowBytes, rows, p, p0, pStride, p3, o, oOff + h * d + c, d, d3,
            c * eb);
      }
      accumulateColumns(seg, type, d, rowBytes, rows, p, p0, pStride, heads, o, oOff + h * d,
          groupEnd, vecEnd);
    }
    accumulateColumns(seg, type, d, rowBytes, rows, p, pOff + h * pStride, pStride, g - h, o,
        oOff + h * d, 0, vecEnd);
    for (int c = vecEnd; c < d; c++) {
      int col = c * eb;
      for (int x = 0; x < g; x++) {
        float acc = 0;
        int p0 = pOff + x * pStride;
        for (int j = 0; j < rows; j++) {
          acc += p[p0 + j] * loadScalar(seg, col + j * rowBytes, type);
        }
        o[oOff + x * d + c] += acc;
      }
    }
  }

  /**
   * Four heads by four value chunks: 16 accumulators stay in registers for the whole block, and
   * each row costs four broadcasts of its weights and four widened chunk loads. The accumulators
   * start at zero and are added to {@code o} after the loop: loading {@code o} first put the
   * fourth float16 load of the loop past C2's inlining node budget (it boxed, and float16 values
   * summed 20-50x slower than bfloat16 ones).
   */
  private static void accumulate4x4(MemorySegment seg, KvDType type, int rowBytes, int rows,
      float[] p, int p0, int pStride, int p3, float[] o, int o0, int d, int d3, int col) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    int cb = L * type.bytes();
    FloatVector a00 = FloatVector.zero(F);
    FloatVector a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F);
    FloatVector a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F);
    FloatVector a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F);
    FloatVector a13 = FloatVector.zero(F);
    FloatVector a20 = FloatVector.zero(F);
    FloatVector a21 = FloatVector.zero(F);
    FloatVector a22 = FloatVector.zero(F);
    FloatVector a23 = FloatVector.zero(F);
    FloatVector a30 = FloatVector.zero(F);
    FloatVector a31 = FloatVector.zero(F);
    FloatVector a32 = FloatVector.zero(F);
    FloatVector a33 = FloatVector.zero(F);
    for (int j = 0; j < rows; j++) {
      int base = col + j * rowBytes;
      FloatVector w0 = FloatVector.broadcast(F, p[p0 + j]);
      FloatVector w1 = FloatVector.broadcast(F, p[p0 + pStride + j]);
      FloatVector w2 = FloatVector.broadcast(F, p[p0 + 2 * pStride + j]);
      FloatVector w3 = FloatVector.broadcast(F, p[p3 + j]);
      FloatVector v = bf16 ? loadBf16(seg, base) : f16 ? loadF16(seg, base) : loadF32(seg, base);
      a00 = v.fma(w0, a00);
      a10 = v.fma(w1, a10);
      a20 = v.fma(w2, a20);
      a30 = v.fma(w3, a30);
      v = bf16 ? loadBf16(seg, base + cb) : f16 ? loadF16(seg, base + cb) : loadF32(seg, base + cb);
      a01 = v.fma(w0, a01);
      a11 = v.fma(w1, a11);
      a21 = v.fma(w2, a21);
      a31 = v.fma(w3, a31);
      v = bf16 ? loadBf16(seg, base + 2 * cb)
          : f16 ? loadF16(seg, base + 2 * cb) : loadF32(seg, base + 2 * cb);
      a02 = v.fma(w0, a02);
      a12 = v.fma(w1, a12);
      a22 = v.fma(w2, a22);
      a32 = v.fma(w3, a32);
      v = bf16 ? loadBf16(seg, base + 3 * cb)
          : f16 ? loadF16(seg, base + 3 * cb) : loadF32(seg, base + 3 * cb);
      a03 = v.fma(w0, a03);
      a13 = v.fma(w1, a13);
      a23 = v.fma(w2, a23);
      a33 = v.fma(w3, a33);
    }
    // every sum is read before any is stored: with three heads the fourth repeats the third
    FloatVector r00 = a00.add(FloatVector.fromArray(F, o, o0));
    FloatVector r01 = a01.add(FloatVector.fromArray(F, o, o0 + L));
    FloatVector r02 = a02.add(FloatVector.fromArray(F, o, o0 + 2 * L));
    FloatVector r03 = a03.add(FloatVector.fromArray(F, o, o0 + 3 * L));
    FloatVector r10 = a10.add(FloatVector.fromArray(F, o, o0 + d));
    FloatVector r11 = a11.add(FloatVector.fromArray(F, o, o0 + d + L));
    FloatVector r12 = a12.add(FloatVector.fromArray(F, o, o0 + d + 2 * L));
    FloatVector r13 = a13.add(FloatVector.fromArray(F, o, o0 + d + 3 * L));
    FloatVector r20 = a20.add(FloatVector.fromArray(F, o, o0 + 2 * d));
    FloatVector r21 = a21.add(FloatVector.fromArray(F, o, o0 + 2 * d + L));
    FloatVector r22 = a22.add(FloatVector.fromArray(F, o, o0 + 2 * d + 2 * L));
    FloatVector r23 = a23.add(FloatVector.fromArray(F, o, o0 + 2 * d + 3 * L));
    FloatVector r30 = a30.add(FloatVector.fromArray(F, o, o0 + d3));
    FloatVector r31 = a31.add(FloatVector.fromArray(F, o, o0 + d3 + L));
    FloatVector r32 = a32.add(FloatVector.fromArray(F, o, o0 + d3 + 2 * L));
    FloatVector r33 = a33.add(FloatVector.fromArray(F, o, o0 + d3 + 3 * L));
    r00.intoArray(o, o0);
    r01.intoArray(o, o0 + L);
    r02.intoArray(o, o0 + 2 * L);
    r03.intoArray(o, o0 + 3 * L);
    r10.intoArray(o, o0 + d);
    r11.intoArray(o, o0 + d + L);
    r12.intoArray(o, o0 + d + 2 * L);
    r13.intoArray(o, o0 + d + 3 * L);
    r20.intoArray(o, o0 + 2 * d);
    r21.intoArray(o, o0 + 2 * d + L);
    r22.intoArray(o, o0 + 2 * d + 2 * L);
    r23.intoArray(o, o0 + 2 * d + 3 * L);
    r30.intoArray(o, o0 + d3);
    r31.intoArray(o, o0 + d3 + L);
    r32.intoArray(o, o0 + d3 + 2 * L);
    r33.intoArray(o, o0 + d3 + 3 * L);
  }

  /** Value chunks {@code [cFrom, cTo)} for {@code g} heads: four, two or one per pass. */
  private static void accumulateColumns(MemorySegment seg, KvDType type, int d, int rowBytes,
      int rows, float[] p, int pOff, int pStride, int g, float[] o, int oOff, int cFrom, int cTo) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    int eb = type.bytes();
    for (int c = cFrom; c < cTo; c += L) {
      int col = c * eb;
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
          int at = col + j * rowBytes;
          FloatVector v = bf16 ? loadBf16(seg, at) : f16 ? loadF16(seg, at) : loadF32(seg, at);
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
          int at = col + j * rowBytes;
          FloatVector v = bf16 ? loadBf16(seg, at) : f16 ? loadF16(seg, at) : loadF32(seg, at);
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
          int at = col + j * rowBytes;
          FloatVector v = bf16 ? loadBf16(seg, at) : f16 ? loadF16(seg, at) : loadF32(seg, at);
          a0 = v.fma(FloatVector.broadcast(F, p[p0 + j]), a0);
        }
        a0.intoArray(o, o0);
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
    int groupEnd = vecEnd / (4 * L) * (4 * L);
    int h = 0;
    // as accumulateSlice: four heads (or three, the third repeated) by four value chunks per pass,
    // so that each scattered row is fetched once per pass instead of once per head and chunk
    for (; g - h >= 3; h += 4) {
      int heads = Math.min(4, g - h);
      int p0 = pOff + h * pStride;
      int p3 = heads == 4 ? p0 + 3 * pStride : p0 + 2 * pStride;
      int d3 = heads == 4 ? 3 * d : 2 * d;
      for (int c = 0; c < groupEnd; c += 4 * L) {
        rows4x4(seg, type, rowBytes, rowIds, count, p, p0, pStride, p3, o, oOff + h * d + c, d, d3,
            (long) c * eb);
      }
      rowColumns(seg, type, rowBytes, rowIds, count, p, p0, pStride, heads, o, oOff + h * d, d,
          groupEnd, vecEnd);
    }
    rowColumns(seg, type, rowBytes, rowIds, count, p, pOff + h * pStride, pStride, g - h, o,
        oOff + h * d, d, 0, vecEnd);
    for (int c = vecEnd; c < d; c++) {
      for (int x = 0; x < g; x++) {
        float acc = 0;
        int p0 = pOff + x * pStride;
        for (int i = 0; i < count; i++) {
          acc += p[p0 + i] * loadScalar(seg, rowIds[i] * rowBytes + (long) c * eb, type);
        }
        o[oOff + x * d + c] += acc;
      }
    }
  }

  /** {@link #accumulate4x4} over listed rows. */
  private static void rows4x4(MemorySegment seg, KvDType type, long rowBytes, int[] rowIds,
      int count, float[] p, int p0, int pStride, int p3, float[] o, int o0, int d, int d3,
      long col) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    long cb = (long) L * type.bytes();
    FloatVector a00 = FloatVector.zero(F);
    FloatVector a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F);
    FloatVector a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F);
    FloatVector a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F);
    FloatVector a13 = FloatVector.zero(F);
    FloatVector a20 = FloatVector.zero(F);
    FloatVector a21 = FloatVector.zero(F);
    FloatVector a22 = FloatVector.zero(F);
    FloatVector a23 = FloatVector.zero(F);
    FloatVector a30 = FloatVector.zero(F);
    FloatVector a31 = FloatVector.zero(F);
    FloatVector a32 = FloatVector.zero(F);
    FloatVector a33 = FloatVector.zero(F);
    for (int j = 0; j < count; j++) {
      long base = rowIds[j] * rowBytes + col;
      FloatVector w0 = FloatVector.broadcast(F, p[p0 + j]);
      FloatVector w1 = FloatVector.broadcast(F, p[p0 + pStride + j]);
      FloatVector w2 = FloatVector.broadcast(F, p[p0 + 2 * pStride + j]);
      FloatVector w3 = FloatVector.broadcast(F, p[p3 + j]);
      FloatVector v = bf16 ? loadBf16(seg, base) : f16 ? loadF16(seg, base) : loadF32(seg, base);
      a00 = v.fma(w0, a00);
      a10 = v.fma(w1, a10);
      a20 = v.fma(w2, a20);
      a30 = v.fma(w3, a30);
      v = bf16 ? loadBf16(seg, base + cb) : f16 ? loadF16(seg, base + cb) : loadF32(seg, base + cb);
      a01 = v.fma(w0, a01);
      a11 = v.fma(w1, a11);
      a21 = v.fma(w2, a21);
      a31 = v.fma(w3, a31);
      v = bf16 ? loadBf16(seg, base + 2 * cb)
          : f16 ? loadF16(seg, base + 2 * cb) : loadF32(seg, base + 2 * cb);
      a02 = v.fma(w0, a02);
      a12 = v.fma(w1, a12);
      a22 = v.fma(w2, a22);
      a32 = v.fma(w3, a32);
      v = bf16 ? loadBf16(seg, base + 3 * cb)
          : f16 ? loadF16(seg, base + 3 * cb) : loadF32(seg, base + 3 * cb);
      a03 = v.fma(w0, a03);
      a13 = v.fma(w1, a13);
      a23 = v.fma(w2, a23);
      a33 = v.fma(w3, a33);
    }
    // every sum is read before any is stored: with three heads the fourth repeats the third
    FloatVector r00 = a00.add(FloatVector.fromArray(F, o, o0));
    FloatVector r01 = a01.add(FloatVector.fromArray(F, o, o0 + L));
    FloatVector r02 = a02.add(FloatVector.fromArray(F, o, o0 + 2 * L));
    FloatVector r03 = a03.add(FloatVector.fromArray(F, o, o0 + 3 * L));
    FloatVector r10 = a10.add(FloatVector.fromArray(F, o, o0 + d));
    FloatVector r11 = a11.add(FloatVector.fromArray(F, o, o0 + d + L));
    FloatVector r12 = a12.add(FloatVector.fromArray(F, o, o0 + d + 2 * L));
    FloatVector r13 = a13.add(FloatVector.fromArray(F, o, o0 + d + 3 * L));
    FloatVector r20 = a20.add(FloatVector.fromArray(F, o, o0 + 2 * d));
    FloatVector r21 = a21.add(FloatVector.fromArray(F, o, o0 + 2 * d + L));
    FloatVector r22 = a22.add(FloatVector.fromArray(F, o, o0 + 2 * d + 2 * L));
    FloatVector r23 = a23.add(FloatVector.fromArray(F, o, o0 + 2 * d + 3 * L));
    FloatVector r30 = a30.add(FloatVector.fromArray(F, o, o0 + d3));
    FloatVector r31 = a31.add(FloatVector.fromArray(F, o, o0 + d3 + L));
    FloatVector r32 = a32.add(FloatVector.fromArray(F, o, o0 + d3 + 2 * L));
    FloatVector r33 = a33.add(FloatVector.fromArray(F, o, o0 + d3 + 3 * L));
    r00.intoArray(o, o0);
    r01.intoArray(o, o0 + L);
    r02.intoArray(o, o0 + 2 * L);
    r03.intoArray(o, o0 + 3 * L);
    r10.intoArray(o, o0 + d);
    r11.intoArray(o, o0 + d + L);
    r12.intoArray(o, o0 + d + 2 * L);
    r13.intoArray(o, o0 + d + 3 * L);
    r20.intoArray(o, o0 + 2 * d);
    r21.intoArray(o, o0 + 2 * d + L);
    r22.intoArray(o, o0 + 2 * d + 2 * L);
    r23.intoArray(o, o0 + 2 * d + 3 * L);
    r30.intoArray(o, o0 + d3);
    r31.intoArray(o, o0 + d3 + L);
    r32.intoArray(o, o0 + d3 + 2 * L);
    r33.intoArray(o, o0 + d3 + 3 * L);
  }

  /** Value chunks {@code [cFrom, cTo)} of listed rows for {@code heads} heads, one at a time. */
  private static void rowColumns(MemorySegment seg, KvDType type, long rowBytes, int[] rowIds,
      int count, float[] p, int pOff, int pStride, int heads, float[] o, int oOff, int d,
      int cFrom, int cTo) {
    boolean bf16 = type == KvDType.BFLOAT16; // one helper per site: see the note at loadBf16
    boolean f16 = type == KvDType.FLOAT16;
    int eb = type.bytes();
    for (int c = cFrom; c < cTo; c += L) {
      long col = (long) c * eb;
      for (int h = 0; h < heads; h++) {
        int o0 = oOff + h * d + c;
        int p0 = pOff + h * pStride;
        FloatVector a0 = FloatVector.fromArray(F, o, o0);
        for (int i = 0; i < count; i++) {
          long at = rowIds[i] * rowBytes + col;
          FloatVector v = bf16 ? loadBf16(seg, at) : f16 ? loadF16(seg, at) : loadF32(seg, at);
          a0 = v.fma(FloatVector.broadcast(F, p[p0 + i]), a0);
        }
        a0.intoArray(o, o0);
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

  /** The largest {@code x[xOff + i] + alpha * w[i]} over {@code i < n}; negative infinity if n = 0. */
  public static float maxScaled(float[] x, int xOff, float alpha, float[] w, int n) {
    int i = 0;
    float m = Float.NEGATIVE_INFINITY;
    if (n >= L) {
      FloatVector a = FloatVector.broadcast(F, alpha);
      FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
      for (int end = F.loopBound(n); i < end; i += L) {
        acc = acc.max(FloatVector.fromArray(F, w, i).fma(a, FloatVector.fromArray(F, x, xOff + i)));
      }
      m = acc.reduceLanes(VectorOperators.MAX);
    }
    for (; i < n; i++) {
      m = Math.max(m, Math.fma(w[i], alpha, x[xOff + i]));
    }
    return m;
  }

  /**
   * One query head's per-token masses, shifted: for {@code i < n}, with {@code l = x[xOff + i]},
   * {@code expected[i] = exp(l + alpha * w[i] - shift)} and {@code gap[i] = max(expected[i] -
   * exp(l - shift), 0)}. Returns {@code sum sizes[i] * expected[i]}.
   */
  public static float expectedAndGap(float[] x, int xOff, float alpha, float[] w, float shift,
      float[] sizes, float[] expected, float[] gap, int n) {
    int i = 0;
    FloatVector a = FloatVector.broadcast(F, alpha);
    FloatVector zero = FloatVector.zero(F);
    FloatVector acc = zero;
    for (int end = F.loopBound(n); i < end; i += L) {
      FloatVector l = FloatVector.fromArray(F, x, xOff + i).sub(shift);
      FloatVector ex = FloatVector.fromArray(F, w, i).fma(a, l).lanewise(VectorOperators.EXP);
      FloatVector es = l.lanewise(VectorOperators.EXP);
      ex.intoArray(expected, i);
      ex.sub(es).max(zero).intoArray(gap, i);
      acc = ex.fma(FloatVector.fromArray(F, sizes, i), acc);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      float l = x[xOff + i] - shift;
      float ex = (float) Math.exp(Math.fma(w[i], alpha, l));
      expected[i] = ex;
      gap[i] = Math.max(ex - (float) Math.exp(l), 0f);
      sum += ex * sizes[i];
    }
    return sum;
  }

  /**
   * For {@code i < n}: {@code mass[i] += alpha * sizes[i] * expected[i]} and {@code gapSum[i] +=
   * alpha * gap[i]}: one query head's shares of expected mass and of the estimate's gap per token
   * ({@link #expectedAndGap}), added to the group's.
   */
  public static void addShares(float[] expected, float[] gap, float[] sizes, float alpha,
      float[] mass, float[] gapSum, int n) {
    int i = 0;
    FloatVector a = FloatVector.broadcast(F, alpha);
    for (int end = F.loopBound(n); i < end; i += L) {
      FloatVector ex = FloatVector.fromArray(F, expected, i);
      ex.mul(FloatVector.fromArray(F, sizes, i)).fma(a, FloatVector.fromArray(F, mass, i))
          .intoArray(mass, i);
      FloatVector.fromArray(F, gap, i).fma(a, FloatVector.fromArray(F, gapSum, i))
          .intoArray(gapSum, i);
    }
    for (; i < n; i++) {
      mass[i] += alpha * sizes[i] * expected[i];
      gapSum[i] += alpha * gap[i];
    }
  }
}
