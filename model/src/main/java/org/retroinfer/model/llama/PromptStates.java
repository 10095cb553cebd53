package org.retroinfer.model.llama;

import org.retroinfer.wave.attention.AttentionShape;

/**
 * Builds a {@link PromptState} from keys and values that were computed earlier (loaded from a store,
 * or composed from stored documents), so that {@link Llama#prefill(PromptState, int[],
 * Llama.LogitsSink, Llama.Progress)} continues after them without recomputing them.
 *
 * <p>Added by kv-store (prompt-prefix caching): the remainder of a prompt whose prefix was found in
 * the store is prefilled exactly, over the stored prefix, with the blocked causal attention of a
 * normal prefill.
 */
public final class PromptStates {
  private PromptStates() {}

  /**
   * A state of {@code length} tokens whose keys and values of layer {@code l} are
   * {@code keys[l]} / {@code values[l]}, laid out as {@link PromptState#keys(int)} (row {@code p} at
   * {@code p * kvWidth}, at least {@code length} rows). The arrays are copied. The state has no
   * logits until the next prefill step.
   */
  public static PromptState of(AttentionShape shape, int length, float[][] keys, float[][] values) {
    if (length < 0) {
      throw new IllegalArgumentException("prompt length must be >= 0, got " + length);
    }
    if (keys.length != shape.layers() || values.length != shape.layers()) {
      throw new IllegalArgumentException(keys.length + " layers of keys and " + values.length
          + " layers of values for a shape of " + shape.layers() + " layers");
    }
    int w = shape.kvWidth();
    long need = (long) length * w;
    PromptState state = new PromptState(shape);
    state.reserve(Math.max(1, length));
    for (int l = 0; l < shape.layers(); l++) {
      if (keys[l].length < need || values[l].length < need) {
        throw new IllegalArgumentException("layer " + l + ": " + keys[l].length + " key floats and "
            + values[l].length + " value floats, expected at least " + length + " tokens x "
            + w + " = " + need);
      }
      state.put(l, 0, keys[l], values[l], length);
    }
    state.commit(length, null);
    return state;
  }
}
