package org.retroinfer.wave.attention;

/**
 * The KV cache of one context (all layers and KV heads), as a model sees it: per layer, append the
 * new token's keys and values, then attend with its queries.
 */
public interface ContextCache extends AutoCloseable {

  AttentionShape shape();

  /** The attention method behind this cache. */
  AttentionBackend backend();

  /** Tokens appended to layer {@code layer}. */
  int length(int layer);

  /**
   * Appends one token's keys and values for {@code layer}: {@code keys[kvHead * d + i]}, length
   * {@code kvHeads * headDim} each.
   */
  void append(int layer, float[] keys, float[] values);

  /**
   * Decode attention for {@code layer}: {@code queries} and {@code out} hold {@code queryHeads *
   * headDim} floats, query head {@code h} at {@code h * headDim}. Runs KV heads in parallel.
   */
  void attend(int layer, float[] queries, float[] out);

  /** Ends the prompt in every layer and head (builds the indexes, in parallel). */
  void endPrefill();

  /**
   * Like {@link #endPrefill()}, calling {@code progress.accept(done, total)} as (layer, KV head)
   * caches finish, from whichever thread finished one, for progress bars on long contexts.
   */
  default void endPrefill(java.util.function.BiConsumer<Integer, Integer> progress) {
    endPrefill();
    int total = shape().layers() * shape().kvHeads();
    progress.accept(total, total);
  }

  /** The cache of one (layer, KV head). */
  HeadCache head(int layer, int kvHead);

  /** Off-heap bytes held. */
  long memoryBytes();

  @Override
  void close();
}
