package org.retroinfer.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class MultiKeyTaskTest {
  final Random random = new Random();

  @ParameterizedTest
  @CsvSource({"16384, 1400", "8192, 1400", "4096, 1200", "3000, 600"})
  void promptHasFourKeysTwoOfThemDecodedAndAllRecalledInARow(int context, int decoded) {
    RecallPrompt p = MultiKeyTask.build(PythonCorpus.fallback(), context, decoded,
        random.nextLong());
    int[] t = p.tokens();
    assertEquals(context, t.length);
    assertEquals(2, t[0], "starts a document");
    assertEquals(decoded, p.scoredEnd() - p.prefixLength() - keysIn(p, p.prefixLength(),
        p.scoredEnd()), "the decoded text is the haystack's last tokens, with its keys");
    List<RecallPrompt.Recall> recalls = p.recalls();
    assertEquals(MultiKeyTask.KEYS, recalls.size());
    Set<String> names = new HashSet<>();
    int decodedKeys = 0;
    int at = p.scoredEnd();
    for (RecallPrompt.Recall r : recalls) {
      assertTrue(names.add(r.key()), "keys are distinct: " + r.key());
      String line = "# " + r.key() + " = " + r.answer() + "\n";
      assertEquals(line, NeedleTaskTest.text(t, r.keyPosition(), r.keyPosition() + line.length()));
      int before = t[r.keyPosition() - 1];
      assertTrue(before == '\n' || before == 2, "the key starts a line (after a newline or at the"
          + " start of a document, token 2), got token " + before);
      boolean inDecoded = r.keyPosition() >= p.prefixLength();
      assertEquals(inDecoded ? "decoded" : "prefilled", r.group());
      if (inDecoded) {
        decodedKeys++;
        assertTrue(r.keyPosition() + line.length() <= p.scoredEnd(), "a whole key line");
        if (decoded >= 1400) { // inside the first decode-time segment (W = 64, U = 1,024)
          assertTrue(r.keyPosition() + line.length() <= p.prefixLength() + 1024 - 64,
              "decoded key at " + r.keyPosition() + ", prefix " + p.prefixLength());
        }
      } else {
        assertTrue(r.keyPosition() + line.length() <= p.prefixLength(), "a whole key line");
      }
      String question = "# recall " + r.key() + ": ";
      assertEquals(question, NeedleTaskTest.text(t, at, r.answerStart()));
      assertEquals(r.answer() + "\n", NeedleTaskTest.text(t, r.answerStart(), r.answerEnd() + 1));
      at = r.answerEnd() + 1;
    }
    assertEquals(t.length, at, "the prompt ends with the last answer's newline");
    assertEquals(2, decodedKeys);
    // two pairs of near-identical names: the same word, numbers apart
    long pairs = recalls.stream().map(r -> r.key().replaceAll("\\d+x?$", "")).distinct().count();
    assertTrue(pairs <= 2, "names " + names);
  }

  private static int keysIn(RecallPrompt p, int from, int to) {
    int n = 0;
    for (RecallPrompt.Recall r : p.recalls()) {
      if (r.keyPosition() >= from && r.keyPosition() < to) {
        n += ("# " + r.key() + " = " + r.answer() + "\n").length();
      }
    }
    return n;
  }

  @Test
  void theSeedFixesThePromptAndBadSizesAreRejected() {
    long seed = random.nextLong();
    PythonCorpus c = PythonCorpus.fallback();
    assertEquals(MultiKeyTask.build(c, 8192, 1400, seed), MultiKeyTask.build(c, 8192, 1400, seed));
    assertNotEquals(MultiKeyTask.build(c, 8192, 1400, seed),
        MultiKeyTask.build(c, 8192, 1400, seed + 1));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MultiKeyTask.build(c, 2000, 1400, 1));
    assertTrue(e.getMessage().contains("at least"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> MultiKeyTask.build(c, 8192, 100, 1));
  }
}
