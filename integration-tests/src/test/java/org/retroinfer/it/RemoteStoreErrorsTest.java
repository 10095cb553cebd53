package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.retroinfer.it.StoreTenancyAndLimitsTest.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.apache.lucene.codecs.CompoundDirectory;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.IOContext;
import org.apache.lucene.store.IndexInput;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.cli.RetroInfer;
import org.retroinfer.it.StoreTenancyAndLimitsTest.Run;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextPack;

/**
 * The remote-store errors of {@code explain --store http://...} and {@code inspect http://...},
 * without OpenSearch: a JDK HTTP server on loopback answers the plugin's REST calls the way the
 * plugin does (ContextRestHandler: a list as {@code {"contexts": [...]}}, a context as its pack,
 * an unknown index as OpenSearch's JSON error {@code index_not_found_exception}, status 404). The
 * real cluster's answers are checked by opensearch-plugin's RealServerTest.
 */
class RemoteStoreErrorsTest {
  private static final String INDEX = "contexts";

  @TempDir Path dir;
  private HttpServer server;

  @AfterEach
  void stop() {
    if (server != null) {
      server.stop(0);
    }
  }

  @Test
  void explainOfAnIndexThatDoesNotExistSaysSo() throws Exception {
    List<String> asked = Collections.synchronizedList(new ArrayList<>());
    String base = serve(List.of(), asked);
    String url = base + "/no-such-index";
    // the newest context (a list) and a given one (a get): both ask the unknown index
    for (List<String> extra : List.of(List.<String>of(), List.of("--context", "c1"))) {
      List<Object> args = new ArrayList<>(List.of("explain", "--store", url));
      args.addAll(extra);
      Run r = run(args.toArray());
      assertEquals(1, r.exit(), r.err() + r.out());
      assertEquals("retroinfer: remote store " + url + ": no such index [no-such-index] (a put"
          + " creates it)", r.err().strip(), "one line naming the store and the index");
      assertEquals("", r.out());
    }
    assertEquals(List.of("GET /_retroinfer/no-such-index/contexts",
        "GET /_retroinfer/no-such-index/contexts/c1"), asked);
  }

  @Test
  void aDamagedContextFromARemoteStoreNamesTheStoreAndTheContext() throws Exception {
    Path pristine = dir.resolve("pristine");
    Path prompt = dir.resolve("prompt.py");
    Files.write(prompt, PythonCorpus.fallback().text(600, new SplittableRandom(22)));
    Run put = run("store", "put", "--store", pristine, "--file", prompt, "--json");
    assertEquals(0, put.exit(), put.err());
    String id = new ObjectMapper().readTree(put.out()).get("context").get("id").asText();
    byte[] pack = ContextPack.pack(pristine);
    ContextInfo info = ContextPack.describe(pack).info();
    assertEquals(id, info.id());

    // one byte of the K/V (the wave codec's .wvd data) changed, the pack framed and summed again
    // as a sender would: only the store's own checksums can see it
    Path damaged = dir.resolve("damaged");
    ContextPack.unpack(pack, damaged);
    flipKvByte(damaged);
    Run local = run("explain", "--store", damaged, "--context", id);
    assertEquals(RetroInfer.EXIT_DAMAGED, local.exit(), "the damage is seen locally: " + local.err()
        + local.out());
    byte[] damagedPack = ContextPack.pack(damaged);

    List<String> asked = Collections.synchronizedList(new ArrayList<>());
    // listed with the record the plugin took from the pack when it was put (intact then)
    String url = serve(List.of(new Stored(info, damagedPack)), asked) + "/" + INDEX;
    for (Object[] args : new Object[][] {{"explain", "--store", url, "--context", id},
        {"explain", "--store", url}, {"inspect", url}}) {
      Run r = run(args);
      String command = String.join(" ", Stream.of(args).map(String::valueOf).toList());
      assertEquals(RetroInfer.EXIT_DAMAGED, r.exit(), command + ": " + r.err() + r.out());
      String err = r.err().strip();
      System.out.println(command + "\n  " + err);
      assertEquals(1, err.lines().count(), command + ": one line: " + err);
      assertTrue(err.startsWith("retroinfer: the store is damaged: context " + id
          + " of the remote store " + url + ", "), command + ": " + err);
      boolean inspect = args[0].equals("inspect"); // which does not suggest itself again
      assertTrue(err.contains("; nothing damaged was served. " + (inspect ? "The"
          : "Run 'retroinfer inspect " + url + "' to check its contexts; the") + " store is a"
          + " cache: delete it with 'retroinfer store delete --store " + url + " " + id + "' and"
          + " put it again with 'retroinfer store put --store " + url + "' and its prompt"),
          command + ": " + err);
      // the temporary copy, removed by now, is not what the message sends the user to
      assertFalse(err.contains(System.getProperty("java.io.tmpdir")) || err.contains("retroinfer-"),
          command + ": " + err);
      assertTrue(err.endsWith("' and its prompt"), "no --tenant given, none asked for: " + err);
    }
    assertTrue(asked.contains("GET /_retroinfer/" + INDEX + "/contexts/" + id), asked.toString());
  }

