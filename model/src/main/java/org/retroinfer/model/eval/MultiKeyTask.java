package org.retroinfer.model.eval;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import org.retroinfer.model.tokenizer.ByteTokenizer;

/**
 * A harder recall task than {@link NeedleTask}: four keys in one haystack, two pairs of them with
 * near-identical names ({@code KEY_river42} and {@code KEY_river47}); one key of each pair lies in
 * the prefilled part and the other in the last {@code decodedTokens} tokens of the haystack, which
 * are fed through the decoder so that the wave index grows by a decode-time segment around them.
 * Then all four are asked for, one after the other, in a random order: {@code # recall KEY_x: }
 * followed by the method's own answer and a newline.
 *
 * <p>With the defaults (W = 64, U = 1,024) 1,400 decoded tokens put both decoded keys into the first
 * decode-time segment: they are placed in the first half of the decoded text.
 */
public final class MultiKeyTask {
  /** Keys per prompt. */
  public static final int KEYS = 4;
  /** The fewest decoded tokens a prompt takes. */
  public static final int MIN_DECODED = 256;
  /** The most bytes a key line and its recall take: names of up to 16 bytes, 5 digits. */
  private static final int MAX_KEY_BYTES = ("# KEY_" + "x".repeat(10) + " = 12345\n").length()
      + ("# recall KEY_" + "x".repeat(10) + ": 12345\n").length();

  /** The shortest context that holds a prompt with {@code decodedTokens} decoded tokens. */
  public static int minimumContext(int decodedTokens) {
    return 2 * Math.max(MIN_DECODED, decodedTokens) + KEYS * MAX_KEY_BYTES;
  }

  private MultiKeyTask() {}

  /**
   * Builds a prompt of exactly {@code context} tokens, recalls included.
   *
   * @param decodedTokens haystack tokens at the end fed token by token (and scored)
   */
  public static RecallPrompt build(PythonCorpus corpus, int context, int decodedTokens, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    String[] names = new String[KEYS];
    String[] values = new String[KEYS];
    for (int pair = 0; pair < 2; pair++) {
      String word = NeedleTask.WORDS[random.nextInt(NeedleTask.WORDS.length)];
      int n = random.nextInt(10, 90);
      names[2 * pair] = "KEY_" + word + n; // prefilled
      names[2 * pair + 1] = "KEY_" + word + (n + 1 + random.nextInt(9)); // decoded, one digit apart
    }
    if (names[0].equals(names[2]) || names[1].equals(names[3])) { // same word and number twice
      names[2] = names[2] + "x";
      names[3] = names[3] + "x";
    }
    for (int i = 0; i < KEYS; i++) {
      values[i] = Integer.toString(10000 + random.nextInt(90000));
    }
    int[] order = {0, 1, 2, 3};
    for (int i = KEYS - 1; i > 0; i--) { // recall order: shuffled
      int j = random.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    int keyBytes = 0;
    int recallBytes = 0;
    for (int i = 0; i < KEYS; i++) {
      keyBytes += keyLine(names[i], values[i]).length;
      recallBytes += question(names[i]).length + values[i].length() + 1;
    }
    int haystack = context - keyBytes - recallBytes;
    if (decodedTokens < MIN_DECODED || haystack < 2 * decodedTokens) {
      throw new IllegalArgumentException("a multi-key prompt of " + context + " tokens cannot hold "
          + decodedTokens + " decoded tokens; give at least 256 decoded tokens and a context of at"
          + " least " + (2 * Math.max(256, decodedTokens) + keyBytes + recallBytes) + " tokens");
    }
    byte[] text = corpus.text(haystack, random);
    text[haystack - 1] = '\n'; // the first question starts a line
    int decodedFrom = haystack - decodedTokens; // in haystack bytes, before keys are inserted
    int[] at = new int[KEYS];
    for (int pair = 0; pair < 2; pair++) {
      at[2 * pair] = lineStart(text, (int) (decodedFrom * (0.1 + 0.8 * random.nextDouble())),
          decodedFrom);
      at[2 * pair + 1] = lineStart(text,
          decodedFrom + 16 + random.nextInt(Math.max(1, decodedTokens / 2)), haystack - 1);
    }
    Integer[] byPosition = {0, 1, 2, 3};
    Arrays.sort(byPosition, Comparator.comparingInt((Integer i) -> at[i]).thenComparingInt(i -> i));
    ByteArrayOutputStream out = new ByteArrayOutputStream(context);
    int[] keyPosition = new int[KEYS];
    int prefixLength = -1;
    int from = 0;
    for (int i : byPosition) {
      if (prefixLength < 0 && at[i] >= decodedFrom) {
        out.write(text, from, decodedFrom - from);
        prefixLength = out.size();
        from = decodedFrom;
      }
      out.write(text, from, at[i] - from);
      keyPosition[i] = out.size();
      out.writeBytes(keyLine(names[i], values[i]));
      from = at[i];
    }
    if (prefixLength < 0) { // every key landed in the prefilled part
      out.write(text, from, decodedFrom - from);
      prefixLength = out.size();
      from = decodedFrom;
    }
    out.write(text, from, haystack - from);
    int scoredEnd = out.size();
    List<RecallPrompt.Recall> recalls = new ArrayList<>();
    for (int i : order) {
      out.writeBytes(question(names[i]));
      recalls.add(new RecallPrompt.Recall(names[i], values[i], keyPosition[i], out.size(),
          keyPosition[i] >= prefixLength ? "decoded" : "prefilled"));
      out.writeBytes((values[i] + "\n").getBytes(StandardCharsets.US_ASCII));
    }
    byte[] all = out.toByteArray();
    if (all.length != context || all[0] != ByteTokenizer.DOCUMENT_START) {
      throw new IllegalStateException("built a multi-key prompt of " + all.length + " tokens for "
          + context);
    }
    return new RecallPrompt(new ByteTokenizer().encode(all), prefixLength, scoredEnd, recalls);
  }

  private static byte[] keyLine(String name, String value) {
    return ("# " + name + " = " + value + "\n").getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] question(String name) {
    return ("# recall " + name + ": ").getBytes(StandardCharsets.US_ASCII);
  }

  /** The first line start at or after {@code at}, but before {@code limit}; else the last before. */
  private static int lineStart(byte[] text, int at, int limit) {
    int i = Math.max(1, at);
    while (i < limit && text[i - 1] != '\n' && text[i - 1] != ByteTokenizer.DOCUMENT_START) {
      i++;
    }
    while (i > 1 && text[i - 1] != '\n' && text[i - 1] != ByteTokenizer.DOCUMENT_START) {
      i--;
    }
    return i;
  }
}
