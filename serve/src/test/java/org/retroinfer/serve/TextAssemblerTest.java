package org.retroinfer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class TextAssemblerTest {
  private static String feed(TextAssembler t, String text, StringBuilder pieces) {
    StringBuilder out = new StringBuilder();
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      String p = t.add(b & 0xFF);
      if (!p.isEmpty()) {
        pieces.append('|').append(p);
      }
      out.append(p);
    }
    return out.toString();
  }

  @Test
  void sendsAtOnceWhatCannotBeginAStopAndHoldsWhatMay() {
    TextAssembler t = new TextAssembler(List.of("\n### "));
    StringBuilder pieces = new StringBuilder();
    assertEquals("ab", feed(t, "ab", pieces));
    assertEquals("|a|b", pieces.toString()); // each byte at once
    assertEquals("", feed(t, "\n#", pieces)); // may begin the stop: held
    assertEquals("\n#x", feed(t, "x", pieces)); // cannot any more: sent
    assertEquals("", feed(t, "\n### tail", pieces));
    assertTrue(t.stopped());
    assertEquals("", t.finish());
  }

  @Test
  void aCharacterSplitAcrossTokensIsSentWhole() {
    TextAssembler t = new TextAssembler(List.of());
    StringBuilder pieces = new StringBuilder();
    assertEquals("é€😀", feed(t, "é€😀", pieces));
    assertEquals("|é|€|😀", pieces.toString());
    assertFalse(t.stopped());
  }

  @Test
  void theTextEndsBeforeTheFirstStop() {
    TextAssembler t = new TextAssembler(List.of("END", "STOP"));
    StringBuilder pieces = new StringBuilder();
    String out = feed(t, "abc STOP and END", pieces);
    assertEquals("abc ", out);
    assertTrue(t.stopped());
    TextAssembler u = new TextAssembler(List.of("END"));
    assertEquals("abc EN", feed(u, "abc EN", new StringBuilder()) + u.finish());
  }
}
