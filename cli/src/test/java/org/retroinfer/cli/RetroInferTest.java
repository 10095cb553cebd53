package org.retroinfer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The command line end to end on the shipped model, at short contexts (the demo runs through the
 * launcher script in LauncherTest).
 */
class RetroInferTest {

  record Run(int exit, String out, String err) {}

  static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = RetroInfer.commandLine();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int exit = cl.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  @Test
  void helpListsTheCommands() {
    Run r = run("--help");
    assertEquals(0, r.exit());
    for (String c : new String[] {"demo", "generate", "eval"}) {
      assertTrue(r.out().contains(c), r.out());
    }
    assertTrue(run("eval", "--help").out().contains("niah"));
  }

  /**
   * {@code --device gpu} without a usable CUDA device: one line on standard error that says so,
   * and the same output as {@code --device cpu} (skipped where a GPU can be used: the device check
   * runs the GPU end to end there).
   */
  @Test
  void deviceGpuWithoutCudaSaysSoOnceAndRunsOnTheCpu() {
    org.junit.jupiter.api.Assumptions.assumeFalse(
        org.retroinfer.gpu.cuda.CudaAvailability.get().available(), "a CUDA device is usable here");
    String[] args = {"generate", "--prompt", "def add(a, b):\n    return", "--max-tokens", "24",
        "--method", "wave"};
    Run cpu = run(concat(args, "--device", "cpu"));
    Run gpu = run(concat(args, "--device", "gpu"));
    assertEquals(0, cpu.exit(), cpu.err());
    assertEquals(0, gpu.exit(), gpu.err());
    assertEquals(cpu.out(), gpu.out(), "the CPU ran in both");
    java.util.List<String> lines = gpu.err().lines().filter(l -> l.contains("--device")).toList();
    assertEquals(1, lines.size(), gpu.err());
    assertTrue(lines.get(0).startsWith("retroinfer: --device gpu: no usable CUDA device (")
        && lines.get(0).endsWith("attention runs on the CPU"), lines.get(0));
    assertFalse(cpu.err().contains("--device"), cpu.err());
    Run auto = run(concat(args, "--device", "auto"));
    assertEquals(cpu.out(), auto.out());
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void evalNiahPrintsJson() throws Exception {
    Run r = run("eval", "niah", "--context", "1600", "--depths", "0.3,0.7", "--methods",
        "FULL,wave,Streaming", "--scored-tokens", "32", "--haystack", "builtin", "--json",
        "--warmup-steps", "16");
    assertEquals(0, r.exit(), r.err());
    JsonNode report = new ObjectMapper().readTree(r.out());
    JsonNode rows = report.get("rows");
    assertEquals(3, rows.size());
    assertEquals("full", rows.get(0).get("method").asText());
    assertEquals(2, rows.get(0).get("trials").asInt());
    for (JsonNode row : rows) {
      assertTrue(row.get("bitsPerByte").asDouble() > 0.1 && row.get("bitsPerByte").asDouble() < 8,
          row.toString());
      assertTrue(row.get("decodeTokensPerSecond").asDouble() > 0, row.toString());
    }
    assertEquals(1.0, rows.get(1).get("agreement").asDouble() >= 0.9 ? 1.0 : 0.0, rows.toString());
    assertEquals(2, report.get("trials").size());
    JsonNode config = report.get("model").get("waveConfig");
    assertTrue(config.isObject(), "the configuration is a JSON object: " + config);
    assertEquals(0.018, config.get("retrievalFraction").asDouble());
    assertEquals("BFLOAT16", config.get("kvType").asText());
    assertTrue(r.err().contains("[2/2]"), r.err());
    assertTrue(r.err().contains("2 prompts: 1 context (1,600) x 2 depths (30%, 70%) x 1 trial"),
        "says how many prompts run, and why: " + r.err());
  }

  @Test
  void generateContinuesAPrompt() {
    Run r = run("generate", "--prompt", "def add(a, b):\n    return", "--max-tokens", "12",
        "--method", "full");
    assertEquals(0, r.exit(), r.err());
    assertFalse(r.out().isBlank());
    assertTrue(r.err().contains("12 tokens"), r.err());
    Run sampled = run("generate", "--prompt", "import os\n", "--max-tokens", "10", "--temperature",
        "0.8", "--seed", "5");
    assertEquals(0, sampled.exit(), sampled.err());
    Run none = run("generate", "--prompt", "x", "--max-tokens", "0", "--method", "full");
    assertEquals(0, none.exit(), none.err());
    assertTrue(none.err().contains("0 tokens with full attention over 2 tokens"), none.err());
    assertFalse(none.err().contains("NaN"), "no time per token without tokens: " + none.err());
  }

  @Test
  void benchDecodeComparesMethodsSideBySide() {
    Run r = run("bench", "decode", "--context", "1400", "--steps", "6", "--warmup", "2",
        "--methods", "full,wave,streaming", "--haystack", "builtin");
    assertEquals(0, r.exit(), r.err());
    String out = r.out();
    // median, mean, p90, max, tokens/s, then the speedup against the first method
    assertTrue(out.matches(
        "(?s).*\\nfull\\s+[0-9.]+\\s+[0-9.]+\\s+[0-9.]+\\s+[0-9.]+\\s+[0-9.]+\\s+1\\.00x.*"), out);
    assertTrue(out.contains("max ms"), out);
    assertTrue(out.contains("\nwave ") && out.contains("\nstreaming "), out);
  }

  @Test
  void userErrorsAreOneLine() {
    Run missing = run("demo", "--model", "/nonexistent/model", "--context", "1500");
    assertEquals(1, missing.exit());
    assertTrue(missing.err().startsWith("retroinfer: model directory"), missing.err());
    assertFalse(missing.err().contains("\tat "), "no stack trace: " + missing.err());
    Run method = run("eval", "niah", "--methods", "full,magic", "--context", "1500");
    assertEquals(2, method.exit(), "a usage error, found before the model loads");
    assertTrue(method.err().contains("unknown attention method 'magic'"), method.err());
    Run option = run("demo", "--context", "lots");
    assertEquals(2, option.exit(), "picocli's exit code for a bad option value");
  }

  @Test
  void launcherFlagsComeFromTheRootPom() throws Exception {
    Path flags = Path.of("target/jvm.flags");
    assertTrue(Files.isRegularFile(flags), "Maven writes target/jvm.flags at process-resources");
    String text = Files.readString(flags).strip();
    assertFalse(text.contains("${"), text);
    String pom = Files.readString(Path.of("../pom.xml"));
    String property = pom.replaceAll("(?s).*<retroinfer\\.jvm\\.flags>(.*?)</retroinfer\\.jvm\\.flags>.*",
        "$1").strip();
    assertEquals(property, text);
    assertTrue(text.contains("-Dchronicle.analytics.disable=true"));
  }
}
