package org.retroinfer.wave.attention;

import java.util.Arrays;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;

/**
 * The running state of softmax attention for the query heads of one group: per head the largest
 * logit {@code m}, the normaliser {@code Z = sum w exp(l - m)} and the unnormalised output
 * {@code O = sum exp(l - m) v}. Attention over any set of tokens is absorbed block by block (online
 * softmax), and two states over disjoint token sets combine with {@link #merge}: the log-sum-exp
 * merge, in this one place, for exact and estimated zones alike.
 *
 * <p>Not thread-safe: one state per thread and query group.
 */
public final class SoftmaxState {
  /** Rows scored per block: a block of 16-bit keys of head dim 128 stays in L1. */
  static final int BLOCK = 64;

  private final int heads;
  private final int dim;
  private final float[] max;
  private final float[] sum;
  private final float[] out;
  private final float[] block;
  private float[] gathered = new float[0];

  public SoftmaxState(int heads, int dim) {
    if (heads <= 0 || dim <= 0) {
      throw new IllegalArgumentException("heads and dim must be positive: " + heads + ", " + dim);
    }
    this.heads = heads;
    this.dim = dim;
    this.max = new float[heads];
    this.sum = new float[heads];
    this.out = new float[heads * dim];
    this.block = new float[heads * BLOCK];
    reset();
  }

  public int heads() {
    return heads;
  }

  public int dim() {
    return dim;
  }

  /**
   * Sizes the scratch memory of {@link #absorbRanges} for ranges of up to {@code rows} rows in all,
   * so that the first call after an index change does not allocate (a growth branch taken inside a
   * compiled decode step sends it back to the interpreter and costs a recompilation).
   */
  public void reserveRows(int rows) {
    if (gathered.length < (long) heads * rows) {
      gathered = new float[Math.multiplyExact(heads, rows)];
    }
  }

  /** How many rows {@link #absorbRanges} can take in one call without allocating. */
  public int reservedRows() {
    return gathered.length / heads;
  }

  /** Forgets everything absorbed. */
  public void reset() {
    Arrays.fill(max, Float.NEGATIVE_INFINITY);
    Arrays.fill(sum, 0f);
    Arrays.fill(out, 0f);
  }

  /** True when nothing has been absorbed. */
  public boolean isEmpty() {
    for (float z : sum) {
      if (z != 0f) {
        return false;
      }
    }
    return true;
  }

  /**
   * Absorbs exact attention over rows {@code [from, to)} of {@code keys}/{@code values} for the
   * queries {@code q[qOff .. qOff + heads * dim)}, logits scaled by {@code scale}.
   */
  public void absorbRange(VectorStore keys, VectorStore values, int from, int to, float[] q, int qOff,
      float scale) {
    for (int b = from; b < to; b += BLOCK) {
      int n = Math.min(BLOCK, to - b);
      KvKernels.scores(keys, b, n, q, qOff, heads, scale, block, 0, BLOCK);
      for (int h = 0; h < heads; h++) {
        int off = h * BLOCK;
        float m = rescaleTo(h, KvKernels.max(block, off, n));
        sum[h] += KvKernels.expShifted(block, off, n, m);
      }
      KvKernels.accumulate(values, b, n, block, 0, BLOCK, heads, out, 0);
    }
  }

