package org.retroinfer.app;

import java.io.IOException;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.IntStream;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.PrefixMatch;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.llama.PromptStates;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;

/**
 * Prompt-prefix caching across sessions for one model: {@link #prepare} turns a prompt into a wave
 * cache ready for decode, reusing the longest prefix that the store holds for this model and tenant
 * and prefilling only the rest; {@link #save} stores the prepared prompt for the next session.
 *
 * <ul>
 *   <li>The prompt is exactly a stored context whose logits were stored: the context is loaded as it
 *       was stored, and no model call is made before decoding (the same cache and logits as the
 *       session that stored it, so the same greedy tokens).
 *   <li>A stored prefix of {@code m} tokens matches: its K/V are loaded (whole wave segments with
 *       their clusters), the remaining {@code n - m} tokens (at least one: their logits are needed)
 *       are prefilled exactly over the stored K/V, and the index is completed by clustering the
 *       tail, which rebuilds the segment that the match cut.
 *   <li>Nothing matches: a normal prefill and index build.
 * </ul>
 */
public final class PromptCache {
  private final Llama model;
  private final ContextStore.Scope scope;
  private final WaveConfig config;

  public PromptCache(Llama model, ContextStore.Scope scope, WaveConfig config) {
    this.model = Objects.requireNonNull(model, "model");
    this.scope = Objects.requireNonNull(scope, "scope");
    this.config = Objects.requireNonNull(config, "config");
  }

  /**
   * A prompt made ready for decode.
   *
   * @param cache the wave cache of the whole prompt (the caller owns it)
   * @param logits the logits after the prompt's last token
   * @param reusedTokens tokens whose K/V came from the store
   * @param contextId the stored context that was reused, or null
   * @param findNanos time spent looking the prefix up
   * @param loadNanos time spent loading stored K/V
   * @param prefillNanos time spent prefilling the rest
   * @param indexNanos time spent building the index of the new part
   */
  public record Prepared(ContextCache cache, float[] logits, int reusedTokens, String contextId,
      long findNanos, long loadNanos, long prefillNanos, long indexNanos) {}

  /** Prepares {@code prompt} (see the class javadoc). {@code progress} may be null. */
  public Prepared prepare(int[] prompt, Llama.Progress progress) throws IOException {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("empty prompt; give at least one token");
    }
    long t0 = System.nanoTime();
    Optional<PrefixMatch> match = scope.find(prompt);
    long t1 = System.nanoTime();
    if (match.isEmpty()) {
      long p0 = System.nanoTime();
      PromptState state = new PromptState(model.attentionShape());
      model.prefill(state, prompt, null, progress);
      long p1 = System.nanoTime();
      ContextCache cache = model.newCache(new WaveAttention(config));
      state.copyInto(cache);
      cache.endPrefill();
      long p2 = System.nanoTime();
      return new Prepared(cache, state.lastLogits(), 0, null, t1 - t0, 0, p1 - p0, p2 - p1);
    }
    PrefixMatch m = match.get();
    boolean whole = m.exact() && m.context().hasLogits();
    int reuse = whole ? prompt.length : Math.min(m.matchedTokens(), prompt.length - 1);
    ReusedContext reused = scope.load(m.context().id(), prompt, reuse, !whole);
    long t2 = System.nanoTime();
    if (whole) {
      return new Prepared(reused.cache(), reused.logits(), reuse, m.context().id(), t1 - t0,
          t2 - t1, 0, 0);
    }
    ContextCache cache = reused.cache();
    try {
      PromptState state = positionOrder(cache, reuse);
      long p0 = System.nanoTime();
      model.prefill(state, Arrays.copyOfRange(prompt, reuse, prompt.length), null, progress);
      long p1 = System.nanoTime();
      appendRange(state, cache, reuse, prompt.length);
      cache.endPrefill();
      long p2 = System.nanoTime();
      return new Prepared(cache, state.lastLogits(), reuse, m.context().id(), t1 - t0, t2 - t1,
          p1 - p0, p2 - p1);
    } catch (RuntimeException e) {
      cache.close();
      throw e;
    }
  }

  /** Stores a prepared prompt (with its logits) for later sessions. */
  public ContextInfo save(String name, int[] prompt, Prepared prepared) throws IOException {
    return scope.put(name, "prompt", prompt, prepared.cache(), prepared.logits(), null);
  }

  /** The K/V of the first {@code tokens} tokens of a wave cache as a model's prompt state. */
  public static PromptState positionOrder(ContextCache cache, int tokens) {
    AttentionShape shape = cache.shape();
    int w = shape.kvWidth();
    int d = shape.headDim();
    float[][] keys = new float[shape.layers()][tokens * w];
    float[][] values = new float[shape.layers()][tokens * w];
    int kv = shape.kvHeads();
    IntStream.range(0, shape.layers() * kv).parallel().forEach(i -> {
      int l = i / kv;
      int h = i % kv;
      HeadLayout.of(cache.head(l, h)).read(0, tokens, keys[l], values[l], h * d, w);
    });
    return PromptStates.of(shape, tokens, keys, values);
  }

  /** Appends positions {@code [from, to)} of {@code state} to every head of {@code cache}. */
  public static void appendRange(PromptState state, ContextCache cache, int from, int to) {
    AttentionShape shape = cache.shape();
    int w = shape.kvWidth();
    int d = shape.headDim();
    int kv = shape.kvHeads();
    IntStream.range(0, shape.layers() * kv).parallel().forEach(i -> {
      int l = i / kv;
      int h = i % kv;
      HeadCache head = cache.head(l, h);
      float[] k = state.keys(l);
      float[] v = state.values(l);
      for (int p = from; p < to; p++) {
        head.append(k, p * w + h * d, v, p * w + h * d);
      }
    });
  }
}
