package org.retroinfer.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.tokenizer.ByteTokenizer;

/** The shipped haystack corpus: what it holds, its licence, and that a seed fixes the demo's prompt. */
class PythonCorpusTest {
  private static final String DIR = "/org/retroinfer/model/eval/stdlib/";

  /** The zip's files, read with {@link ZipFile} (random access), not the corpus's stream reader. */
  static List<byte[]> zipFiles() throws Exception {
    Path zip = Path.of(PythonCorpus.class.getResource(DIR + "python-3.11-stdlib.zip").toURI());
    List<byte[]> files = new ArrayList<>();
    try (ZipFile z = new ZipFile(zip.toFile())) {
      for (ZipEntry e : z.stream().sorted((a, b) -> a.getName().compareTo(b.getName())).toList()) {
        try (InputStream in = z.getInputStream(e)) {
          files.add(in.readAllBytes());
        }
      }
    }
    return files;
  }

  @Test
  void theDrawnTextIsMadeOfTheZipsFilesWholeAndWithoutRepeats() throws Exception {
    List<byte[]> files = zipFiles();
    PythonCorpus corpus = PythonCorpus.stdlib();
    assertEquals(102, files.size());
    assertEquals(files.size(), corpus.documents());
    long seed = new SplittableRandom().nextLong();
    byte[] text = corpus.text(1_200_000, new SplittableRandom(seed));
    // documents are separated by the document-start byte, which Python sources never contain
    List<byte[]> drawn = new ArrayList<>();
    int from = -1;
    for (int i = 0; i <= text.length; i++) {
      if (i == text.length || text[i] == ByteTokenizer.DOCUMENT_START) {
        if (from >= 0) {
          drawn.add(Arrays.copyOfRange(text, from, i));
        }
        from = i + 1;
      }
    }
    assertEquals(ByteTokenizer.DOCUMENT_START, text[0]);
    boolean[] used = new boolean[files.size()];
    for (int d = 0; d < drawn.size() - 1; d++) { // the last one is cut at the requested length
      byte[] doc = drawn.get(d);
      int match = -1;
      for (int f = 0; f < files.size() && match < 0; f++) {
        byte[] file = files.get(f);
        byte[] withNewline = Arrays.copyOf(file, file.length + 1);
        withNewline[file.length] = '\n';
        if (Arrays.equals(doc, file) || Arrays.equals(doc, withNewline)) {
          match = f;
        }
      }
      assertTrue(match >= 0, "document " + d + " of the text is not a file of the zip (seed " + seed
          + ")");
      assertTrue(!used[match], "file " + match + " drawn twice before all were used");
      used[match] = true;
    }
    assertTrue(drawn.size() > 60, "1.2 MB of text holds most of the 1.5 MB corpus: " + drawn.size());
  }

  @Test
  void theLicenceAndItsNoticeShipBesideTheCorpus() throws Exception {
    try (InputStream licence = PythonCorpus.class.getResourceAsStream(DIR + "LICENSE.txt");
        InputStream readme = PythonCorpus.class.getResourceAsStream(DIR + "README.txt")) {
      assertNotNull(licence);
      assertNotNull(readme);
      String l = new String(licence.readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(l.contains("PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2"), l);
      String r = new String(readme.readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(r.contains("2023 Python Software Foundation; All Rights"), r);
      assertTrue(r.contains(PythonCorpus.stdlib().documents() + " modules"), r);
    }
  }

  /**
   * The demo's default prompt (16,384 tokens, depth 0.5, seed 7) is fixed by the shipped corpus
   * alone, so the facts the README quotes are what every machine prints. A change of the corpus or
   * of how text is drawn changes them: then update the README's demo output with this test.
   */
  @Test
  void theDemosPromptIsTheSameOnEveryMachine() throws Exception {
    NeedleTask task = NeedleTask.build(PythonCorpus.stdlib(), 16384, 0.5, 0, 7);
    assertEquals("KEY_iris53", task.key());
    assertEquals("45053", task.answer());
    assertEquals(8205, task.needlePosition());
    byte[] text = PythonCorpus.stdlib().text(16384, new SplittableRandom(7));
    assertEquals("c18130b283c7f9a5388d00b18b71fd16996081b2f7998f27e10f6ed70bb2d88a",
        HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text)));
  }

  @Test
  void namesAreCaseInsensitiveAndErrorsListTheChoices() {
    assertSame(PythonCorpus.stdlib(), PythonCorpus.named("STDLIB"));
    assertSame(PythonCorpus.stdlib(), PythonCorpus.named(PythonCorpus.DEFAULT_NAME));
    assertEquals(PythonCorpus.fallback().documents(), PythonCorpus.named(" Builtin ").documents());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PythonCorpus.named("/no/such/dir"));
    assertTrue(e.getMessage().contains("/no/such/dir") && e.getMessage().contains("'stdlib'"),
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> PythonCorpus.named(" "));
  }
}
