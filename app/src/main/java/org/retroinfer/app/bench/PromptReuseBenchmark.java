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
 * {@code TOKENS}-token prompt, stores it and decodes 32 tokens; then {@code REUSES} processes, given
 * the same prompt, each find it in the store, open it and decode 32 tokens. Prints every process's
 * JSON line and a table: time to the first decoded token (recompute vs from the store, median of
 * the reuses), its breakdown (the store's open, the prefix lookup, the context's open and within it
 * the K/V checksums, the first attention after it), their ratio, and whether all sessions decoded
 * the same 32 tokens.
 *
 * <p>With {@code --before JAR} (a {@code retroinfer.jar} of an earlier build) the same sessions run
 * with that build too, in its own store, alternating with this build's reuses, so that both are
 * measured side by side on the same machine at the same time.
 *
 * <p>Args: {@code [TOKENS (16384)] [SEED (1)] [REUSES (3)] [--before JAR] [--store DIR]}.
 */
public final class PromptReuseBenchmark {
  private static final String AFTER_MAIN = PromptReuseRun.class.getName();
  /** The session class of builds before the application layer existed. */
  private static final String BEFORE_MAIN = "org.retroinfer.store.bench.PromptReuseRun";

  private PromptReuseBenchmark() {}

  record Build(String name, String classPath, String main, Path store, List<String> sessions) {}

  /** The benchmark's --store: a directory where each build gets a fresh store of its own. */
  private static Path scratch(String store) {
    if (org.retroinfer.store.RemoteContextStore.isRemote(store)) {
      throw new IllegalArgumentException("--store " + store + ": the benchmark writes a fresh"
          + " store per build into a directory; give --store DIR (a remote store's reuse is"
          + " measured by opensearch-plugin/scripts/cluster-check.sh)");
    }
    return Path.of(store);
  }

  public static void main(String[] args) throws Exception {
    List<String> positional = new ArrayList<>();
    String before = null;
    Path base = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--before" -> before = args[++i];
        case "--store" -> base = scratch(args[++i]);
        default -> positional.add(args[i]);
      }
    }
    int tokens = positional.size() > 0 ? Integer.parseInt(positional.get(0)) : 16384;
    long seed = positional.size() > 1 ? Long.parseLong(positional.get(1)) : 1;
    int reuses = positional.size() > 2 ? Integer.parseInt(positional.get(2)) : 3;
    if (base == null) {
      base = Files.createTempDirectory("retroinfer-store");
    }
    List<Build> builds = new ArrayList<>();
    if (before != null) {
      String jar = Path.of(before).toAbsolutePath().toString();
      builds.add(new Build("before", jar, sessionMain(jar), base.resolve("before"),
          new ArrayList<>()));
    }
    builds.add(new Build(before != null ? "after" : "this build",
        System.getProperty("java.class.path"), AFTER_MAIN, base.resolve("after"),
        new ArrayList<>()));
    System.out.println("stores under " + base + ", prompt of " + tokens + " tokens, seed " + seed
        + ", " + reuses + " reusing processes per build");
    for (Build b : builds) { // the prefill sessions
      b.sessions.add(runProcess(b, tokens, seed));
      System.out.println(b.name + " process 1: " + b.sessions.getLast());
    }
    for (int r = 0; r < reuses; r++) { // the reuses, alternating between builds
      for (int k = 0; k < builds.size(); k++) {
        Build b = builds.get((r + k) % builds.size());
        b.sessions.add(runProcess(b, tokens, seed));
        System.out.println(b.name + " process " + b.sessions.size() + ": " + b.sessions.getLast());
      }
    }
    String ids = text(builds.getFirst().sessions.getFirst(), "ids");
    boolean same = builds.stream().allMatch(b -> b.sessions.stream()
        .allMatch(s -> text(s, "ids").equals(ids)));
    System.out.println();
    StringBuilder head = new StringBuilder(String.format("%-44s", ""));
    for (Build b : builds) {
      head.append(String.format(" %14s %14s", b.name + ": 1st", "reuse (med)"));
    }
    System.out.println(head);
    row(builds, "store open ms", "storeOpenMs");
    row(builds, "prefill ms", "prefillMs");
    row(builds, "index build ms", "indexMs");
    row(builds, "find (prefix lookup) ms", "findMs");
    row(builds, "open the context (load) ms", "loadMs");
    row(builds, "  of which: K/V checksums ms", "verifyMs");
    row(builds, "time to first decoded token ms", "firstTokenMs");
    row(builds, "first decode step (first attention) ms", "firstStepMs");
    row(builds, "K/V + index bytes the context owns", "kvBytesOwned");
    StringBuilder ratio = new StringBuilder(String.format("%-44s", "first token: recompute / reuse"));
    for (Build b : builds) {
      double t1 = field(b.sessions.getFirst(), "firstTokenMs");
      double t2 = reuseMedian(b, "firstTokenUs") / 1000.0;
      ratio.append(String.format(" %14s %13.1fx", "", t1 / t2));
    }
    System.out.println(ratio);
    System.out.printf("%-44s %s%n", "all sessions decoded the same 32 tokens", same ? "yes" : "NO");
  }

  /** The session class in an earlier build's jar: the application layer's, if it has one. */
  private static String sessionMain(String jar) throws IOException {
    try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(jar)) {
      return z.getEntry(AFTER_MAIN.replace('.', '/') + ".class") != null ? AFTER_MAIN
          : BEFORE_MAIN;
    }
  }

  private static void row(List<Build> builds, String label, String name) {
    StringBuilder sb = new StringBuilder(String.format("%-44s", label));
    for (Build b : builds) {
      JsonNode first = parse(b.sessions.getFirst()).get(name);
      sb.append(String.format(" %14s %14s", first == null ? "-" : first.asText(),
          parse(b.sessions.getLast()).has(name) ? String.format("%.0f", reuseMedian(b, name))
              : "-"));
    }
    System.out.println(sb);
  }

  /** The median of a field over a build's reusing sessions. */
  private static double reuseMedian(Build b, String name) {
    double[] v = b.sessions.subList(1, b.sessions.size()).stream()
        .mapToDouble(s -> parse(s).has(name) ? parse(s).get(name).asDouble()
            : name.equals("firstTokenUs") ? 1000.0 * field(s, "firstTokenMs") : Double.NaN)
        .sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  private static String runProcess(Build b, int tokens, long seed) throws IOException,
      InterruptedException {
    return runProcess(ChildJvm.of(b.classPath, b.main, b.store.toString(),
        Integer.toString(tokens), Long.toString(seed), "32"));
  }

  /**
   * Runs one {@link PromptReuseRun} session of this build as a child JVM (this JVM's flags and
   * classpath) and returns its JSON line.
   */
  public static String runProcess(Path store, int tokens, long seed) throws IOException,
      InterruptedException {
    return runProcess(ChildJvm.of(PromptReuseRun.class, store.toString(),
        Integer.toString(tokens), Long.toString(seed), "32"));
  }

  private static String runProcess(ProcessBuilder pb) throws IOException, InterruptedException {
    Process p = pb.start();
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
      throw new IllegalStateException("the session process failed (exit " + rc + "): "
          + String.join(" ", pb.command().subList(Math.max(0, pb.command().size() - 6),
              pb.command().size())) + "\n" + String.join("\n", lines));
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
