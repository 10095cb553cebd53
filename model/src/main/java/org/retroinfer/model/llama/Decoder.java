package org.retroinfer.model.llama;

import org.retroinfer.model.tensor.WeightMatrix;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.concurrent.WorkTeam;
import org.retroinfer.wave.math.KvKernels;

/**
 * Token-by-token decoding over a {@link ContextCache}: each {@link #step} runs one token through the
 * model at the next position, appending its keys and values to the cache and attending through the
 * cache's method, and returns the logits of the following token.
 *
 * <p>Holds the activation buffers of one sequence; not thread-safe. Matrix-vector products run in
 * parallel on the shared {@link WorkTeam} (see {@link #product}); attention runs in parallel over
 * KV heads inside the cache, on the same team.
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
  private long attentionNanos;

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

  /**
   * Wall time spent in the cache (append and attend, all layers) over all steps so far: the share
   * of a decode step that the attention method decides.
   */
  public long attentionNanos() {
    return attentionNanos;
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
      products(w.wq(), q, w.wk(), k, w.wv(), v, xn);
      model.rope().rotate(q, 0, config.queryHeads(), cos, sin, 0);
      model.rope().rotate(k, 0, config.kvHeads(), cos, sin, 0);
      long t0 = System.nanoTime();
      cache.append(l, k, v);
      cache.attend(l, q, att);
      attentionNanos += System.nanoTime() - t0;
      product(w.wo(), att, proj);
      KvKernels.axpy(1f, proj, 0, x, 0, h);
      model.rmsNorm(x, 0, xn, 0, h, w.mlpNorm());
      products(w.gate(), gate, w.up(), up, null, null, xn);
      Llama.swiglu(gate, up, gate.length);
      product(w.down(), gate, proj);
      KvKernels.axpy(1f, proj, 0, x, 0, h);
    }
    model.rmsNorm(x, 0, xn, 0, h, model.weights().finalNorm());
    product(model.outputHead(), xn, logits);
    return logits;
  }

  /**
   * One matrix-vector product, split over the {@link WorkTeam} in chunks of whole groups of four
   * rows. A decode step's products are small (at most 0.8M multiply-adds each, about 50 per step):
   * through the fork-join pool their hand-offs cost more than the second core gave (measured:
   * 1.6-1.9 ms per step vs 0.9-1.1 ms on one thread), while the team's helpers are already
   * spinning when a product starts.
   */
  private static void product(WeightMatrix m, float[] x, float[] y) {
    int rows = m.rows();
    int groups = rows / 4;
    long macs = (long) rows * m.cols();
    int chunks = (int) Math.min(2L * TEAM.threads(), Math.max(1, macs / MIN_CHUNK_MACS));
    if (groups == 0) {
      m.matvec(x, 0, y, 0, 0, rows);
    } else {
      TEAM.forRange(groups, chunks, (from, to) -> rowsOf(m, x, y, groups, from, to));
    }
  }

  /**
   * Up to three products of the same input in one parallel region: {@code ya = a x},
   * {@code yb = b x}, {@code yc = c x} ({@code c} may be null), chunks over all their groups of
   * four rows. One region instead of three saves two hand-offs and two tails of uneven chunks
   * (measured with StreamingLLM, whose attention is cheapest: the rest of a step went from
   * 1.02-1.11 ms to 0.76-0.92 ms in three alternating runs).
   */
  private static void products(WeightMatrix a, float[] ya, WeightMatrix b, float[] yb,
      WeightMatrix c, float[] yc, float[] x) {
    int ga = a.rows() / 4;
    int gb = b.rows() / 4;
    int gc = c == null ? 0 : c.rows() / 4;
    if (ga == 0 || gb == 0 || (c != null && gc == 0)) {
      product(a, x, ya);
      product(b, x, yb);
      if (c != null) {
        product(c, x, yc);
      }
      return;
    }
    int groups = ga + gb + gc;
    long macs = (long) a.rows() * a.cols() + (long) b.rows() * b.cols()
        + (c == null ? 0 : (long) c.rows() * c.cols());
    int chunks = (int) Math.min(4L * TEAM.threads(), Math.max(1, macs / MIN_CHUNK_MACS));
    TEAM.forRange(groups, chunks, (from, to) -> {
      rowsOf(a, x, ya, ga, from, to);
      rowsOf(b, x, yb, gb, from - ga, to - ga);
      if (c != null) {
        rowsOf(c, x, yc, gc, from - ga - gb, to - ga - gb);
      }
    });
  }

  /**
   * Rows of groups {@code [from, to)} of {@code m}, clipped to its {@code groups}; the last group
   * takes the rows past the last multiple of four.
   */
  private static void rowsOf(WeightMatrix m, float[] x, float[] y, int groups, int from, int to) {
    int f = Math.max(0, from);
    int t = Math.min(groups, to);
    if (f < t) {
      m.matvec(x, 0, y, 0, 4 * f, t == groups ? m.rows() : 4 * t);
    }
  }

  private static final WorkTeam TEAM = WorkTeam.shared();
  /** Multiply-adds below which a chunk is not worth a hand-off. */
  private static final long MIN_CHUNK_MACS = 16_384;
}
