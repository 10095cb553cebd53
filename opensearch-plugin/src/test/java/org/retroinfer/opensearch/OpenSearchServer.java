package org.retroinfer.opensearch;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real OpenSearch 3.5.0 cluster for tests: a copy of the distribution the build unpacked, the
 * plugin zip the build made installed with the distribution's own {@code bin/opensearch-plugin},
 * and {@code n} nodes started on free loopback ports (512 MB heap each) and stopped by their pids.
 * As root the nodes run as the unprivileged user of {@code scripts/opensearch-test-user.sh}
 * (OpenSearch refuses root).
 */
final class OpenSearchServer implements AutoCloseable {
  static final String USER = System.getenv().getOrDefault("RETROINFER_OPENSEARCH_USER",
      "retroinfer-os");
  private static final Path JAVA_HOME = Path.of(System.getProperty("java.home"));

  private final Path work;
  private final Path home;
  private final Process[] nodes;
  private final int[] httpPorts;
  private final int[] transportPorts;
  final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private OpenSearchServer(Path work, Path home, int n) throws IOException {
    this.work = work;
    this.home = home;
    this.nodes = new Process[n];
    this.httpPorts = new int[n];
    this.transportPorts = new int[n];
    for (int i = 0; i < n; i++) {
      httpPorts[i] = freePort();
      transportPorts[i] = freePort();
    }
  }

  /** Why the server cannot run here, or null when it can. */
  static String unavailable() {
    Path dist = Path.of(System.getProperty("retroinfer.opensearch.dist", ""));
    if (!Files.isRegularFile(dist.resolve("bin/opensearch"))) {
      return "no OpenSearch distribution unpacked at " + dist + " (the build unpacks it)";
    }
    if (isRoot() && !userExists()) {
      return "running as root and the user " + USER + " is missing: run"
          + " scripts/opensearch-test-user.sh (CI's .ci/run does)";
    }
    return null;
  }

  /** Installs the plugin into a copy of the distribution under {@code work} and starts n nodes. */
  static OpenSearchServer start(Path work, int n) throws Exception {
    Path dist = Path.of(System.getProperty("retroinfer.opensearch.dist"));
    Path zip = Path.of(System.getProperty("retroinfer.opensearch.pluginZip"));
    Path home = work.resolve("opensearch");
    run(work, List.of("cp", "-r", dist.toString(), home.toString()));
    run(work, List.of(home.resolve("bin/opensearch-plugin").toString(), "install", "--batch",
        zip.toUri().toString()));
    run(work, List.of(home.resolve("bin/opensearch-keystore").toString(), "create"));
    if (isRoot()) {
      run(work, List.of("chown", "-R", USER + ":", work.toString()));
    }
    OpenSearchServer cluster = new OpenSearchServer(work, home, n);
    try {
      for (int i = 0; i < n; i++) {
        cluster.startNode(i);
      }
      cluster.awaitHealth("green", n);
    } catch (Exception e) {
      cluster.close();
      throw e;
    }
    return cluster;
  }

  private void startNode(int i) throws IOException {
    List<String> cmd = new ArrayList<>();
    if (isRoot()) {
      // setpriv execs (no child in between): the process we hold is the node's own
      cmd.addAll(List.of("setpriv", "--reuid=" + USER, "--regid=" + USER, "--init-groups"));
    }
    cmd.addAll(List.of(home.resolve("bin/opensearch").toString(),
        "-Ecluster.name=retroinfer-test", "-Enode.name=node" + i, "-Enetwork.host=127.0.0.1",
        "-Ehttp.port=" + httpPorts[i], "-Etransport.port=" + transportPorts[i],
        "-Epath.data=" + work.resolve("data" + i), "-Epath.logs=" + work.resolve("logs" + i)));
    if (nodes.length == 1) {
      cmd.add("-Ediscovery.type=single-node");
    } else {
      List<String> seeds = new ArrayList<>();
      List<String> names = new ArrayList<>();
      for (int j = 0; j < nodes.length; j++) {
        seeds.add("127.0.0.1:" + transportPorts[j]);
        names.add("node" + j);
      }
      cmd.add("-Ediscovery.seed_hosts=" + String.join(",", seeds));
      cmd.add("-Ecluster.initial_cluster_manager_nodes=" + String.join(",", names));
    }
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(home.toFile())
        .redirectErrorStream(true).redirectOutput(work.resolve("node" + i + ".log").toFile());
    pb.environment().put("OPENSEARCH_JAVA_HOME", JAVA_HOME.toString());
    pb.environment().put("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m");
    pb.environment().remove("JAVA_TOOL_OPTIONS");
    nodes[i] = pb.start();
  }

  /** Waits until the cluster has {@code status} with {@code count} nodes (asked of a live node). */
  void awaitHealth(String status, int count) throws Exception {
    awaitHealth("", status, count);
  }

  /** Waits until {@code index} (all indices when "") has {@code status} with {@code count} nodes. */
  void awaitHealth(String index, String status, int count) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
    while (System.nanoTime() < deadline) {
      for (int i = 0; i < nodes.length; i++) {
        if (nodes[i] != null && !nodes[i].isAlive()) {
          throw new IllegalStateException("OpenSearch node" + i + " exited with "
              + nodes[i].exitValue() + ":\n" + tail(work.resolve("node" + i + ".log")));
        }
      }
      try {
        HttpResponse<String> r = send(HttpRequest.newBuilder(uri("/_cluster/health"
            + (index.isEmpty() ? "" : "/" + index) + "?wait_for_status=" + status
            + "&wait_for_nodes=" + count + "&timeout=1s"))
            .GET().build());
        if (r.statusCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      Thread.sleep(500);
    }
    throw new IllegalStateException("OpenSearch did not reach " + status + " with " + count
        + " nodes within 240 s:\n" + tail(work.resolve("node0.log")));
  }

  int size() {
    return nodes.length;
  }

  /** The HTTP port of the first live node. */
  int httpPort() {
    for (int i = 0; i < nodes.length; i++) {
      if (nodes[i] != null && nodes[i].isAlive()) {
        return httpPorts[i];
      }
    }
    throw new IllegalStateException("no node is running");
  }

  URI uri(String path) {
    return URI.create("http://127.0.0.1:" + httpPort() + path);
  }

  HttpResponse<String> send(HttpRequest request) throws IOException, InterruptedException {
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<byte[]> sendForBytes(HttpRequest request) throws IOException, InterruptedException {
    return http.send(request, HttpResponse.BodyHandlers.ofByteArray());
  }

  static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** Stops node {@code name} ("node2") by its pid. */
  void stopNode(String name) {
    int i = Integer.parseInt(name.substring("node".length()));
    stop(nodes[i]);
    nodes[i] = null;
  }

  /** Stops every node by its pid: SIGTERM, then SIGKILL after 30 s. */
  @Override
  public void close() {
    for (int i = 0; i < nodes.length; i++) {
      if (nodes[i] != null) {
        stop(nodes[i]);
        nodes[i] = null;
      }
    }
  }

  private static void stop(Process process) {
    if (process == null || !process.isAlive()) {
      return;
    }
    process.destroy();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private static void run(Path dir, List<String> cmd) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
    pb.environment().put("OPENSEARCH_JAVA_HOME", JAVA_HOME.toString());
    pb.environment().remove("JAVA_TOOL_OPTIONS");
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException(String.join(" ", cmd) + " failed:\n" + out);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static boolean isRoot() {
    return "root".equals(System.getProperty("user.name"));
  }

  private static boolean userExists() {
    try {
      Process p = new ProcessBuilder("id", USER).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }
}
