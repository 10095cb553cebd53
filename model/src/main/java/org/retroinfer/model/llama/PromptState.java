package org.retroinfer.model.llama;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;

/**
 * What a prefill leaves behind: every prompt token's keys (post-RoPE) and values per layer, in
 * float32 and position order, and the logits after the last token (the distribution of the first
 * generated token).
 *
 * <p>It is independent of any attention method: {@link #copyInto} fills a fresh cache of any
 * backend with the same K/V, so that methods are compared on one prefill instead of re-running it
 * per method. A prefill may also continue from an existing state (a longer prompt that extends it).
 * Not thread-safe.
 */
public final class PromptState {
  private final AttentionShape shape;
  private final float[][] keys;
  private final float[][] values;
  private int length;
  private float[] lastLogits;

  public PromptState(AttentionShape shape) {
    this.shape = shape;
    this.keys = new float[shape.layers()][0];
    this.values = new float[shape.layers()][0];
  }

  public AttentionShape shape() {
    return shape;
  }

  /** Prompt tokens so far. */
  public int length() {
    return length;
  }

  /** Logits after the last prompt token (null before the first prefill). A copy. */
  public float[] lastLogits() {
    return lastLogits == null ? null : lastLogits.clone();
  }

  /**
   * Keys of {@code layer}: row {@code p} (a position) at {@code p * kvWidth}, KV head {@code h} at
   * {@code + h * headDim}; rows beyond {@link #length()} are unspecified. The live array (read only).
   */
  public float[] keys(int layer) {
    return keys[layer];
  }

  /** Values of {@code layer}, laid out like {@link #keys}. The live array (read only). */
  public float[] values(int layer) {
    return values[layer];
  }

  /** Heap bytes of the stored K/V. */
  public long bytes() {
    return 2L * shape.layers() * keys[0].length * Float.BYTES;
  }

  /** Makes room for {@code tokens} tokens in every layer. */
  void reserve(int tokens) {
    long need = (long) tokens * shape.kvWidth();
    if (need > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(tokens + " tokens of " + shape.kvWidth()
          + " floats exceed a Java array; use a shorter prompt");
    }
    if (keys[0].length >= need) {
      return;
    }
    int cap = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(need, keys[0].length * 3L / 2));
    for (int l = 0; l < shape.layers(); l++) {
      keys[l] = Arrays.copyOf(keys[l], cap);
      values[l] = Arrays.copyOf(values[l], cap);
    }
  }

  /** Writes {@code rows} tokens' K/V of {@code layer} at positions {@code [pos, pos + rows)}. */
  void put(int layer, int pos, float[] k, float[] v, int rows) {
    int w = shape.kvWidth();
    System.arraycopy(k, 0, keys[layer], pos * w, rows * w);
    System.arraycopy(v, 0, values[layer], pos * w, rows * w);
  }

  /** Ends a prefill step: {@code length} tokens are now complete in every layer. */
  void commit(int length, float[] lastLogits) {
    this.length = length;
    this.lastLogits = lastLogits;
  }

  /**
   * Appends all prompt tokens, in order, to an empty {@code cache} of the same shape (any backend;
   * keys and values are rounded to its K/V type). Does not call {@link ContextCache#endPrefill()}:
   * the caller does, to time the index build on its own. Heads are filled in parallel.
   */
  public void copyInto(ContextCache cache) {
    if (!cache.shape().equals(shape)) {
      throw new IllegalArgumentException("cache shape " + cache.shape() + " does not match the prompt's "
          + shape);
    }
    for (int l = 0; l < shape.layers(); l++) {
      if (cache.length(l) != 0) {
        throw new IllegalStateException("cache layer " + l + " already holds " + cache.length(l)
            + " tokens; copy a prompt into a fresh cache");
      }
    }
    int kv = shape.kvHeads();
    int w = shape.kvWidth();
    int d = shape.headDim();
    IntStream.range(0, shape.layers() * kv).parallel().forEach(i -> {
      int l = i / kv;
      int h = i % kv;
      HeadCache head = cache.head(l, h);
      float[] k = keys[l];
      float[] v = values[l];
      for (int p = 0; p < length; p++) {
        head.append(k, p * w + h * d, v, p * w + h * d);
      }
    });
  }
}
