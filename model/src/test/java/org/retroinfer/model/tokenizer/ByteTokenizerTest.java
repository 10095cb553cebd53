package org.retroinfer.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ByteTokenizerTest {
  final ByteTokenizer tok = new ByteTokenizer();

  @Test
  void idsAreByteValues() {
    assertArrayEquals(new int[] {100, 101, 102, 32, 10}, tok.encode("def \n"));
    // multi-byte UTF-8: one id per byte, all in [0, 256)
    String s = "π = 3.14 # ∑ ok ✓";
    int[] ids = tok.encode(s);
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    assertEquals(bytes.length, ids.length);
    for (int i = 0; i < ids.length; i++) {
      assertEquals(bytes[i] & 0xFF, ids[i]);
    }
    assertEquals(s, tok.decode(ids));
    assertEquals(256, tok.vocabSize());
    assertEquals(2, tok.documentStart());
  }

  @Test
  void randomBytesRoundTrip() {
    Random r = new Random();
    byte[] b = new byte[1000];
    r.nextBytes(b);
    int[] ids = tok.encode(b);
    for (int i = 0; i < b.length; i++) {
      assertEquals(b[i] & 0xFF, ids[i]);
    }
    // a split multi-byte character decodes to the replacement character, never throws
    assertEquals("\uFFFD", tok.decode(tok.encode("é"), 0, 1));
  }

  @Test
  void nonByteIdsAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {65, 256}));
    assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {-1}));
  }
}
