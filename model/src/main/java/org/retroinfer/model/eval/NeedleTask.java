package org.retroinfer.model.eval;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.retroinfer.model.tokenizer.ByteTokenizer;

/**
 * One needle-in-a-haystack prompt in the format the shipped model was trained on: a line
 * {@code # KEY_<word><n> = <5 digits>} inserted at a line start at a given depth of Python source,
 * and at the very end the question {@code # recall KEY_<word><n>: }; the model should continue with
 * the 5 digits.
 *
 * <p>The prompt is split in three: the <b>prefix</b> {@code [0, prefixLength)} is prefilled; the
 * <b>scored text</b> {@code [prefixLength, questionStart)} is the haystack's last lines, fed one token
 * at a time through the attention method under test and scored (bits per byte, top-1 agreement);
 * the <b>question</b> {@code [questionStart, length)} is fed the same way, then the answer is decoded
 * greedily.
 *
 * @param prompt token ids (bytes), exactly the requested context length
 * @param prefixLength tokens prefilled
 * @param questionStart index of the question's first token
 * @param needlePosition index of the needle line's first token
 * @param key the key name, e.g. {@code KEY_river42}
 * @param answer the 5 digits
 * @param depth requested needle depth in [0, 1]
 */
public record NeedleTask(int[] prompt, int prefixLength, int questionStart, int needlePosition,
    String key, String answer, double depth) {

  static final String[] WORDS = {"apple", "river", "stone", "cloud", "maple", "tiger", "ocean",
      "ember", "frost", "lemon", "cedar", "comet", "delta", "falcon", "garnet", "harbor", "iris",
      "jasper", "kite", "lunar", "meadow", "nectar", "orbit", "pepper", "quartz", "raven", "sable",
      "thistle", "umber", "velvet", "willow", "zephyr"};

  /**
   * The shortest context for which {@link #build} succeeds with every seed: the longest needle line
   * and question (the longest key) plus a haystack of at least 64 tokens and twice the scored ones.
   */
  public static int minimumContext(int scoredTokens) {
    int longestWord = Arrays.stream(WORDS).mapToInt(String::length).max().orElseThrow();
    String key = "KEY_" + "w".repeat(longestWord) + "99";
    int needle = ("# " + key + " = 12345\n").length();
    int question = ("# recall " + key + ": ").length();
    return needle + question + Math.max(64, 2 * scoredTokens);
  }

  /**
   * Builds a task of exactly {@code context} tokens.
   *
   * @param depth where the needle goes, as a fraction of the haystack (snapped to the next line)
   * @param scoredTokens haystack tokens at the end to feed token by token and score
   */
  public static NeedleTask build(PythonCorpus corpus, int context, double depth, int scoredTokens,
      long seed) {
    if (!(depth >= 0 && depth <= 1)) {
      throw new IllegalArgumentException("needle depth must be in [0, 1], got " + depth);
    }
    SplittableRandom random = new SplittableRandom(seed);
    String key = "KEY_" + WORDS[random.nextInt(WORDS.length)] + random.nextInt(100);
    String answer = Integer.toString(10000 + random.nextInt(90000));
    byte[] needle = ("# " + key + " = " + answer + "\n").getBytes(StandardCharsets.US_ASCII);
    byte[] question = ("# recall " + key + ": ").getBytes(StandardCharsets.US_ASCII);
    int haystack = context - needle.length - question.length;
    if (haystack < 64 || scoredTokens < 0 || scoredTokens > haystack / 2) {
      throw new IllegalArgumentException("context " + context + " is too short for a needle task"
          + " with " + scoredTokens + " scored tokens; use at least " + (needle.length
          + question.length + Math.max(64, 2 * scoredTokens)) + " tokens");
    }
    byte[] text = corpus.text(haystack, random);
    text[haystack - 1] = '\n'; // the question starts a line
    // the needle starts a line: after the first newline at or after the requested depth, but
    // before the scored text
    int limit = haystack - scoredTokens;
    int at = Math.max(1, (int) Math.round(depth * limit));
    while (at < limit && !lineStart(text, at)) {
      at++;
    }
    at = Math.min(at, limit);
    while (at > 1 && !lineStart(text, at)) {
      at--; // no line starts before the scored text: take the previous one
    }
    byte[] all = new byte[context];
    System.arraycopy(text, 0, all, 0, at);
    System.arraycopy(needle, 0, all, at, needle.length);
    System.arraycopy(text, at, all, at + needle.length, haystack - at);
    System.arraycopy(question, 0, all, context - question.length, question.length);
    if (all[0] != ByteTokenizer.DOCUMENT_START) {
      throw new IllegalStateException("haystack does not start a document");
    }
    int[] prompt = new ByteTokenizer().encode(all);
    int questionStart = context - question.length;
    return new NeedleTask(prompt, questionStart - scoredTokens, questionStart, at, key, answer,
        depth);
  }

  /** Whether a line starts at {@code at}: after a newline or a document start. */
  private static boolean lineStart(byte[] text, int at) {
    return text[at - 1] == '\n' || text[at - 1] == ByteTokenizer.DOCUMENT_START;
  }

  /** Tokens in the prompt. */
  public int length() {
    return prompt.length;
  }

  /** The prefilled tokens. */
  public int[] prefix() {
    return Arrays.copyOf(prompt, prefixLength);
  }

  /** Tokens that answer: the 5 digits. */
  public int[] answerTokens() {
    return new ByteTokenizer().encode(answer);
  }

  /**
   * This task as a {@link RecallPrompt}: the prompt with the answer after it, one recall grouped by
   * the requested depth ("30%").
   */
  public RecallPrompt recallPrompt() {
    int[] answerTokens = answerTokens();
    int[] all = Arrays.copyOf(prompt, prompt.length + answerTokens.length);
    System.arraycopy(answerTokens, 0, all, prompt.length, answerTokens.length);
    return new RecallPrompt(all, prefixLength, questionStart, java.util.List.of(
        new RecallPrompt.Recall(key, answer, needlePosition, prompt.length,
            Math.round(depth * 100) + "%")));
  }

  /** The needle's depth as it ended up: needle position / haystack length. */
  public double actualDepth() {
    return (double) needlePosition / (prompt.length - (prompt.length - questionStart));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NeedleTask t && Arrays.equals(prompt, t.prompt) && prefixLength == t.prefixLength
        && questionStart == t.questionStart;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(prompt);
  }

  @Override
  public String toString() {
    return "NeedleTask[" + prompt.length + " tokens, " + key + " = " + answer + " at " + needlePosition
        + "]";
  }
}
