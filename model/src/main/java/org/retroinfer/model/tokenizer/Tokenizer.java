package org.retroinfer.model.tokenizer;

/**
 * Text to token ids and back. The shipped model uses {@link ByteTokenizer}; a BPE tokenizer for
 * larger Llama checkpoints implements the same interface.
 */
public interface Tokenizer {

  /** Number of token ids: every id is in {@code [0, vocabSize())}. */
  int vocabSize();

  /** The id that starts a document, or -1 if there is none. */
  int documentStart();

  /** The ids of {@code text} (no document start is added). */
  int[] encode(String text);

  /** The text of {@code ids[from .. to)}; ids that do not form valid text decode to U+FFFD. */
  String decode(int[] ids, int from, int to);

  /** The text of all {@code ids}. */
  default String decode(int[] ids) {
    return decode(ids, 0, ids.length);
  }
}
