package org.retroinfer.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class NeedleTaskTest {
  final Random random = new Random();

  static String text(int[] ids, int from, int to) {
    byte[] b = new byte[to - from];
    for (int i = from; i < to; i++) {
      b[i - from] = (byte) ids[i];
    }
    return new String(b, StandardCharsets.ISO_8859_1);
  }

  @ParameterizedTest
  @CsvSource({"2048, 0.1", "4096, 0.5", "3000, 0.9", "1000, 0.0", "1500, 1.0"})
  void promptHasTheTrainedFormat(int context, double depth) {
    NeedleTask t = NeedleTask.build(PythonCorpus.fallback(), context, depth, 64, random.nextLong());
    int[] p = t.prompt();
    assertEquals(context, p.length);
    assertEquals(2, p[0], "starts a document");
    String question = "# recall " + t.key() + ": ";
    assertEquals(question, text(p, t.questionStart(), p.length));
    assertEquals('\n', p[t.questionStart() - 1], "the question starts a line");
    String needle = "# " + t.key() + " = " + t.answer() + "\n";
    assertEquals(needle, text(p, t.needlePosition(), t.needlePosition() + needle.length()));
    assertTrue(p[t.needlePosition() - 1] == '\n' || p[t.needlePosition() - 1] == 2,
        "the needle starts a line");
    assertTrue(t.needlePosition() + needle.length() <= t.prefixLength(),
        "the needle is in the prefilled part");
    assertEquals(64, t.questionStart() - t.prefixLength());
    assertTrue(t.key().matches("KEY_[a-z]+\\d{1,2}"), t.key());
    assertTrue(t.answer().matches("\\d{5}"), t.answer());
    assertArrayEquals(t.answer().chars().toArray(), t.answerTokens());
    // the needle appears once, and the haystack is text, not the needle repeated
    assertEquals(text(p, 0, p.length).indexOf(needle), text(p, 0, p.length).lastIndexOf(needle));
    assertTrue(Math.abs(t.actualDepth() - depth) < 0.1, "depth " + t.actualDepth() + " for " + depth);
  }

  @Test
  void theSeedFixesThePrompt() {
    long seed = random.nextLong();
    PythonCorpus c = PythonCorpus.fallback();
    assertEquals(NeedleTask.build(c, 2048, 0.5, 32, seed), NeedleTask.build(c, 2048, 0.5, 32, seed));
    assertFalse(NeedleTask.build(c, 2048, 0.5, 32, seed)
        .equals(NeedleTask.build(c, 2048, 0.5, 32, seed + 1)));
  }

  @Test
  void theMinimumContextFitsEveryKey() {
    PythonCorpus c = PythonCorpus.fallback();
    for (int scored : new int[] {0, 16, 64}) {
      int min = NeedleTask.minimumContext(scored);
      for (int i = 0; i < 200; i++) {
        long seed = random.nextLong();
        assertEquals(min, NeedleTask.build(c, min, random.nextDouble(), scored, seed).length());
      }
      // the longest key needs all of it: "# KEY_thistle99 = 12345\n" and "# recall KEY_thistle99: "
      assertEquals(24 + 24 + Math.max(64, 2 * scored), min);
    }
  }

  @Test
  void impossibleTasksAreRejected() {
    PythonCorpus c = PythonCorpus.fallback();
    assertThrows(IllegalArgumentException.class, () -> NeedleTask.build(c, 60, 0.5, 8, 1));
    assertThrows(IllegalArgumentException.class, () -> NeedleTask.build(c, 2048, 1.5, 8, 1));
    assertThrows(IllegalArgumentException.class, () -> NeedleTask.build(c, 2048, 0.5, 2000, 1));
  }

  @Test
  void corpusTextStartsDocumentsAndIsReproducible() {
    PythonCorpus c = PythonCorpus.fallback();
    long seed = random.nextLong();
    byte[] a = c.text(20000, new java.util.SplittableRandom(seed));
    byte[] b = c.text(20000, new java.util.SplittableRandom(seed));
    assertArrayEquals(a, b);
    assertEquals(2, a[0]);
    int starts = 0;
    for (byte x : a) {
      starts += x == 2 ? 1 : 0;
    }
    assertTrue(starts >= c.documents(), "every document is used before any repeats: " + starts);
  }
}
