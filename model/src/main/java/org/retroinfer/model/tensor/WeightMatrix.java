package org.retroinfer.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.model.safetensors.TensorDType;

/**
 * A row-major weight matrix {@code W[rows][cols]} (Hugging Face layout: {@code y = W x}, one row per
 * output) read in place from a memory-mapped checkpoint in F32, F16 or BF16. Products widen the
 * 16-bit elements to float32 in vector registers, so the weights are never copied or converted in
 * memory.
 *
 * <p>F16 is widened by moving exponent and mantissa into place and rescaling by 2^112, exact for
 * normal and subnormal numbers; {@link #checkFinite()} rejects infinities and NaN once at load.
 * Immutable; all methods are thread-safe.
 */
public final class WeightMatrix {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = F.withLanes(int.class);
  static final VectorSpecies<Short> S =
      VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
  static final int L = F.length();
  static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  /** Output rows per tile of {@link #matmul}: two vectors. */
  static final int TILE = 2 * L;

  private final String name;
  private final TensorDType dtype;
  private final MemorySegment data;
  private final int rows;
  private final int cols;
  private final long rowBytes;

  public WeightMatrix(String name, TensorDType dtype, MemorySegment data, int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException(name + ": rows and cols must be positive, got " + rows + " x "
          + cols);
    }
    long need = (long) rows * cols * dtype.bytes();
    if (data.byteSize() != need) {
      throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for " + rows + " x "
          + cols + " " + dtype + " (" + need + " expected)");
    }
    this.name = name;
    this.dtype = dtype;
    this.data = data;
    this.rows = rows;
    this.cols = cols;
    this.rowBytes = (long) cols * dtype.bytes();
  }

  public String name() {
    return name;
  }

  public TensorDType dtype() {
    return dtype;
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  /** Element {@code (r, c)} as float. */
  public float get(int r, int c) {
    long at = r * rowBytes + (long) c * dtype.bytes();
    return switch (dtype) {
      case F32 -> data.get(FLOAT_LE, at);
      case F16 -> Float.float16ToFloat(data.get(SHORT_LE, at));
      case BF16 -> Float.intBitsToFloat(data.get(SHORT_LE, at) << 16);
    };
  }

  /** Row {@code r} widened to float into {@code dst[off .. off + cols)}. */
  public void readRow(int r, float[] dst, int off) {
    long base = r * rowBytes;
    int c = 0;
    for (int end = F.loopBound(cols); c < end; c += L) {
      load(base + (long) c * dtype.bytes()).intoArray(dst, off + c);
    }
    for (; c < cols; c++) {
      dst[off + c] = get(r, c);
    }
  }

  /**
   * Throws if any element is infinite or NaN: such weights would silently poison every activation,
   * and the F16 fast path assumes finite values.
   */
  public void checkFinite() {
    float[] row = new float[cols];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        row[c] = get(r, c);
      }
      for (int c = 0; c < cols; c++) {
        if (!Float.isFinite(row[c])) {
          throw new IllegalArgumentException("tensor '" + name + "' holds " + row[c] + " at [" + r
              + ", " + c + "]; a usable checkpoint has finite weights");
        }
      }
    }
  }

  private FloatVector load(long byteOffset) {
    return switch (dtype) {
      case F32 -> FloatVector.fromMemorySegment(F, data, byteOffset, ByteOrder.LITTLE_ENDIAN);
      case BF16 -> ((IntVector) ShortVector.fromMemorySegment(S, data, byteOffset,
          ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I, 0))
          .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
      case F16 -> {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, data, byteOffset,
            ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I, 0);
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        FloatVector magnitude = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13)
            .reinterpretAsFloats().mul(0x1p112f);
        yield magnitude.reinterpretAsInts().or(sign).reinterpretAsFloats();
      }
    };
  }

  /**
   * {@code y[yOff + r] = W[r] . x[xOff .. xOff + cols)} for rows {@code r} in {@code [from, to)}, on
   * the calling thread.
   */
  public void matvec(float[] x, int xOff, float[] y, int yOff, int from, int to) {
    int r = from;
    if (dtype == TensorDType.F32) {
      r = matvecF32(x, xOff, y, yOff, from, to);
    } else if (cols % 2 == 0) {
      r = matvecPairs(x, xOff, y, yOff, from, to);
    }
    for (; r < to; r++) {
      float s = 0;
      for (int c = 0; c < cols; c++) {
        s += get(r, c) * x[xOff + c];
      }
      y[yOff + r] = s;
    }
  }

  /** F32 rows, four at a time; returns the first row not done. */
  private int matvecF32(float[] x, int xOff, float[] y, int yOff, int from, int to) {
    int vecEnd = F.loopBound(cols);
    int r = from;
    for (; to - r >= 4; r += 4) {
      long b0 = r * rowBytes;
      long b1 = b0 + rowBytes;
      long b2 = b1 + rowBytes;
      long b3 = b2 + rowBytes;
      FloatVector a0 = FloatVector.zero(F);
      FloatVector a1 = FloatVector.zero(F);
      FloatVector a2 = FloatVector.zero(F);
      FloatVector a3 = FloatVector.zero(F);
      for (int c = 0; c < vecEnd; c += L) {
        FloatVector xv = FloatVector.fromArray(F, x, xOff + c);
        long cb = 4L * c;
        a0 = FloatVector.fromMemorySegment(F, data, b0 + cb, ByteOrder.LITTLE_ENDIAN).fma(xv, a0);
        a1 = FloatVector.fromMemorySegment(F, data, b1 + cb, ByteOrder.LITTLE_ENDIAN).fma(xv, a1);
        a2 = FloatVector.fromMemorySegment(F, data, b2 + cb, ByteOrder.LITTLE_ENDIAN).fma(xv, a2);
        a3 = FloatVector.fromMemorySegment(F, data, b3 + cb, ByteOrder.LITTLE_ENDIAN).fma(xv, a3);
      }
      float s0 = a0.reduceLanes(VectorOperators.ADD);
      float s1 = a1.reduceLanes(VectorOperators.ADD);
      float s2 = a2.reduceLanes(VectorOperators.ADD);
      float s3 = a3.reduceLanes(VectorOperators.ADD);
      for (int c = vecEnd; c < cols; c++) {
        float xc = x[xOff + c];
        s0 += get(r, c) * xc;
        s1 += get(r + 1, c) * xc;
        s2 += get(r + 2, c) * xc;
        s3 += get(r + 3, c) * xc;
      }
      y[yOff + r] = s0;
      y[yOff + r + 1] = s1;
      y[yOff + r + 2] = s2;
      y[yOff + r + 3] = s3;
    }
    return r;
  }

  /**
   * 16-bit rows, one at a time, read as 32-bit words that each hold an even and an odd element:
   * the words are split into an "even" and an "odd" float vector with shifts and masks (no lane
   * shuffles), and multiplied with the even and odd elements of {@code x}, de-interleaved once.
   * Two chunks per step into four accumulators: a decode step's products are short rows (384 to
   * 1024 columns), so one accumulator chain per row left the core waiting on FMA latency
   * (measured: two rows with one chain each ran 2-3x slower than this on the shipped model's
   * weights). Returns the first row not done.
   */
  private int matvecPairs(float[] x, int xOff, float[] y, int yOff, int from, int to) {
    int pairs = cols / 2;
    float[] xs = SPLIT.get();
    if (xs.length < cols) {
      xs = new float[cols];
      SPLIT.set(xs);
    }
    for (int i = 0; i < pairs; i++) {
      xs[i] = x[xOff + 2 * i];
      xs[pairs + i] = x[xOff + 2 * i + 1];
    }
    boolean bf16 = dtype == TensorDType.BF16;
    int vecEnd = I.loopBound(pairs);
    int twoEnd = vecEnd - vecEnd % (2 * L);
    for (int r = from; r < to; r++) {
      long b = r * rowBytes;
      FloatVector e0 = FloatVector.zero(F);
      FloatVector o0 = FloatVector.zero(F);
      FloatVector e1 = FloatVector.zero(F);
      FloatVector o1 = FloatVector.zero(F);
      int i = 0;
      for (; i < twoEnd; i += 2 * L) {
        IntVector w0 = IntVector.fromMemorySegment(I, data, b + 4L * i, ByteOrder.LITTLE_ENDIAN);
        IntVector w1 = IntVector.fromMemorySegment(I, data, b + 4L * (i + L), ByteOrder.LITTLE_ENDIAN);
        if (bf16) {
          e0 = bf16High(w0.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i), e0);
          o0 = bf16High(w0).fma(FloatVector.fromArray(F, xs, pairs + i), o0);
          e1 = bf16High(w1.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i + L), e1);
          o1 = bf16High(w1).fma(FloatVector.fromArray(F, xs, pairs + i + L), o1);
        } else {
          e0 = f16High(w0.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i), e0);
          o0 = f16High(w0).fma(FloatVector.fromArray(F, xs, pairs + i), o0);
          e1 = f16High(w1.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i + L), e1);
          o1 = f16High(w1).fma(FloatVector.fromArray(F, xs, pairs + i + L), o1);
        }
      }
      if (i < vecEnd) {
        IntVector w0 = IntVector.fromMemorySegment(I, data, b + 4L * i, ByteOrder.LITTLE_ENDIAN);
        if (bf16) {
          e0 = bf16High(w0.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i), e0);
          o0 = bf16High(w0).fma(FloatVector.fromArray(F, xs, pairs + i), o0);
        } else {
          e0 = f16High(w0.lanewise(VectorOperators.LSHL, 16)).fma(FloatVector.fromArray(F, xs, i), e0);
          o0 = f16High(w0).fma(FloatVector.fromArray(F, xs, pairs + i), o0);
        }
      }
      float s = e0.add(o0).add(e1.add(o1)).reduceLanes(VectorOperators.ADD);
      for (int c = 2 * vecEnd; c < cols; c++) {
        s += get(r, c) * x[xOff + c];
      }
      y[yOff + r] = s;
    }
    return to;
  }

  private static final ThreadLocal<float[]> SPLIT = ThreadLocal.withInitial(() -> new float[0]);

  /** The bfloat16 in the upper half of each 32-bit lane, as float: the lane with its low half zeroed. */
  private static FloatVector bf16High(IntVector w) {
    return w.and(0xFFFF0000).reinterpretAsFloats();
  }

  /**
   * The float16 in the upper half of each 32-bit lane, as float. An arithmetic shift by 3 moves the
   * exponent and mantissa to float32's positions (and smears the sign over bits 31..28); the mask
   * keeps the sign bit and the 15 moved bits; multiplying by 2^112 re-biases the exponent (15 to
   * 127), exactly, for normal and subnormal values alike.
   */
  private static FloatVector f16High(IntVector w) {
    return w.lanewise(VectorOperators.ASHR, 3).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
  }

  /**
   * Rows per parallel chunk of a matrix-vector product: at least {@value #MIN_CHUNK_MACS}
   * multiply-adds, because a fork costs several microseconds (far more on a busy 2-core machine)
   * and a decode step's products are small.
   */
  public int parallelGrain() {
    return Math.max(4, MIN_CHUNK_MACS / cols);
  }

  static final int MIN_CHUNK_MACS = 1 << 18;

  /** {@link #matvec} over all rows, in parallel chunks of {@link #parallelGrain()} rows. */
  public void matvec(float[] x, int xOff, float[] y, int yOff) {
    Parallel.forRange(rows, parallelGrain(), (from, to) -> matvec(x, xOff, y, yOff, from, to));
  }

  /**
   * The product of {@code n} input rows with this matrix:
   * {@code Y[t * yStride + r] = W[r] . X[t * cols .. (t + 1) * cols)} for every row {@code r} and
   * {@code t} in {@code [0, n)}, in parallel over tiles of output rows. Each tile of weights is
   * widened once into a transposed float block and reused for all {@code n} inputs, four at a time.
   */
  public void matmul(float[] x, int n, float[] y, int yStride) {
    if (yStride < rows) {
      throw new IllegalArgumentException(name + ": output stride " + yStride + " < rows " + rows);
    }
    int tiles = (rows + TILE - 1) / TILE;
    Parallel.forRange(tiles, 1, (from, to) -> {
      float[] wt = new float[cols * TILE];
      for (int tile = from; tile < to; tile++) {
        int r0 = tile * TILE;
        if (r0 + TILE <= rows) {
          matmulTile(x, n, y, yStride, r0, wt);
        } else {
          for (int t = 0; t < n; t++) {
            matvec(x, t * cols, y, t * yStride, r0, rows);
          }
        }
      }
    });
  }

  private void matmulTile(float[] x, int n, float[] y, int yStride, int r0, float[] wt) {
    // transpose: wt[c * TILE + i] = W[r0 + i][c]
    float[] row = new float[cols];
    for (int i = 0; i < TILE; i++) {
      readRow(r0 + i, row, 0);
      for (int c = 0; c < cols; c++) {
        wt[c * TILE + i] = row[c];
      }
    }
    int t = 0;
    for (; n - t >= 4; t += 4) {
      int x0 = t * cols;
      int x1 = x0 + cols;
      int x2 = x1 + cols;
      int x3 = x2 + cols;
      FloatVector a00 = FloatVector.zero(F);
      FloatVector a01 = FloatVector.zero(F);
      FloatVector a10 = FloatVector.zero(F);
      FloatVector a11 = FloatVector.zero(F);
      FloatVector a20 = FloatVector.zero(F);
      FloatVector a21 = FloatVector.zero(F);
      FloatVector a30 = FloatVector.zero(F);
      FloatVector a31 = FloatVector.zero(F);
      for (int c = 0; c < cols; c++) {
        FloatVector w0 = FloatVector.fromArray(F, wt, c * TILE);
        FloatVector w1 = FloatVector.fromArray(F, wt, c * TILE + L);
        FloatVector b0 = FloatVector.broadcast(F, x[x0 + c]);
        FloatVector b1 = FloatVector.broadcast(F, x[x1 + c]);
        FloatVector b2 = FloatVector.broadcast(F, x[x2 + c]);
        FloatVector b3 = FloatVector.broadcast(F, x[x3 + c]);
        a00 = w0.fma(b0, a00);
        a01 = w1.fma(b0, a01);
        a10 = w0.fma(b1, a10);
        a11 = w1.fma(b1, a11);
        a20 = w0.fma(b2, a20);
        a21 = w1.fma(b2, a21);
        a30 = w0.fma(b3, a30);
        a31 = w1.fma(b3, a31);
      }
      int y0 = t * yStride + r0;
      a00.intoArray(y, y0);
      a01.intoArray(y, y0 + L);
      a10.intoArray(y, y0 + yStride);
      a11.intoArray(y, y0 + yStride + L);
      a20.intoArray(y, y0 + 2 * yStride);
      a21.intoArray(y, y0 + 2 * yStride + L);
      a30.intoArray(y, y0 + 3 * yStride);
      a31.intoArray(y, y0 + 3 * yStride + L);
    }
    for (; t < n; t++) {
      int x0 = t * cols;
      FloatVector a0 = FloatVector.zero(F);
      FloatVector a1 = FloatVector.zero(F);
      for (int c = 0; c < cols; c++) {
        FloatVector b = FloatVector.broadcast(F, x[x0 + c]);
        a0 = FloatVector.fromArray(F, wt, c * TILE).fma(b, a0);
        a1 = FloatVector.fromArray(F, wt, c * TILE + L).fma(b, a1);
      }
      a0.intoArray(y, t * yStride + r0);
      a1.intoArray(y, t * yStride + r0 + L);
    }
  }

  @Override
  public String toString() {
    return name + " " + dtype + "[" + rows + ", " + cols + "]";
  }
}
