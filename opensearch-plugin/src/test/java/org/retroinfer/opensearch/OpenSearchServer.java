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
 * A real OpenSearch 3.5.0 server for tests: a copy of the distribution the build unpacked, the
 * plugin zip the build made installed with the distribution's own {@code bin/opensearch-plugin},
 * started on free loopback ports (single node, 512 MB heap) and stopped by its pid. As root it runs
 * as the unprivileged user of {@code scripts/opensearch-test-user.sh} (OpenSearch refuses root).
 */
final class OpenSearchServer implements AutoCloseable {
  static final String USER = System.getenv().getOrDefault("RETROINFER_OPENSEARCH_USER",
      "retroinfer-os");
  private static final Path JAVA_HOME = Path.of(System.getProperty("java.home"));

  private final Path home;
  private final Process process;
  final int httpPort;
  final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private OpenSearchServer(Path home, Process process, int httpPort) {
    this.home = home;
    this.process = process;
    this.httpPort = httpPort;
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

  static OpenSearchServer start(Path work) throws Exception {
    Path dist = Path.of(System.getProperty("retroinfer.opensearch.dist"));
    Path zip = Path.of(System.getProperty("retroinfer.opensearch.pluginZip"));
    Path home = work.resolve("opensearch");
    run(work, List.of("cp", "-r", dist.toString(), home.toString()));
    run(work, List.of(home.resolve("bin/opensearch-plugin").toString(), "install", "--batch",
        zip.toUri().toString()));
    int http = freePort();
    int transport = freePort();
    if (isRoot()) {
      run(work, List.of("chown", "-R", USER + ":", work.toString()));
    }
    List<String> cmd = new ArrayList<>();
    if (isRoot()) {
      // setpriv execs (no child in between): the process we hold is the server's own
      cmd.addAll(List.of("setpriv", "--reuid=" + USER, "--regid=" + USER, "--init-groups"));
    }
    cmd.addAll(List.of(home.resolve("bin/opensearch").toString(),
        "-Ediscovery.type=single-node", "-Enetwork.host=127.0.0.1",
        "-Ehttp.port=" + http, "-Etransport.port=" + transport,
        "-Epath.data=" + home.resolve("data"), "-Epath.logs=" + home.resolve("logs")));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(home.toFile())
        .redirectErrorStream(true).redirectOutput(work.resolve("server.log").toFile());
    pb.environment().put("OPENSEARCH_JAVA_HOME", JAVA_HOME.toString());
    pb.environment().put("OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m");
    pb.environment().remove("JAVA_TOOL_OPTIONS");
    Process p = pb.start();
    OpenSearchServer server = new OpenSearchServer(home, p, http);
    try {
      server.awaitUp(work.resolve("server.log"));
    } catch (Exception e) {
      server.close();
      throw e;
    }
    return server;
  }

  private void awaitUp(Path log) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("OpenSearch exited with " + process.exitValue() + ":\n"
            + tail(log));
      }
      try {
        HttpResponse<String> r = send(HttpRequest.newBuilder(uri("/_cluster/health"
            + "?wait_for_status=yellow&timeout=1s")).GET().build());
        if (r.statusCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      Thread.sleep(500);
    }
    throw new IllegalStateException("OpenSearch did not answer within 180 s:\n" + tail(log));
  }

  URI uri(String path) {
    return URI.create("http://127.0.0.1:" + httpPort + path);
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

  /** Stops the server by its pid: SIGTERM, then SIGKILL after 30 s. */
  @Override
  public void close() {
    if (process.isAlive()) {
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
  }

  Path home() {
    return home;
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
