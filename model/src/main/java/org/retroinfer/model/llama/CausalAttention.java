package org.retroinfer.model.llama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.model.tensor.Parallel;
import org.retroinfer.wave.attention.AttentionShape;

/**
 * Exact causal attention of a block of prompt queries over all earlier keys, for prefill, without
 * materialising a T x T score matrix: queries are processed in blocks of {@value #QUERY_BLOCK}
 * positions (times the heads of a query group), keys in blocks of {@value #KEY_BLOCK}, with an
 * online (running max) softmax per query row, as in FlashAttention. Work is parallel over (KV head,
 * query block). Everything is float32.
 */
public final class CausalAttention {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  static {
    org.retroinfer.wave.math.VectorMath.link(); // EXP linked whatever the user's locale
  }
  static final int L = F.length();
  static final int QUERY_BLOCK = 64;
  static final int KEY_BLOCK = Math.max(64, 2 * L); // a whole number of two-vector steps

  private final AttentionShape shape;

  public CausalAttention(AttentionShape shape) {
    this.shape = shape;
  }

  /**
   * Attention for {@code n} query rows {@code q[t * queryWidth ..]} at positions
   * {@code start + t}: each attends over keys/values at positions {@code [0, start + t]}, read from
   * {@code keys/values} (laid out as in {@link PromptState#keys}, already holding positions up to
   * {@code start + n - 1}). Writes {@code out[t * queryWidth ..]}.
   */
  public void attend(float[] q, int n, int start, float[] keys, float[] values, float[] out) {
    int blocks = (n + QUERY_BLOCK - 1) / QUERY_BLOCK;
    int kvHeads = shape.kvHeads();
    Parallel.forRange(kvHeads * blocks, 1, (from, to) -> {
      Scratch s = new Scratch(shape.groupSize() * QUERY_BLOCK, shape.headDim());
      for (int task = from; task < to; task++) {
        int kh = task % kvHeads;
        int t0 = (task / kvHeads) * QUERY_BLOCK;
        block(q, Math.min(QUERY_BLOCK, n - t0), t0, start, kh, keys, values, out, s);
      }
    });
  }

  /** Per-thread buffers of one query block. */
  private static final class Scratch {
    final float[] qs;
    final float[] kt;
    final float[] scores;
    final float[] acc;
    final float[] max;
    final float[] sum;

    Scratch(int rows, int d) {
      qs = new float[rows * d];
      kt = new float[d * KEY_BLOCK];
      scores = new float[rows * KEY_BLOCK];
      acc = new float[rows * d];
      max = new float[rows];
      sum = new float[rows];
    }
  }

  private void block(float[] q, int nq, int t0, int start, int kh, float[] keys, float[] values,
      float[] out, Scratch s) {
    int d = shape.headDim();
    int g = shape.groupSize();
    int qw = shape.queryWidth();
    int kw = shape.kvWidth();
    int rows = nq * g;
    float scale = shape.scale();
    // row r = t * g + hh: query head kh * g + hh at position start + t0 + t
    for (int t = 0; t < nq; t++) {
      for (int hh = 0; hh < g; hh++) {
        int src = (t0 + t) * qw + (kh * g + hh) * d;
        int dst = (t * g + hh) * d;
        for (int c = 0; c < d; c++) {
          s.qs[dst + c] = q[src + c] * scale;
        }
      }
    }
    java.util.Arrays.fill(s.acc, 0, rows * d, 0f);
    java.util.Arrays.fill(s.max, 0, rows, Float.NEGATIVE_INFINITY);
    java.util.Arrays.fill(s.sum, 0, rows, 0f);
    int firstPos = start + t0;
    int lastPos = firstPos + nq - 1;
    for (int kb = 0; kb <= lastPos; kb += KEY_BLOCK) {
      int nk = Math.min(KEY_BLOCK, lastPos + 1 - kb);
      transposeKeys(keys, kb, nk, kh * d, kw, d, s.kt);
      scores(s.qs, rows, d, s.kt, s.scores);
      for (int r = 0; r < rows; r++) {
        int pos = firstPos + r / g;
        int valid = Math.min(nk, pos - kb + 1); // causal: keys at positions <= pos
        int so = r * KEY_BLOCK;
        for (int j = Math.max(valid, 0); j < KEY_BLOCK; j++) {
          s.scores[so + j] = Float.NEGATIVE_INFINITY;
        }
        softmaxStep(s, r, d);
      }
      accumulateValues(s, rows, d, values, kb, nk, kh * d, kw);
    }
    for (int r = 0; r < rows; r++) {
      int t = r / g;
      int hh = r % g;
      int dst = (t0 + t) * qw + (kh * g + hh) * d;
      float inv = 1f / s.sum[r];
      for (int c = 0; c < d; c++) {
        out[dst + c] = s.acc[r * d + c] * inv;
      }
    }
  }