  /**
   * A loopback server answering like the plugin for the index {@value #INDEX} holding
   * {@code packs}, each seen only by its tenant (and model, when the caller names one); any other
   * index does not exist. Returns {@code http://127.0.0.1:PORT}.
   */
  private String serve(List<Stored> stored, List<String> asked) throws IOException {
    Map<String, Map<String, Object>> heads = new LinkedHashMap<>();
    Map<String, byte[]> packs = new LinkedHashMap<>();
    for (Stored c : stored) {
      heads.put(c.info().id(), head(c.info()));
      packs.put(c.info().id(), c.pack());
    }
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext("/", exchange -> {
      try (exchange) {
        String path = exchange.getRequestURI().getPath();
        asked.add(exchange.getRequestMethod() + " " + path);
        String[] parts = path.split("/"); // "", "_retroinfer", INDEX, "contexts", ID
        if (parts.length < 4 || !parts[1].equals("_retroinfer")) {
          send(exchange, 400, "application/json", "{\"error\":\"not a retroinfer call\"}");
        } else if (!parts[2].equals(INDEX)) {
          String reason = "no such index [" + parts[2] + "]";
          Map<String, Object> cause = new LinkedHashMap<>();
          cause.put("type", "index_not_found_exception");
          cause.put("reason", reason);
          cause.put("index", parts[2]);
          cause.put("resource.id", parts[2]);
          cause.put("resource.type", "index_or_alias");
          cause.put("index_uuid", "_na_");
          Map<String, Object> error = new LinkedHashMap<>();
          error.put("root_cause", List.of(cause));
          error.putAll(cause);
          send(exchange, 404, "application/json", new ObjectMapper().writeValueAsString(
              Map.of("error", error, "status", 404)));
        } else if (parts.length == 4 && parts[3].equals("contexts")) {
          send(exchange, 200, "application/json", new ObjectMapper().writeValueAsString(
              Map.of("contexts", heads.values().stream().filter(h -> sees(exchange, h)).toList())));
        } else if (parts.length == 5 && packs.containsKey(parts[4])
            && sees(exchange, heads.get(parts[4]))) {
          byte[] body = packs.get(parts[4]);
          exchange.getResponseHeaders().add("Content-Type", "application/octet-stream");
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
        } else {
          send(exchange, 404, "application/json", "{\"error\":{\"type\":"
              + "\"resource_not_found_exception\",\"reason\":\"no context [" + parts[parts.length - 1]
              + "] of this tenant in index [" + INDEX + "]\"},\"status\":404}");
        }
      }
    });
    server.start();
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /** Whether the caller (its ?tenant= hash, none for the default tenant, and ?model=) sees it. */
  private static boolean sees(HttpExchange exchange, Map<String, Object> head) {
    Map<String, String> q = new LinkedHashMap<>();
    String query = exchange.getRequestURI().getQuery();
    for (String kv : query == null ? new String[0] : query.split("&")) {
      String[] p = kv.split("=", 2);
      q.put(p[0], p.length == 2 ? p[1] : "");
    }
    return q.getOrDefault("tenant", "").equals(head.get("tenant"))
        && (!q.containsKey("model") || q.get("model").equals(head.get("model")));
  }

  /** A context the server holds: its record, and the pack it serves. */
  record Stored(ContextInfo info, byte[] pack) {}

  /** What the plugin lists of a context (ContextIndex.describe of its head). */
  private static Map<String, Object> head(ContextInfo c) {
    Map<String, Object> head = new LinkedHashMap<>();
    head.put("id", c.id());
    head.put("name", c.name());
    head.put("kind", c.kind());
    head.put("tokens", c.tokens());
    head.put("has_logits", c.hasLogits());
    head.put("created", c.created().toEpochMilli());
    head.put("tenant", c.tenant());
    head.put("model", c.model());
    head.put("namespace", c.namespace());
    head.put("shape", c.shape());
    head.put("config", c.config());
    return head;
  }

  private static void send(HttpExchange exchange, int status, String type, String body)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().add("Content-Type", type + "; charset=UTF-8");
    exchange.sendResponseHeaders(status, bytes.length);
    exchange.getResponseBody().write(bytes);
  }

  /** Changes one byte in the middle of the store's K/V data (a .wvd file, or one in a .cfs). */
  private static void flipKvByte(Path store) throws IOException {
    Path index = store.resolve("index");
    try (Directory d = FSDirectory.open(index)) {
      for (SegmentCommitInfo si : SegmentInfos.readLatestCommit(d)) {
        for (String f : si.files()) {
          if (f.endsWith(".wvd")) {
            flip(index.resolve(f), Files.size(index.resolve(f)) / 2);
            return;
          }
        }
        if (!si.info.getUseCompoundFile()) {
          continue;
        }
        String cfsName = IndexFileNames.segmentFileName(si.info.name, "", "cfs");
        byte[] container = Files.readAllBytes(index.resolve(cfsName));
        try (CompoundDirectory inner = si.info.getCodec().compoundFormat()
            .getCompoundReader(d, si.info)) {
          for (String f : inner.listAll()) {
            if (!f.endsWith(".wvd")) {
              continue;
            }
            byte[] bytes;
            try (IndexInput in = inner.openInput(f, IOContext.READONCE)) {
              bytes = new byte[(int) in.length()];
              in.readBytes(bytes, 0, bytes.length);
            }
            long at = StoreFaultInjectionTest.indexOf(container, bytes);
            assertTrue(at >= 0, f + " not found inside " + cfsName);
            flip(index.resolve(cfsName), at + bytes.length / 2);
            return;
          }
        }
      }
    }
    throw new AssertionError("no .wvd file in " + index);
  }

  private static void flip(Path file, long at) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    bytes[(int) at] ^= 0x5a;
    Files.write(file, bytes);
  }
}
