package org.retroinfer.wave.attention;

/**
 * The attention geometry of a model: layers, query heads, KV heads (grouped-query attention:
 * {@code queryHeads / kvHeads} query heads share a KV head) and head dim. Query head {@code h} reads
 * KV head {@code h / groupSize()}, as in Hugging Face Llama.
 */
public record AttentionShape(int layers, int queryHeads, int kvHeads, int headDim) {

  public AttentionShape {
    if (layers <= 0 || queryHeads <= 0 || kvHeads <= 0 || headDim <= 0) {
      throw new IllegalArgumentException("layers, query heads, KV heads and head dim must be positive,"
          + " got " + layers + ", " + queryHeads + ", " + kvHeads + ", " + headDim);
    }
    if (queryHeads % kvHeads != 0) {
      throw new IllegalArgumentException("query heads (" + queryHeads
          + ") must be a multiple of KV heads (" + kvHeads + ")");
    }
  }

  /** Query heads per KV head. */
  public int groupSize() {
    return queryHeads / kvHeads;
  }

  /** Floats of one token's keys (or values) for one layer: kvHeads * headDim. */
  public int kvWidth() {
    return kvHeads * headDim;
  }

  /** Floats of one token's queries for one layer: queryHeads * headDim. */
  public int queryWidth() {
    return queryHeads * headDim;
  }

  /** The softmax scale 1 / sqrt(headDim). */
  public float scale() {
    return (float) (1.0 / Math.sqrt(headDim));
  }
}
