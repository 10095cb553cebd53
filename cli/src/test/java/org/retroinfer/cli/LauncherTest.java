package org.retroinfer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.eval.PythonCorpus;

/**
 * The launcher script as a user runs it, on the shipped model: a command's output is what it means
 * to say and its progress, without the JVM's, Maven's or the libraries' warnings and log lines (the
 * README's "What a run prints" names the one line the JVM would add and the launcher drops). The
 * script runs this test's class path (RETROINFER_CLASSPATH) instead of the jar, so no Maven build
 * happens here.
 */
class LauncherTest {
  /** What must not reach a user: warnings, log records, SLF4J's complaints, escape codes. */
  static final Pattern NOISE = Pattern.compile("WARNING|SLF4J|INFO|SEVERE|Unsafe|Exception|\u001b"
      + "|^[A-Z][a-z]{2} \\d{1,2}, \\d{4} ", Pattern.MULTILINE);

  @TempDir Path dir;

  record Result(int exit, String out, String err) {}

  Result launch(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("bash", Path.of("..", "retroinfer").toString()));
    command.addAll(List.of(args));
    Path out = Files.createTempFile(dir, "out", ".txt");
    Path err = Files.createTempFile(dir, "err", ".txt");
    ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile())
        .redirectError(err.toFile());
    Map<String, String> env = pb.environment();
    env.put("JAVA_HOME", System.getProperty("java.home"));
    env.put("RETROINFER_CLASSPATH", System.getProperty("java.class.path"));
    env.put("RETROINFER_JAVA_OPTS", "-Dretroinfer.progress.delay-ms=0"); // every progress line
    env.remove("RETROINFER_PROGRESS");
    env.remove("RETROINFER_DEBUG");
    Process p = pb.start();
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the launcher did not finish");
    return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
  }

  /**
   * Warnings and log records go to standard error (the JVM's, java.util.logging's console handler,
   * SLF4J's), which is checked whole; standard output carries model text (which may well say
   * "Exception"), so it is checked for escape codes only.
   */
  static void assertQuiet(Result r) {
    var noise = NOISE.matcher(r.err());
    assertTrue(!noise.find(), () -> "noise at '" + r.err().substring(noise.start(),
        Math.min(r.err().length(), noise.start() + 120)) + "' in:\n" + r.err());
    assertTrue(!r.out().contains("\u001b"), r.out());
  }

  @Test
  void theDemoAnswersAndPrintsNothingElse() throws Exception {
    Result r = launch("demo", "--context", "1800", "--tokens", "8", "--seed", "3");
    assertEquals(0, r.exit(), r.out() + r.err());
    String out = r.out();
    assertTrue(out.contains("sha256 verified"), out);
    assertTrue(out.contains("haystack   " + PythonCorpus.stdlib().description() + ", seed 3"), out);
    String expected = out.replaceAll("(?s).*expected answer (\\d{5}).*", "$1");
    assertTrue(expected.matches("\\d{5}"), out);
    assertTrue(out.matches("(?s).*\\nfull\\s+" + expected + "\\s+yes.*"), out);
    assertTrue(out.matches("(?s).*\\nwave\\s+" + expected + "\\s+yes.*"), out);
    // progress goes to standard error, as plain lines when it is not a terminal
    assertTrue(r.err().matches("(?s).*\\nprefill\\s+100% \\[=+\\] 1800/1800 tokens.*"), r.err());
    assertTrue(r.err().contains("warm-up") && !r.err().contains("\r"), r.err());
    assertQuiet(r);
  }

  @Test
  void theStoreCommandsPrintNoLogLines() throws Exception {
    // Lucene logs through java.util.logging, Chronicle Map (the --tier) through SLF4J
    Path prompt = dir.resolve("prompt.py");
    Files.write(prompt, PythonCorpus.fallback().text(1500, new SplittableRandom(1)));
    Path store = dir.resolve("store");
    Result put = launch("store", "put", "--store", store.toString(), "--file", prompt.toString());
    assertEquals(0, put.exit(), put.out() + put.err());
    assertTrue(put.out().startsWith("stored "), put.out());
    assertQuiet(put);
    Result get = launch("store", "get", "--store", store.toString(), "--file", prompt.toString(),
        "--generate", "4", "--tier", dir.resolve("tier").toString());
    assertEquals(0, get.exit(), get.out() + get.err());
    assertTrue(get.out().contains("longest stored prefix") && get.out().contains("CPU tier"),
        get.out());
    assertQuiet(get);
  }

  @Test
  void aUsageErrorIsOneLineAndItsExitCode() throws Exception {
    Result r = launch("eval", "niah", "--trials", "0");
    assertEquals(2, r.exit());
    assertEquals("", r.out());
    assertEquals("retroinfer: --trials must be at least 1 prompt per context and depth, got 0\n"
        + "(see 'retroinfer eval niah --help')\n", r.err());
  }
}
