package org.retroinfer.model.llama;

import org.retroinfer.model.tensor.Parallel;
import org.retroinfer.model.tensor.WeightMatrix;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.math.KvKernels;

/**
 * Token-by-token decoding over a {@link ContextCache}: each {@link #step} runs one token through the
 * model at the next position, appending its keys and values to the cache and attending through the
 * cache's method, and returns the logits of the following token.
 *
 * <p>Holds the activation buffers of one sequence; not thread-safe. Matrix-vector products run in
 * parallel over rows; attention runs in parallel over KV heads inside the cache.
 */
public final class Decoder {
  private final Llama model;
  private final LlamaConfig config;
  private final ContextCache cache;
  private final float[] x;
  private final float[] xn;
  private final float[] q;
  private final float[] k;
  private final float[] v;
  private final float[] att;
  private final float[] proj;
  private final float[] gate;
  private final float[] up;
  private final float[] logits;
  private final float[] cos;
  private final float[] sin;

  Decoder(Llama model, ContextCache cache) {
    if (!cache.shape().equals(model.attentionShape())) {
      throw new IllegalArgumentException("cache shape " + cache.shape()
          + " does not match the model's " + model.attentionShape());
    }
    this.model = model;
    this.config = model.config();
    this.cache = cache;
    x = new float[config.hiddenSize()];
    xn = new float[config.hiddenSize()];
    q = new float[config.queryWidth()];
    k = new float[config.kvWidth()];
    v = new float[config.kvWidth()];
    att = new float[config.queryWidth()];
    proj = new float[config.hiddenSize()];
    gate = new float[config.intermediateSize()];
    up = new float[config.intermediateSize()];
    logits = new float[config.vocabSize()];
    cos = new float[config.headDim() / 2];
    sin = new float[config.headDim() / 2];
  }

  public ContextCache cache() {
    return cache;
  }

  /** Position of the next token: the tokens already in the cache. */
  public int position() {
    return cache.length(0);
  }

  /**
   * Runs {@code token} at {@link #position()} and returns the logits of the next token. The array
   * is reused by the next step; copy it to keep it.
   */
  public float[] step(int token) {
    if (token < 0 || token >= config.vocabSize()) {
      throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, "
          + config.vocabSize() + ")");
    }
    int h = config.hiddenSize();
    int pos = position();
    model.weights().embedding().readRow(token, x, 0);
    model.rope().angles(pos, cos, sin, 0);
    for (int l = 0; l < config.layers(); l++) {
      LayerWeights w = model.weights().layers()[l];
      model.rmsNorm(x, 0, xn, 0, h, w.attentionNorm());
      matvec3(w.wq(), q, w.wk(), k, w.wv(), v);
      model.rope().rotate(q, 0, config.queryHeads(), cos, sin, 0);
      model.rope().rotate(k, 0, config.kvHeads(), cos, sin, 0);
      cache.append(l, k, v);
      cache.attend(l, q, att);
      w.wo().matvec(att, 0, proj, 0);
      KvKernels.axpy(1f, proj, 0, x, 0, h);
      model.rmsNorm(x, 0, xn, 0, h, w.mlpNorm());
      matvec2(w.gate(), gate, w.up(), up);
      Llama.swiglu(gate, up, gate.length);
      w.down().matvec(gate, 0, proj, 0);
      KvKernels.axpy(1f, proj, 0, x, 0, h);
    }
    model.rmsNorm(x, 0, xn, 0, h, model.weights().finalNorm());
    model.outputHead().matvec(xn, 0, logits, 0);
    return logits;
  }

  /** Three products of {@code xn} in one parallel region (one fork instead of three). */
  private void matvec3(WeightMatrix a, float[] ya, WeightMatrix b, float[] yb, WeightMatrix c,
      float[] yc) {
    int na = a.rows();
    int nb = b.rows();
    Parallel.forRange(na + nb + c.rows(), a.parallelGrain(), (from, to) -> {
      span(a, ya, from, to, 0);
      span(b, yb, from, to, na);
      span(c, yc, from, to, na + nb);
    });
  }

  private void matvec2(WeightMatrix a, float[] ya, WeightMatrix b, float[] yb) {
    int na = a.rows();
    Parallel.forRange(na + b.rows(), a.parallelGrain(), (from, to) -> {
      span(a, ya, from, to, 0);
      span(b, yb, from, to, na);
    });
  }

  /** The rows of {@code m} (numbered from {@code base} in the joint range) within [from, to). */
  private void span(WeightMatrix m, float[] y, int from, int to, int base) {
    int lo = Math.max(from - base, 0);
    int hi = Math.min(to - base, m.rows());
    if (lo < hi) {
      m.matvec(xn, 0, y, 0, lo, hi);
    }
  }
}