  /**
   * Absorbs exact attention over several row ranges {@code [starts[i], ends[i])}, i < count, of
   * {@code keys}/{@code values} at once: all their logits are scored into one buffer and
   * exponentiated in one pass per head, so that many small ranges (retrieved clusters of ~16 tokens)
   * cost one softmax update instead of one each.
   */
  public void absorbRanges(VectorStore keys, VectorStore values, int[] starts, int[] ends, int count,
      float[] q, int qOff, float scale) {
    int rows = 0;
    for (int i = 0; i < count; i++) {
      rows += ends[i] - starts[i];
    }
    if (rows == 0) {
      return;
    }
    if (gathered.length < heads * rows) {
      gathered = new float[heads * Math.max(rows, gathered.length / heads * 2)];
    }
    int stride = gathered.length / heads;
    int at = 0;
    for (int i = 0; i < count; i++) {
      int n = ends[i] - starts[i];
      KvKernels.scores(keys, starts[i], n, q, qOff, heads, scale, gathered, at, stride);
      at += n;
    }
    for (int h = 0; h < heads; h++) {
      int off = h * stride;
      float m = rescaleTo(h, KvKernels.max(gathered, off, rows));
      sum[h] += KvKernels.expShifted(gathered, off, rows, m);
    }
    at = 0;
    for (int i = 0; i < count; i++) {
      int n = ends[i] - starts[i];
      KvKernels.accumulate(values, starts[i], n, gathered, at, stride, heads, out, 0);
      at += n;
    }
  }

  /**
   * Absorbs {@code count} items given by their logits and a weight (multiplicity) each: item
   * {@code i} adds {@code weight[i] exp(l)} to {@code Z} and {@code exp(l) V[rows[i]]} to {@code O}.
   * With centroids' logits, cluster sizes and value sums this is the estimation zone; with weight 1
   * and a token's value row it is exact attention over scattered tokens.
   *
   * @param logits {@code logits[lOff + h * lStride + i]} for head {@code h}, item {@code i};
   *     overwritten
   * @param weights per item, or null for all ones
   */
  public void absorbRows(VectorStore values, int[] rows, int count, float[] logits, int lOff,
      int lStride, float[] weights) {
    if (count == 0) {
      return;
    }
    for (int h = 0; h < heads; h++) {
      int off = lOff + h * lStride;
      float m = rescaleTo(h, KvKernels.max(logits, off, count));
      if (weights == null) {
        sum[h] += KvKernels.expShifted(logits, off, count, m);
      } else {
        KvKernels.expShifted(logits, off, count, m);
        sum[h] += KvKernels.dot(logits, off, weights, 0, count);
      }
    }
    KvKernels.accumulateRows(values, rows, count, logits, lOff, lStride, heads, out, 0);
  }

  /** Raises head {@code h}'s running max to at least {@code m}, rescaling Z and O; returns it. */
  private float rescaleTo(int h, float m) {
    float old = max[h];
    if (m <= old) {
      return old;
    }
    if (sum[h] != 0f) {
      float c = (float) Math.exp(old - m);
      sum[h] *= c;
      KvKernels.scale(out, h * dim, dim, c);
    }
    max[h] = m;
    return m;
  }

  /**
   * The log-sum-exp merge: afterwards this state is attention over the union of both token sets.
   * {@code other} is unchanged.
   */
  public void merge(SoftmaxState other) {
    if (other.heads != heads || other.dim != dim) {
      throw new IllegalArgumentException("cannot merge " + other.heads + "x" + other.dim
          + " state into " + heads + "x" + dim);
    }
    for (int h = 0; h < heads; h++) {
      if (other.sum[h] == 0f) {
        continue;
      }
      float m = Math.max(max[h], other.max[h]);
      float a = sum[h] == 0f ? 0f : (float) Math.exp(max[h] - m);
      float b = (float) Math.exp(other.max[h] - m);
      sum[h] = a * sum[h] + b * other.sum[h];
      int o = h * dim;
      for (int c = 0; c < dim; c++) {
        out[o + c] = a * out[o + c] + b * other.out[o + c];
      }
      max[h] = m;
    }
  }

  /** Writes {@code O / Z} per head to {@code dst[off .. off + heads * dim)}; zeros if empty. */
  public void writeOutput(float[] dst, int off) {
    for (int h = 0; h < heads; h++) {
      float inv = sum[h] == 0f ? 0f : 1f / sum[h];
      int o = h * dim;
      for (int c = 0; c < dim; c++) {
        dst[off + o + c] = out[o + c] * inv;
      }
    }
  }

  /** The natural log of head {@code h}'s total mass, {@code m + ln Z}. */
  public double logMass(int h) {
    return max[h] + Math.log(sum[h]);
  }
}