  /** kt[c * KEY_BLOCK + j] = K[kb + j][col + c]; zero beyond {@code nk}. */
  private static void transposeKeys(float[] keys, int kb, int nk, int col, int kw, int d, float[] kt) {
    for (int j = 0; j < nk; j++) {
      int src = (kb + j) * kw + col;
      for (int c = 0; c < d; c++) {
        kt[c * KEY_BLOCK + j] = keys[src + c];
      }
    }
    if (nk < KEY_BLOCK) {
      for (int c = 0; c < d; c++) {
        java.util.Arrays.fill(kt, c * KEY_BLOCK + nk, (c + 1) * KEY_BLOCK, 0f);
      }
    }
  }

  /**
   * scores[r * KEY_BLOCK + j] = qs[r] . K[j], vectorised over keys: four query rows share each load
   * of two key vectors, eight independent accumulators.
   */
  private static void scores(float[] qs, int rows, int d, float[] kt, float[] scores) {
    int r = 0;
    for (; rows - r >= 4; r += 4) {
      int q0 = r * d;
      for (int j = 0; j < KEY_BLOCK; j += 2 * L) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F);
        FloatVector b1 = FloatVector.zero(F);
        FloatVector c0 = FloatVector.zero(F);
        FloatVector c1 = FloatVector.zero(F);
        FloatVector e0 = FloatVector.zero(F);
        FloatVector e1 = FloatVector.zero(F);
        for (int c = 0; c < d; c++) {
          FloatVector k0 = FloatVector.fromArray(F, kt, c * KEY_BLOCK + j);
          FloatVector k1 = FloatVector.fromArray(F, kt, c * KEY_BLOCK + j + L);
          FloatVector x = FloatVector.broadcast(F, qs[q0 + c]);
          a0 = k0.fma(x, a0);
          a1 = k1.fma(x, a1);
          x = FloatVector.broadcast(F, qs[q0 + d + c]);
          b0 = k0.fma(x, b0);
          b1 = k1.fma(x, b1);
          x = FloatVector.broadcast(F, qs[q0 + 2 * d + c]);
          c0 = k0.fma(x, c0);
          c1 = k1.fma(x, c1);
          x = FloatVector.broadcast(F, qs[q0 + 3 * d + c]);
          e0 = k0.fma(x, e0);
          e1 = k1.fma(x, e1);
        }
        int o = r * KEY_BLOCK + j;
        a0.intoArray(scores, o);
        a1.intoArray(scores, o + L);
        b0.intoArray(scores, o + KEY_BLOCK);
        b1.intoArray(scores, o + KEY_BLOCK + L);
        c0.intoArray(scores, o + 2 * KEY_BLOCK);
        c1.intoArray(scores, o + 2 * KEY_BLOCK + L);
        e0.intoArray(scores, o + 3 * KEY_BLOCK);
        e1.intoArray(scores, o + 3 * KEY_BLOCK + L);
      }
    }
    for (; r < rows; r++) {
      for (int j = 0; j < KEY_BLOCK; j += L) {
        FloatVector a = FloatVector.zero(F);
        for (int c = 0; c < d; c++) {
          a = FloatVector.fromArray(F, kt, c * KEY_BLOCK + j)
              .fma(FloatVector.broadcast(F, qs[r * d + c]), a);
        }
        a.intoArray(scores, r * KEY_BLOCK + j);
      }
    }
  }

  /** Online softmax: raises row r's running max, rescales its sum and output, exponentiates. */
  private static void softmaxStep(Scratch s, int r, int d) {
    int so = r * KEY_BLOCK;
    FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
    for (int j = 0; j < KEY_BLOCK; j += L) {
      mv = mv.max(FloatVector.fromArray(F, s.scores, so + j));
    }
    float blockMax = mv.reduceLanes(VectorOperators.MAX);
    float m = Math.max(s.max[r], blockMax);
    if (m > s.max[r] && s.sum[r] != 0f) {
      float c = (float) Math.exp(s.max[r] - m);
      s.sum[r] *= c;
      for (int i = 0; i < d; i++) {
        s.acc[r * d + i] *= c;
      }
    }
    s.max[r] = m;
    FloatVector total = FloatVector.zero(F);
    for (int j = 0; j < KEY_BLOCK; j += L) {
      FloatVector e = FloatVector.fromArray(F, s.scores, so + j).sub(m).lanewise(VectorOperators.EXP);
      e.intoArray(s.scores, so + j);
      total = total.add(e);
    }
    s.sum[r] += total.reduceLanes(VectorOperators.ADD);
  }

  /**
   * Four rows by four value chunks: {@code acc[o0 + i * d + c*L ..] += sum_j p[p0 + i * KEY_BLOCK + j]
   * V[v0 + j * kw + c*L ..]} for rows i < 4 and chunks c < 4. Sixteen independent accumulators: with
   * four (one chunk at a time) each FMA waited on the one before it (64 keys per block), which held
   * the value pass of prefill at half the FMA rate.
   */
  private static void accumulate4x4(Scratch s, int o0, int d, int p0, float[] values, int v0,
      int nk, int kw) {
    float[] acc = s.acc;
    float[] p = s.scores;
    FloatVector a00 = FloatVector.fromArray(F, acc, o0);
    FloatVector a01 = FloatVector.fromArray(F, acc, o0 + L);
    FloatVector a02 = FloatVector.fromArray(F, acc, o0 + 2 * L);
    FloatVector a03 = FloatVector.fromArray(F, acc, o0 + 3 * L);
    FloatVector a10 = FloatVector.fromArray(F, acc, o0 + d);
    FloatVector a11 = FloatVector.fromArray(F, acc, o0 + d + L);
    FloatVector a12 = FloatVector.fromArray(F, acc, o0 + d + 2 * L);
    FloatVector a13 = FloatVector.fromArray(F, acc, o0 + d + 3 * L);
    FloatVector a20 = FloatVector.fromArray(F, acc, o0 + 2 * d);
    FloatVector a21 = FloatVector.fromArray(F, acc, o0 + 2 * d + L);
    FloatVector a22 = FloatVector.fromArray(F, acc, o0 + 2 * d + 2 * L);
    FloatVector a23 = FloatVector.fromArray(F, acc, o0 + 2 * d + 3 * L);
    FloatVector a30 = FloatVector.fromArray(F, acc, o0 + 3 * d);
    FloatVector a31 = FloatVector.fromArray(F, acc, o0 + 3 * d + L);
    FloatVector a32 = FloatVector.fromArray(F, acc, o0 + 3 * d + 2 * L);
    FloatVector a33 = FloatVector.fromArray(F, acc, o0 + 3 * d + 3 * L);
    for (int j = 0; j < nk; j++) {
      int v = v0 + j * kw;
      FloatVector v0v = FloatVector.fromArray(F, values, v);
      FloatVector v1v = FloatVector.fromArray(F, values, v + L);
      FloatVector v2v = FloatVector.fromArray(F, values, v + 2 * L);
      FloatVector v3v = FloatVector.fromArray(F, values, v + 3 * L);
      FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
      a00 = v0v.fma(w, a00);
      a01 = v1v.fma(w, a01);
      a02 = v2v.fma(w, a02);
      a03 = v3v.fma(w, a03);
      w = FloatVector.broadcast(F, p[p0 + KEY_BLOCK + j]);
      a10 = v0v.fma(w, a10);
      a11 = v1v.fma(w, a11);
      a12 = v2v.fma(w, a12);
      a13 = v3v.fma(w, a13);
      w = FloatVector.broadcast(F, p[p0 + 2 * KEY_BLOCK + j]);
      a20 = v0v.fma(w, a20);
      a21 = v1v.fma(w, a21);
      a22 = v2v.fma(w, a22);
      a23 = v3v.fma(w, a23);
      w = FloatVector.broadcast(F, p[p0 + 3 * KEY_BLOCK + j]);
      a30 = v0v.fma(w, a30);
      a31 = v1v.fma(w, a31);
      a32 = v2v.fma(w, a32);
      a33 = v3v.fma(w, a33);
    }
    a00.intoArray(acc, o0);
    a01.intoArray(acc, o0 + L);
    a02.intoArray(acc, o0 + 2 * L);
    a03.intoArray(acc, o0 + 3 * L);
    a10.intoArray(acc, o0 + d);
    a11.intoArray(acc, o0 + d + L);
    a12.intoArray(acc, o0 + d + 2 * L);
    a13.intoArray(acc, o0 + d + 3 * L);
    a20.intoArray(acc, o0 + 2 * d);
    a21.intoArray(acc, o0 + 2 * d + L);
    a22.intoArray(acc, o0 + 2 * d + 2 * L);
    a23.intoArray(acc, o0 + 2 * d + 3 * L);
    a30.intoArray(acc, o0 + 3 * d);
    a31.intoArray(acc, o0 + 3 * d + L);
    a32.intoArray(acc, o0 + 3 * d + 2 * L);
    a33.intoArray(acc, o0 + 3 * d + 3 * L);
  }

  /** acc[r] += sum_j p[r][j] V[kb + j], vectorised over the head dim; four rows share each load. */
  private static void accumulateValues(Scratch s, int rows, int d, float[] values, int kb, int nk,
      int col, int kw) {
    int vecEnd = F.loopBound(d);
    int wideEnd = vecEnd - vecEnd % (4 * L);
    int r = 0;
    for (; rows - r >= 4; r += 4) {
      int p0 = r * KEY_BLOCK;
      for (int c = 0; c < wideEnd; c += 4 * L) {
        accumulate4x4(s, r * d + c, d, p0, values, (kb * kw) + col + c, nk, kw);
      }
      for (int c = wideEnd; c < vecEnd; c += L) {
        int o0 = r * d + c;
        FloatVector a0 = FloatVector.fromArray(F, s.acc, o0);
        FloatVector a1 = FloatVector.fromArray(F, s.acc, o0 + d);
        FloatVector a2 = FloatVector.fromArray(F, s.acc, o0 + 2 * d);
        FloatVector a3 = FloatVector.fromArray(F, s.acc, o0 + 3 * d);
        for (int j = 0; j < nk; j++) {
          FloatVector v = FloatVector.fromArray(F, values, (kb + j) * kw + col + c);
          a0 = v.fma(FloatVector.broadcast(F, s.scores[p0 + j]), a0);
          a1 = v.fma(FloatVector.broadcast(F, s.scores[p0 + KEY_BLOCK + j]), a1);
          a2 = v.fma(FloatVector.broadcast(F, s.scores[p0 + 2 * KEY_BLOCK + j]), a2);
          a3 = v.fma(FloatVector.broadcast(F, s.scores[p0 + 3 * KEY_BLOCK + j]), a3);
        }
        a0.intoArray(s.acc, o0);
        a1.intoArray(s.acc, o0 + d);
        a2.intoArray(s.acc, o0 + 2 * d);
        a3.intoArray(s.acc, o0 + 3 * d);
      }
    }
    for (; r < rows; r++) {
      int p0 = r * KEY_BLOCK;
      for (int c = 0; c < vecEnd; c += L) {
        FloatVector a = FloatVector.fromArray(F, s.acc, r * d + c);
        for (int j = 0; j < nk; j++) {
          a = FloatVector.fromArray(F, values, (kb + j) * kw + col + c)
              .fma(FloatVector.broadcast(F, s.scores[p0 + j]), a);
        }
        a.intoArray(s.acc, r * d + c);
      }
    }
    for (int c = vecEnd; c < d; c++) {
      for (int rr = 0; rr < rows; rr++) {
        float a = 0;
        for (int j = 0; j < nk; j++) {
          a += s.scores[rr * KEY_BLOCK + j] * values[(kb + j) * kw + col + c];
        }
        s.acc[rr * d + c] += a;
      }
    }
  }
}
