package org.retroinfer.app.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Prompt-prefix caching across processes, measured in one run: a first process prefills a
 * {@code TOKENS}-token prompt, stores it and decodes 32 tokens; a second process, given the same
 * prompt, finds it in the store, loads it and decodes 32 tokens. Prints both processes' JSON lines
 * and a table: time to the first decoded token in each, their ratio, and whether the 32 tokens are
 * the same.
 *
 * <p>Args: {@code [TOKENS (16384)] [SEED (1)] [STORE_DIR (a fresh temporary directory)]}.
 */
public final class PromptReuseBenchmark {
  private PromptReuseBenchmark() {}

  public static void main(String[] args) throws Exception {
    int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 16384;
    long seed = args.length > 1 ? Long.parseLong(args[1]) : 1;
    Path store = args.length > 2 ? Path.of(args[2]) : Files.createTempDirectory("retroinfer-store");
    System.out.println("store " + store + ", prompt of " + tokens + " tokens, seed " + seed);
    String first = runProcess(store, tokens, seed);
    String second = runProcess(store, tokens, seed);
    System.out.println("process 1: " + first);
    System.out.println("process 2: " + second);
    long t1 = field(first, "firstTokenMs");
    long t2 = field(second, "firstTokenMs");
    boolean same = text(first, "ids").equals(text(second, "ids"));
    System.out.printf("%-34s %12s %12s%n", "", "process 1", "process 2");
    System.out.printf("%-34s %12d %12d%n", "reused tokens", field(first, "reused"),
        field(second, "reused"));
    System.out.printf("%-34s %12d %12d%n", "prefill ms", field(first, "prefillMs"),
        field(second, "prefillMs"));
    System.out.printf("%-34s %12d %12d%n", "index build ms", field(first, "indexMs"),
        field(second, "indexMs"));
    System.out.printf("%-34s %12d %12d%n", "find + load ms", field(first, "findMs")
        + field(first, "loadMs"), field(second, "findMs") + field(second, "loadMs"));
    System.out.printf("%-34s %12d %12d%n", "time to first decoded token ms", t1, t2);
    System.out.printf("%-34s %12s %12.1fx%n", "speed-up of the first token", "", (double) t1 / t2);
    System.out.printf("%-34s %25s%n", "same 32 decoded tokens", same ? "yes" : "NO");
  }

  /**
   * Runs one {@link PromptReuseRun} session as a child JVM (this JVM's flags and classpath) and
   * returns its JSON line.
   */
  public static String runProcess(Path store, int tokens, long seed) throws IOException,
      InterruptedException {
    Process p = ChildJvm.of(PromptReuseRun.class, store.toString(), Integer.toString(tokens),
        Long.toString(seed), "32").start();
    List<String> lines = new ArrayList<>();
    try (BufferedReader r = new BufferedReader(
        new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String l; (l = r.readLine()) != null; ) {
        lines.add(l);
      }
    }
    int rc = p.waitFor();
    String json = lines.stream().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElse(null);
    if (rc != 0 || json == null) {
      throw new IllegalStateException("the session process failed (exit " + rc + "):\n"
          + String.join("\n", lines));
    }
    return json;
  }

  /** A numeric field of a session's JSON line. */
  public static long field(String json, String name) {
    JsonNode node = parse(json).get(name);
    if (node == null || !node.isNumber()) {
      throw new IllegalArgumentException("no numeric field " + name + " in " + json);
    }
    return node.asLong();
  }

  /** An array or string field of a session's JSON line, as JSON text. */
  public static String text(String json, String name) {
    JsonNode node = parse(json).get(name);
    if (node == null) {
      throw new IllegalArgumentException("no field " + name + " in " + json);
    }
    return node.toString();
  }

  private static JsonNode parse(String json) {
    try {
      return new ObjectMapper().readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("a session printed invalid JSON: " + json, e);
    }
  }
}
