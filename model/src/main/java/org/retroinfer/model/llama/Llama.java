package org.retroinfer.model.llama;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.safetensors.SafeTensors;
import org.retroinfer.model.tensor.Parallel;
import org.retroinfer.model.tensor.WeightMatrix;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.math.KvKernels;

/**
 * A Llama-family causal language model: token embedding, {@code layers} x (RMSNorm, grouped-query
 * attention with rotary embeddings, residual, RMSNorm, SwiGLU MLP, residual), final RMSNorm, output
 * head.
 *
 * <p>Two ways through the network:
 * <ul>
 *   <li>{@link #prefill}: a prompt in chunks of {@link #PREFILL_CHUNK} tokens, matrix-matrix products
 *       and exact blocked causal attention ({@link CausalAttention}) in float32; the keys and values
 *       land in a {@link PromptState}, which can fill the cache of any attention method.</li>
 *   <li>{@link #decoder}: one token at a time, attention through a wave-core {@link ContextCache}
 *       (full, wave, Quest, StreamingLLM...): per layer the new token's K/V are appended, then its
 *       queries attend.</li>
 * </ul>
 *
 * <p>Immutable after loading and thread-safe: any number of prefills and decoders may run at once,
 * each with its own state. Closing unmaps the weights.
 */
public final class Llama implements AutoCloseable {
  /** Prompt tokens per prefill step: large enough that weight tiles are reused across many rows. */
  public static final int PREFILL_CHUNK = 256;

  static {
    org.retroinfer.wave.math.VectorMath.link(); // swiglu's EXP linked whatever the user's locale
  }

  private final LlamaConfig config;
  private final LlamaWeights weights;
  private final SafeTensors file;
  private final Rope rope;
  private final CausalAttention causal;

  public Llama(LlamaConfig config, LlamaWeights weights, SafeTensors file) {
    this.config = Objects.requireNonNull(config);
    this.weights = Objects.requireNonNull(weights);
    this.file = file;
    this.rope = new Rope(config.headDim(), config.ropeTheta());
    this.causal = new CausalAttention(config.attentionShape());
  }

  /**
   * Loads a checkpoint directory: checks the SHA-256 sums listed in its {@code SHA256SUMS} (if
   * any), reads {@code config.json}, maps {@code model.safetensors} and binds every tensor.
   */
  public static Llama load(Path directory) throws IOException {
    return load(ModelDirectory.of(directory));
  }

  /** Loads a verified checkpoint directory. */
  public static Llama load(ModelDirectory dir) throws IOException {
    dir.verify();
    LlamaConfig config = LlamaConfig.read(dir.config());
    SafeTensors st = SafeTensors.open(dir.weights());
    try {
      return new Llama(config, LlamaWeights.bind(st, config), st);
    } catch (RuntimeException e) {
      st.close();
      throw e;
    }
  }

  public LlamaConfig config() {
    return config;
  }

  public LlamaWeights weights() {
    return weights;
  }

  public AttentionShape attentionShape() {
    return config.attentionShape();
  }

  /** An empty KV cache of this model's shape for {@code backend}. */
  public ContextCache newCache(AttentionBackend backend) {
    return backend.newContext(attentionShape());
  }

  /** A decode loop over {@code cache}, which may already hold a prompt. */
  public Decoder decoder(ContextCache cache) {
    return new Decoder(this, cache);
  }

  /** Receives the logits of prompt positions during a prefill. */
  @FunctionalInterface
  public interface LogitsSink {
    /** {@code logits[off .. off + vocab)} predict the token after position {@code position}. */
    void accept(int position, float[] logits, int off);
  }

  /** Receives prefill progress after each chunk. */
  @FunctionalInterface
  public interface Progress {
    void update(int done, int total);
  }

  /** Prefills {@code tokens} from scratch. */
  public PromptState prefill(int[] tokens) {
    PromptState state = new PromptState(attentionShape());
    prefill(state, tokens, null, null);
    return state;
  }

