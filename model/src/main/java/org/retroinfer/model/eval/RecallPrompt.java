package org.retroinfer.model.eval;

import java.util.Arrays;
import java.util.List;

/**
 * What an evaluation feeds a model and what it expects back: the whole token sequence, answers
 * included, split in three. The <b>prefix</b> {@code [0, prefixLength)} is prefilled; the <b>scored
 * text</b> {@code [prefixLength, scoredEnd)} is fed one token at a time through the attention method
 * under test and scored (bits per byte, top-1 agreement); the rest is fed the same way, except that
 * at every {@link Recall}'s answer the method decodes greedily and its own digits are fed on.
 *
 * @param tokens every token, answers included
 * @param prefixLength tokens prefilled
 * @param scoredEnd end of the scored text
 * @param recalls the answers asked for, in order
 */
public record RecallPrompt(int[] tokens, int prefixLength, int scoredEnd, List<Recall> recalls) {

  /**
   * One key asked for.
   *
   * @param key the key name, e.g. {@code KEY_river42}
   * @param answer the digits that answer it
   * @param keyPosition index of the first token of the key's line
   * @param answerStart index of the answer's first token
   * @param group what the report groups recall by: the needle depth ("30%"), or where the key
   *     entered the cache ("prefilled", "decoded")
   */
  public record Recall(String key, String answer, int keyPosition, int answerStart, String group) {
    /** Index just after the answer. */
    public int answerEnd() {
      return answerStart + answer.length();
    }
  }

  public RecallPrompt {
    if (prefixLength < 1 || prefixLength > scoredEnd || scoredEnd > tokens.length) {
      throw new IllegalArgumentException("prefix " + prefixLength + " and scored end " + scoredEnd
          + " do not fit " + tokens.length + " tokens");
    }
    int last = scoredEnd;
    for (Recall r : recalls) {
      if (r.answerStart() < last || r.answerEnd() > tokens.length) {
        throw new IllegalArgumentException("answer of " + r.key() + " at " + r.answerStart()
            + " is not after the scored text and the previous answer");
      }
      last = r.answerEnd();
    }
    recalls = List.copyOf(recalls);
  }

  /** The prefilled tokens. */
  public int[] prefix() {
    return Arrays.copyOf(tokens, prefixLength);
  }

  /** Tokens in the whole prompt, answers included. */
  public int length() {
    return tokens.length;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RecallPrompt p && Arrays.equals(tokens, p.tokens)
        && prefixLength == p.prefixLength && scoredEnd == p.scoredEnd && recalls.equals(p.recalls);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(tokens);
  }
}
