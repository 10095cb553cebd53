package org.retroinfer.wave.attention;

/**
 * The KV cache of one (layer, KV head), together with whatever index an attention method keeps over
 * it, answering decode-time attention for the query group that shares this KV head.
 *
 * <p>Life cycle: {@link #append} the prompt's tokens (prefill), {@link #endPrefill()} once (the
 * wave index is built here), then alternate {@link #append} (the new token) and {@link #attend}.
 * A cache is used by one thread at a time; different heads may be used by different threads.
 */
public interface HeadCache extends AutoCloseable {

  /** Head dim d. */
  int headDim();

  /** Query heads g that attend through this KV head. */
  int groupSize();

  /** Tokens appended so far. */
  int size();

  /**
   * Appends one token's key {@code key[keyOff .. keyOff + d)} and value. Keys are post-RoPE, as the
   * model caches them. Non-finite components are rejected.
   */
  void append(float[] key, int keyOff, float[] value, int valueOff);

  /**
   * Whether the next {@link #append} will do more than store the token, e.g. cluster a segment of
   * a wave index: a caller holding several heads may then run their appends in parallel.
   */
  default boolean nextAppendIsHeavy() {
    return false;
  }

  /** Marks the end of the prompt: builds the index over what was appended. Idempotent. */
  void endPrefill();

  /**
   * Attention of the group's {@code g} queries {@code queries[qOff .. qOff + g * d)} (head-major)
   * over every token appended so far, written to {@code out[outOff .. outOff + g * d)}. Logits are
   * scaled by 1 / sqrt(d).
   */
  void attend(float[] queries, int qOff, float[] out, int outOff);

  /** Tokens whose keys and values the last {@link #attend} read exactly. */
  int lastExactTokens();

  /** Off-heap bytes held by this cache. */
  long memoryBytes();

  @Override
  void close();
}