  /**
   * Runs {@code tokens} through the model after whatever {@code state} already holds, appending their
   * K/V to it and setting its last logits.
   *
   * @param sink if not null, receives the logits of every position (costs an output-head product per
   *     token); otherwise only the last position's are computed
   * @param progress if not null, told after each chunk
   */
  public void prefill(PromptState state, int[] tokens, LogitsSink sink, Progress progress) {
    if (tokens.length == 0) {
      throw new IllegalArgumentException("prefill of an empty prompt; give at least one token");
    }
    checkTokens(tokens);
    int start = state.length();
    state.reserve(start + tokens.length);
    int h = config.hiddenSize();
    int qw = config.queryWidth();
    int kw = config.kvWidth();
    int im = config.intermediateSize();
    int vocab = config.vocabSize();
    int chunk = Math.min(PREFILL_CHUNK, tokens.length);
    float[] x = new float[chunk * h];
    float[] xn = new float[chunk * h];
    float[] q = new float[chunk * qw];
    float[] k = new float[chunk * kw];
    float[] v = new float[chunk * kw];
    float[] att = new float[chunk * qw];
    float[] proj = new float[chunk * h];
    float[] gate = new float[chunk * im];
    float[] up = new float[chunk * im];
    float[] cos = new float[chunk * rope.pairs()];
    float[] sin = new float[chunk * rope.pairs()];
    float[] logits = null;
    for (int c0 = 0; c0 < tokens.length; c0 += chunk) {
      int n = Math.min(chunk, tokens.length - c0);
      int pos0 = start + c0;
      for (int t = 0; t < n; t++) {
        weights.embedding().readRow(tokens[c0 + t], x, t * h);
        rope.angles(pos0 + t, cos, sin, t * rope.pairs());
      }
      for (int l = 0; l < config.layers(); l++) {
        LayerWeights w = weights.layers()[l];
        rmsNormRows(x, xn, n, w.attentionNorm());
        w.wq().matmul(xn, n, q, qw);
        w.wk().matmul(xn, n, k, kw);
        w.wv().matmul(xn, n, v, kw);
        for (int t = 0; t < n; t++) {
          rope.rotate(q, t * qw, config.queryHeads(), cos, sin, t * rope.pairs());
          rope.rotate(k, t * kw, config.kvHeads(), cos, sin, t * rope.pairs());
        }
        state.put(l, pos0, k, v, n);
        causal.attend(q, n, pos0, state.keys(l), state.values(l), att);
        w.wo().matmul(att, n, proj, h);
        KvKernels.axpy(1f, proj, 0, x, 0, n * h);
        rmsNormRows(x, xn, n, w.mlpNorm());
        w.gate().matmul(xn, n, gate, im);
        w.up().matmul(xn, n, up, im);
        swiglu(gate, up, n * im);
        w.down().matmul(gate, n, proj, h);
        KvKernels.axpy(1f, proj, 0, x, 0, n * h);
      }
      boolean last = c0 + n == tokens.length;
      if (sink != null) {
        rmsNormRows(x, xn, n, weights.finalNorm());
        float[] all = new float[n * vocab];
        weights.outputHead().matmul(xn, n, all, vocab);
        for (int t = 0; t < n; t++) {
          sink.accept(pos0 + t, all, t * vocab);
        }
        if (last) {
          logits = java.util.Arrays.copyOfRange(all, (n - 1) * vocab, n * vocab);
        }
      } else if (last) {
        logits = new float[vocab];
        rmsNorm(x, (n - 1) * h, xn, 0, h, weights.finalNorm());
        weights.outputHead().matvec(xn, 0, logits, 0);
      }
      if (progress != null) {
        progress.update(c0 + n, tokens.length);
      }
    }
    state.commit(start + tokens.length, logits);
  }

  void checkTokens(int[] tokens) {
    for (int i = 0; i < tokens.length; i++) {
      if (tokens[i] < 0 || tokens[i] >= config.vocabSize()) {
        throw new IllegalArgumentException("token " + tokens[i] + " at index " + i
            + " is outside the vocabulary [0, " + config.vocabSize() + ")");
      }
    }
  }

  Rope rope() {
    return rope;
  }

  void rmsNormRows(float[] x, float[] out, int n, float[] weight) {
    int h = config.hiddenSize();
    Parallel.forRange(n, 16, (from, to) -> {
      for (int t = from; t < to; t++) {
        rmsNorm(x, t * h, out, t * h, h, weight);
      }
    });
  }

  /** out = x / sqrt(mean(x^2) + eps) * weight, as Hugging Face Llama (float32). */
  void rmsNorm(float[] x, int xOff, float[] out, int outOff, int n, float[] weight) {
    float ss = KvKernels.dot(x, xOff, x, xOff, n) / n;
    float inv = (float) (1.0 / Math.sqrt(ss + (float) config.rmsNormEps()));
    for (int i = 0; i < n; i++) {
      out[outOff + i] = weight[i] * (x[xOff + i] * inv);
    }
  }

  /** gate[i] = silu(gate[i]) * up[i], where silu(g) = g / (1 + e^-g). */
  static void swiglu(float[] gate, float[] up, int n) {
    var species = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
    int i = 0;
    for (int end = species.loopBound(n); i < end; i += species.length()) {
      var g = jdk.incubator.vector.FloatVector.fromArray(species, gate, i);
      var e = g.neg().lanewise(jdk.incubator.vector.VectorOperators.EXP);
      g.div(e.add(1f)).mul(jdk.incubator.vector.FloatVector.fromArray(species, up, i))
          .intoArray(gate, i);
    }
    for (; i < n; i++) {
      float g = gate[i];
      gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
    }
  }

  WeightMatrix outputHead() {
    return weights.outputHead();
  }

  @Override
  public void close() {
    if (file != null) {
      file.close();
    }
  }
}
