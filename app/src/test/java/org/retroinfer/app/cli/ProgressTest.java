package org.retroinfer.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Progress when the output is not a terminal: plain lines, and none for quick steps. */
class ProgressTest {
  @AfterEach
  void clear() {
    System.clearProperty("retroinfer.progress");
    System.clearProperty("retroinfer.progress.delay-ms");
  }

  static String run(long total) {
    StringWriter text = new StringWriter();
    PrintWriter err = new PrintWriter(text);
    try (Progress p = Progress.prefill(err, total)) {
      for (long i = 1; i <= total; i++) {
        p.stepTo(i);
      }
    }
    return text.toString();
  }

  @Test
  void plainLinesEndWithTheFinalState() {
    System.setProperty("retroinfer.progress", "lines");
    System.setProperty("retroinfer.progress.delay-ms", "0");
    String out = run(5000);
    assertFalse(out.contains("\r") || out.contains("\u001b"), "no redraws in a log: " + out);
    String[] lines = out.strip().split("\n");
    assertTrue(lines[lines.length - 1].matches("prefill\\s+100% \\[=+\\] 5000/5000 tokens \\(.*"),
        out);
  }

  @Test
  void quickStepsAndModeNoneShowNothing() {
    System.setProperty("retroinfer.progress", "lines");
    System.setProperty("retroinfer.progress.delay-ms", "600000");
    assertEquals("", run(100), "a step shorter than the delay");
    System.setProperty("retroinfer.progress", "none");
    System.setProperty("retroinfer.progress.delay-ms", "0");
    assertEquals("", run(100));
    assertEquals(Progress.Mode.NONE, Progress.mode());
  }
}
