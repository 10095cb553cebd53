package org.retroinfer.opensearch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.retroinfer.opensearch.TestPacks.attend;
import static org.retroinfer.opensearch.TestPacks.pack;
import static org.retroinfer.opensearch.TestPacks.parse;
import static org.retroinfer.opensearch.TestPacks.tenantHash;
import static org.retroinfer.store.Synthetic.cache;
import static org.retroinfer.store.Synthetic.fingerprint;
import static org.retroinfer.store.Synthetic.kv;
import static org.retroinfer.store.Synthetic.queries;
import static org.retroinfer.store.Synthetic.tokens;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.opensearch.TestPacks.Packed;
import org.retroinfer.store.ContextPack;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.PrefixMatch;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.store.Synthetic;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * The plugin in a real OpenSearch 3.5.0 cluster (three nodes on loopback, started once for the
 * class): installed from the zip the build made with the distribution's own bin/opensearch-plugin;
 * the codec registered; contexts put, found, served back bit for bit, listed, inspected and deleted
 * through the REST API, with tenant and model isolation and bad input rejected with 4xx JSON
 * errors; two hosts sharing a context through the store, inspect and explain commands; two
 * {@code retroinfer serve} instances sharing a prompt's prefix through the cluster, per tenant; and,
 * last, every context served bit for bit after the node holding the primary stops.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RealServerTest {
  static final AttentionShape SHAPE = Synthetic.SHAPE;
  static final WaveConfig CONFIG = Synthetic.CONFIG;
  static final int CHUNK = Synthetic.CHUNK;
  static final String INDEX = "contexts-it";
  /** Three nodes: an index with one replica survives the loss of any one (the last test). */
  static final int NODES = 3;

  @TempDir static Path work;
  static OpenSearchServer server;

  @BeforeAll
  static void startServer() throws Exception {
    String why = OpenSearchServer.unavailable();
    assumeTrue(why == null, why);
    long t0 = System.nanoTime();
    server = OpenSearchServer.start(work, NODES);
    System.out.printf("RealServerTest: %d OpenSearch 3.5.0 nodes with the plugin up in %.1f s%n",
        NODES, (System.nanoTime() - t0) / 1e9);
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      server.close();
    }
  }

  @Test
  @Order(1)
  void thePluginIsInstalledAndItsCodecServesAnIndex() throws Exception {
    HttpResponse<String> plugins = server.send(get("/_cat/plugins?h=component"));
    assertTrue(plugins.body().contains("retroinfer"), plugins.body());
    HttpResponse<String> info = server.send(get("/_retroinfer"));
    assertEquals(200, info.statusCode(), info.body());
    assertTrue(info.body().contains("retroinfer_wave"), info.body());
    // an ordinary index may name the codec; one it does not know is refused
    HttpResponse<String> created = server.send(json("PUT", "/wave-codec-check",
        "{\"settings\":{\"index.codec\":\"retroinfer_wave\",\"number_of_replicas\":0}}"));
    assertEquals(200, created.statusCode(), created.body());
    HttpResponse<String> doc = server.send(json("PUT", "/wave-codec-check/_doc/1?refresh=true",
        "{\"text\":\"a document under the wave codec\"}"));
    assertEquals(201, doc.statusCode(), doc.body());
    HttpResponse<String> flushed = server.send(json("POST", "/wave-codec-check/_flush", "{}"));
    assertEquals(200, flushed.statusCode(), flushed.body());
    HttpResponse<String> segments = server.send(get("/wave-codec-check/_segments"));
    assertEquals(200, segments.statusCode(), segments.body());
    HttpResponse<String> unknown = server.send(json("PUT", "/bad-codec-check",
        "{\"settings\":{\"index.codec\":\"NoSuchCodec\"}}"));
    assertEquals(400, unknown.statusCode(), unknown.body());
  }

  @Test
  @Order(2)
  void contextsArePutFoundServedBitExactListedInspectedAndDeletedPerTenant() throws Exception {
    long seed = new SplittableRandom().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    ModelFingerprint model = fingerprint(r);
    int n = 300;
    int[] tokens = tokens(r, n);
    float[][][] kv = kv(r, n);
    Path local = work.resolve("host-a-" + seed);
    byte[] pack;
    String id;
    float[] expected;
    float[] queries = queries(r);
    try (ContextCache original = cache(kv, n)) {
      expected = attend(original, queries);
      Packed p = pack(local, model, "acme", tokens, original);
      pack = p.pack();
      id = p.id();
    }
    // put (tenant acme's context): 201, the index created with the wave codec
    HttpResponse<String> put = server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts?replicas=0",
        pack));
    assertEquals(201, put.statusCode(), put.body());
    assertTrue(put.body().contains(id), put.body());
    HttpResponse<String> settings = server.send(get("/" + INDEX + "/_settings"));
    assertTrue(settings.body().contains("\"codec\":\"retroinfer_wave\""), settings.body());

    String acme = tenantHash("acme");
    String scope = "?tenant=" + acme + "&model=" + model.hex();
    // lookup by the prefix chain of a longer prompt that starts with the context
    int[] prompt = Arrays.copyOf(tokens, n + 50);
    try (ContextStore tmp = ContextStore.open(work.resolve("chain-" + seed), CHUNK)) {
      ContextStore.Scope s = tmp.scope(model, "acme", KvDType.BFLOAT16);
      String chain = String.join("\",\"", s.hasher().chain(prompt));
      HttpResponse<String> found = server.send(json("POST", "/_retroinfer/" + INDEX + "/_lookup"
          + scope, "{\"namespace\":\"" + s.namespace() + "\",\"chain\":[\"" + chain + "\"]}"));
      assertEquals(200, found.statusCode(), found.body());
      List<?> candidates = (List<?>) parse(found.body()).get("candidates");
      assertEquals(1, candidates.size(), found.body());
      Map<?, ?> c = (Map<?, ?>) candidates.get(0);
      assertEquals(id, c.get("id"));
      assertEquals((n / CHUNK) * CHUNK, ((Number) c.get("claimed_tokens")).intValue());
      // another tenant's chain finds nothing
      ContextStore.Scope other = tmp.scope(model, "globex", KvDType.BFLOAT16);
      String otherChain = String.join("\",\"", other.hasher().chain(prompt));
      HttpResponse<String> none = server.send(json("POST", "/_retroinfer/" + INDEX + "/_lookup"
          + "?tenant=" + tenantHash("globex"), "{\"namespace\":\"" + other.namespace()
          + "\",\"chain\":[\"" + otherChain + "\"]}"));
      assertEquals(200, none.statusCode(), none.body());
      assertEquals(List.of(), parse(none.body()).get("candidates"));
    }

    // get: the same context (built back from the shard's vector fields: the same record, clusters
    // and rows), and a host loads it for decode: the same attention, bit for bit
    HttpResponse<byte[]> got = server.sendForBytes(get("/_retroinfer/" + INDEX + "/contexts/" + id
        + scope));
    assertEquals(200, got.statusCode(), new String(got.body(), StandardCharsets.UTF_8));
    TestPacks.assertSameContext(pack, got.body(), id, "seed " + seed);
    Path hostB = work.resolve("host-b-" + seed);
    ContextPack.unpack(got.body(), hostB);
    try (ContextStore store = ContextStore.openReadOnly(hostB)) {
      ContextStore.Scope s = store.scope(model, "acme", KvDType.BFLOAT16);
      PrefixMatch m = s.find(prompt).orElseThrow();
      assertEquals(n, m.matchedTokens(), "verified against the stored token ids; seed " + seed);
      try (ReusedContext reused = s.load(id, prompt, n, false)) {
        assertArrayEquals(expected, attend(reused.cache(), queries), "seed " + seed);
      }
    }

    // list and inspect, per tenant
    HttpResponse<String> list = server.send(get("/_retroinfer/" + INDEX + "/contexts" + scope));
    assertEquals(200, list.statusCode(), list.body());
    assertTrue(list.body().contains(id), list.body());
    HttpResponse<String> otherList = server.send(get("/_retroinfer/" + INDEX + "/contexts"));
    assertTrue(!otherList.body().contains(id), "the default tenant sees no one else's: "
        + otherList.body());
    HttpResponse<String> inspect = server.send(get("/_retroinfer/" + INDEX + "/contexts/" + id
        + "/_inspect" + scope));
    assertEquals(200, inspect.statusCode(), inspect.body());
    Map<String, Object> stats = parse(inspect.body());
    assertEquals(n, ((Number) stats.get("tokens")).intValue());
    assertEquals(SHAPE.layers() * SHAPE.kvHeads(), ((List<?>) stats.get("fields")).size());
    assertTrue(((Number) stats.get("clusters")).intValue() > 0, inspect.body());

    // another tenant or model: 404 for get, inspect and delete, exactly like a missing context
    for (String foreign : List.of("?tenant=" + tenantHash("globex"), "",
        "?tenant=" + acme + "&model=" + fingerprint(r).hex())) {
      HttpResponse<String> g = server.send(get("/_retroinfer/" + INDEX + "/contexts/" + id
          + foreign));
      assertEquals(404, g.statusCode(), g.body());
      assertTrue(g.body().contains("\"type\":\"resource_not_found_exception\""), g.body());
      HttpResponse<String> d = server.send(HttpRequest.newBuilder(server.uri("/_retroinfer/"
          + INDEX + "/contexts/" + id + foreign)).DELETE().build());
      assertEquals(404, d.statusCode(), d.body());
    }
    HttpResponse<String> missing = server.send(get("/_retroinfer/" + INDEX + "/contexts/c0"
        + scope));
    assertEquals(404, missing.statusCode(), missing.body());

    // delete: gone for its owner too
    HttpResponse<String> del = server.send(HttpRequest.newBuilder(server.uri("/_retroinfer/"
        + INDEX + "/contexts/" + id + scope)).DELETE().build());
    assertEquals(200, del.statusCode(), del.body());
    assertEquals(404, server.send(get("/_retroinfer/" + INDEX + "/contexts/" + id + scope))
        .statusCode());
  }

  @Test
  @Order(3)
  void badInputIsRefusedWithJsonErrors() throws Exception {
    SplittableRandom r = new SplittableRandom();
    ModelFingerprint model = fingerprint(r);
    int n = 100;
    byte[] pack;
    try (ContextCache c = cache(kv(r, n), n)) {
      pack = pack(work.resolve("bad-" + r.nextInt(1 << 30)), model, "", tokens(r, n), c).pack();
    }
    // truncated body
    HttpResponse<String> cut = server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts",
        Arrays.copyOf(pack, pack.length - 1000)));
    assertEquals(400, cut.statusCode(), cut.body());
    assertTrue(cut.body().contains("\"error\"") && cut.body().contains("not a valid context"),
        cut.body());
    // one changed byte
    byte[] flipped = pack.clone();
    flipped[flipped.length / 2] ^= 0x10;
    assertEquals(400, server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts", flipped))
        .statusCode());
    // not a pack at all, and no body
    assertEquals(400, server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts",
        "hello".getBytes(StandardCharsets.UTF_8))).statusCode());
    assertEquals(400, server.send(json("PUT", "/_retroinfer/" + INDEX + "/contexts", "{}"))
        .statusCode());
    // unknown index
    HttpResponse<String> unknown = server.send(get("/_retroinfer/no-such-index/contexts"));
    assertEquals(404, unknown.statusCode(), unknown.body());
    assertTrue(unknown.body().contains("index_not_found_exception"), unknown.body());
    // the same model with other dims than its contexts in the index
    assertEquals(201, server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts?replicas=0",
        pack)).statusCode());
    byte[] widePack = TestPacks.widePack(work.resolve("wide-" + r.nextInt(1 << 30)), model, r,
        n);
    HttpResponse<String> dims = server.send(cbor("PUT", "/_retroinfer/" + INDEX + "/contexts",
        widePack));
    assertEquals(400, dims.statusCode(), dims.body());
    assertTrue(dims.body().contains("headDim=16"), dims.body());
  }

  @Test
  @Order(4)
  void twoHostsShareAContextThroughTheStoreCommands() throws Exception {
    long seed = new SplittableRandom().nextLong();
    Path prompt = work.resolve("prompt-" + seed + ".py");
    Files.write(prompt, org.retroinfer.model.eval.PythonCorpus.fallback()
        .text(1500, new SplittableRandom(seed)));
    String url = "http://127.0.0.1:" + server.httpPort() + "/shared-" + Math.floorMod(seed, 1000);
    String local = work.resolve("local-" + seed).toString();

    // host A puts the prompt into the cluster; for comparison, a local store of the same bytes
    // (a second prefill in this JVM may differ in the last bits of its K/V, with the JIT's state,
    // and then in a token's cluster)
    com.fasterxml.jackson.databind.JsonNode put = cli(new org.retroinfer.app.cli.StoreCommand(),
        "put", "--store", url, "--file", prompt.toString(), "--tenant", "acme", "--json");
    assertEquals(1500, put.get("context").get("tokens").asInt(), put.toString());
    String id = put.get("context").get("id").asText();
    assertTrue(org.retroinfer.store.RemoteContextStore.of(url).fetch(id, "acme", null,
        Path.of(local)), "the context host A put");

    // host B (another store of its own: nothing local) finds it, loads it, decodes
    com.fasterxml.jackson.databind.JsonNode remote = cli(new org.retroinfer.app.cli.StoreCommand(),
        "get", "--store", url, "--file", prompt.toString(), "--tenant", "acme",
        "--generate", "8", "--json");
    com.fasterxml.jackson.databind.JsonNode here = cli(new org.retroinfer.app.cli.StoreCommand(),
        "get", "--store", local, "--file", prompt.toString(), "--tenant", "acme",
        "--generate", "8", "--json");
    assertEquals(1500, remote.get("match").get("matchedTokens").asInt(), remote.toString());
    assertEquals(id, remote.get("match").get("context").get("id").asText());
    assertEquals(1500, remote.get("reusedTokens").asInt(), "no prefill: " + remote);
    assertEquals(here.get("generated").asText(), remote.get("generated").asText(),
        "the same tokens as from the local store; seed " + seed);

    // inspect: the context as it travels, with the same report as a local store's
    com.fasterxml.jackson.databind.JsonNode inspected = cli(
        new org.retroinfer.app.cli.InspectCommand(), url, "--tenant", "acme", "--json");
    assertEquals(1, inspected.size(), inspected.toString());
    assertTrue(inspected.get(0).get("integrity").get("clean").asBoolean(), inspected.toString());
    assertEquals(id, inspected.get(0).get("contexts").get(0).get("id").asText());
    com.fasterxml.jackson.databind.JsonNode localInspect = cli(
        new org.retroinfer.app.cli.InspectCommand(), local, "--tenant", "acme", "--json");
    assertEquals(localInspect.get("fields").toString(), inspected.get(0).get("fields").toString(),
        "the same clusters as the local store's");

    // inspect --html: the same clusters and cluster sizes as the local store's page
    Path remoteHtml = work.resolve("inspect-remote-" + seed + ".html");
    Path localHtml = work.resolve("inspect-local-" + seed + ".html");
    cli(new org.retroinfer.app.cli.InspectCommand(), url, "--tenant", "acme", "--html",
        remoteHtml.toString(), "--json");
    cli(new org.retroinfer.app.cli.InspectCommand(), local, "--tenant", "acme", "--html",
        localHtml.toString(), "--json");
    String remotePage = Files.readString(remoteHtml);
    assertTrue(remotePage.contains(url) && remotePage.contains(id), "the page names the remote"
        + " store and the context");
    assertEquals(section(Files.readString(localHtml), "<h2>Cluster sizes", "<h2>Lucene segments"),
        section(remotePage, "<h2>Cluster sizes", "<h2>Lucene segments"),
        "the same histogram and key fields as the local store's; seed " + seed);

    // explain: the same report as over a local store of the same bytes (the pack as served), by
    // id and as the newest context; the temporary copy of the context is gone afterwards. The
    // figures are compared to 1e-4: the Vector API's sums may differ in their last bits between
    // two runs of the same code in one JVM (interpreted, then compiled).
    java.util.Set<String> before = explainTemporaries();
    Path fetched = work.resolve("fetched-" + seed);
    assertTrue(org.retroinfer.store.RemoteContextStore.of(url).fetch(id, "acme", null, fetched));
    com.fasterxml.jackson.databind.JsonNode remoteExplain = cli(
        new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant", "acme",
        "--context", id, "--json");
    com.fasterxml.jackson.databind.JsonNode localExplain = cli(
        new org.retroinfer.app.cli.ExplainCommand(), "--store", fetched.toString(), "--tenant",
        "acme", "--context", id, "--json");
    assertEquals(id, remoteExplain.get("context").asText());
    assertEquals(1500, remoteExplain.get("position").asInt());
    assertSameReport(localExplain, remoteExplain, "explain; seed " + seed);
    com.fasterxml.jackson.databind.JsonNode newest = cli(
        new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant", "acme", "--json");
    assertSameReport(localExplain, newest, "explain of the newest context; seed " + seed);
    Path explainHtml = work.resolve("explain-remote-" + seed + ".html");
    Run text = runCli(new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant",
        "acme", "--html", explainHtml.toString());
    assertEquals(0, text.exit(), text.err());
    assertTrue(text.out().startsWith("context " + id + " (1500 tokens), query at position 1500")
        && text.out().contains("report written to " + explainHtml), text.out());
    String explainPage = Files.readString(explainHtml);
    assertTrue(explainPage.contains("<h1>Explain: context " + id) && explainPage.contains(
        "polyline") && explainPage.contains(url + " context " + id), "the page explains the"
        + " context and names where it came from");

    // another tenant cannot explain it, by id or as its newest: answered as no such context
    Run byId = runCli(new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant",
        "globex", "--context", id);
    assertEquals(1, byId.exit(), byId.err());
    assertTrue(byId.err().contains("no context " + id + " of this model, K/V type and tenant in "
        + url), byId.err());
    Run byNewest = runCli(new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant",
        "globex");
    assertEquals(1, byNewest.exit(), byNewest.err());
    assertTrue(byNewest.err().contains("no context of this model and tenant in " + url),
        byNewest.err());
    Run unknown = runCli(new org.retroinfer.app.cli.ExplainCommand(), "--store", url, "--tenant",
        "acme", "--context", "c0123");
    assertEquals(1, unknown.exit(), unknown.err());
    assertTrue(unknown.err().contains("no context c0123 of this model"), unknown.err());
    assertEquals(before, explainTemporaries(), "explain removed its temporary stores");

    // another tenant finds, lists and deletes nothing
    com.fasterxml.jackson.databind.JsonNode other = cli(new org.retroinfer.app.cli.StoreCommand(),
        "get", "--store", url, "--file", prompt.toString(), "--tenant", "globex", "--json");
    assertTrue(other.get("match").isNull(), other.toString());
    assertEquals(0, cli(new org.retroinfer.app.cli.StoreCommand(), "list", "--store", url,
        "--tenant", "globex", "--json").size());
    assertEquals(1, run(new org.retroinfer.app.cli.StoreCommand(), "delete", "--store", url,
        "--tenant", "globex", id));
    com.fasterxml.jackson.databind.JsonNode list = cli(new org.retroinfer.app.cli.StoreCommand(),
        "list", "--store", url, "--tenant", "acme", "--json");
    assertEquals(1, list.size(), list.toString());
    assertEquals(id, list.get(0).get("id").asText());
    cli(new org.retroinfer.app.cli.StoreCommand(), "delete", "--store", url, "--tenant", "acme",
        id, "--json");
    assertEquals(0, cli(new org.retroinfer.app.cli.StoreCommand(), "list", "--store", url,
        "--tenant", "acme", "--json").size());
  }

  @Test
  @Order(5)
  void twoServersShareAPrefixThroughTheClusterAndNeverAcrossTenants() throws Exception {
    long seed = new SplittableRandom().nextLong();
    String url = "http://127.0.0.1:" + server.httpPort() + "/serve-" + Math.floorMod(seed, 1000);
    Path keys = work.resolve("keys-" + seed + ".txt");
    Files.writeString(keys, "key-acme acme\nkey-globex globex\n");
    String prompt = new String(org.retroinfer.model.eval.PythonCorpus.fallback()
        .text(700, new SplittableRandom(seed)), StandardCharsets.US_ASCII);
    int promptTokens = prompt.length() + 1; // and the document-start token
    Map<String, Object> request = Map.of("prompt", prompt, "max_tokens", 8, "temperature", 0);
    // two servers, each with a cache directory of its own, sharing the cluster's index
    try (org.retroinfer.serve.OpenAiServer a = serve(work.resolve("cache-a-" + seed), keys, url);
        org.retroinfer.serve.OpenAiServer b = serve(work.resolve("cache-b-" + seed), keys, url)) {
      // A computes the prompt, stores it in its cache and puts it into the cluster (background)
      com.fasterxml.jackson.databind.JsonNode first = complete(a, "key-acme", request);
      assertEquals(0, cachedTokens(first), first.toString());
      awaitMetric(a, "retroinfer_remote_puts_total", 1);
      assertEquals(0, metric(a, "retroinfer_remote_put_failures_total"));

      // B has nothing cached: it fetches A's context and reuses all of it, with A's tokens
      com.fasterxml.jackson.databind.JsonNode second = complete(b, "key-acme", request);
      assertEquals(promptTokens, cachedTokens(second), second.toString());
      assertEquals(first.at("/choices/0/text").asText(), second.at("/choices/0/text").asText(),
          "the same greedy tokens as the server that computed the prompt; seed " + seed);
      assertEquals(1, metric(b, "retroinfer_remote_hits_total"));
      assertTrue(metric(b, "retroinfer_remote_fetched_bytes_total") > 0);
      System.out.printf("RealServerTest: serve B fetched %d tokens (%.0f bytes) in %.3f s%n",
          promptTokens, metric(b, "retroinfer_remote_fetched_bytes_total"),
          metric(b, "retroinfer_remote_fetch_seconds_sum"));
      assertEquals(0, metric(b, "retroinfer_stored_contexts_total"), "nothing computed, nothing stored");
      // now in B's cache: the next request is served from it without asking the cluster again
      assertEquals(promptTokens, cachedTokens(complete(b, "key-acme", request)));
      assertEquals(1, metric(b, "retroinfer_remote_lookups_total"));

      // another tenant reuses nothing of acme's, though B has it cached and the cluster holds it
      com.fasterxml.jackson.databind.JsonNode globex = complete(b, "key-globex", request);
      assertEquals(0, cachedTokens(globex), globex.toString());
      assertEquals(1, metric(b, "retroinfer_remote_hits_total"));
      // and shares its own: B put globex's prompt, which A then reuses for globex
      awaitMetric(b, "retroinfer_remote_puts_total", 1);
      assertEquals(promptTokens, cachedTokens(complete(a, "key-globex", request)));
      assertEquals(1, metric(a, "retroinfer_remote_hits_total"));

      // admin delete on B removes acme's context from B's cache and from the cluster, so that no
      // server fetches it again (A keeps its cached copy until it evicts it)
      String id = adminIds(b, "key-acme").get(0);
      HttpResponse<String> deleted = http(b, "key-acme", "DELETE", "/admin/contexts/" + id, null);
      assertEquals(200, deleted.statusCode(), deleted.body());
      assertTrue(deleted.body().contains("\"remote\":true"), deleted.body());
      assertEquals(List.of(), adminIds(b, "key-acme"));
      assertEquals(List.of(), org.retroinfer.store.RemoteContextStore.of(url).list("acme", null));
      assertEquals(0, cachedTokens(complete(b, "key-acme", request)));
      assertEquals(List.of(id), adminIds(a, "key-acme"));
      awaitMetric(b, "retroinfer_remote_puts_total", 2); // B computed it again, and put it again

      // the cluster holds a longer prefix than B's cache: B fetches it instead of prefilling
      String longer = prompt + new String(org.retroinfer.model.eval.PythonCorpus.fallback()
          .text(400, new SplittableRandom(seed + 2)), StandardCharsets.US_ASCII);
      Map<String, Object> longRequest = Map.of("prompt", longer, "max_tokens", 8,
          "temperature", 0);
      com.fasterxml.jackson.databind.JsonNode onA = complete(a, "key-acme", longRequest);
      assertEquals(promptTokens, cachedTokens(onA), "A's own cached prefix: " + onA);
      awaitMetric(a, "retroinfer_remote_puts_total", 2);
      com.fasterxml.jackson.databind.JsonNode onB = complete(b, "key-acme", longRequest);
      assertEquals(longer.length() + 1, cachedTokens(onB), onB.toString());
      assertEquals(onA.at("/choices/0/text").asText(), onB.at("/choices/0/text").asText(),
          "seed " + seed);
      assertEquals(2, metric(b, "retroinfer_remote_hits_total"));

      // the cluster's index closed: lookups and puts fail, requests do not (a warning each, counted)
      String index = url.substring(url.lastIndexOf('/') + 1);
      HttpResponse<String> closed = server.send(json("POST", "/" + index + "/_close", "{}"));
      assertEquals(200, closed.statusCode(), closed.body());
      // (its own first line: the corpus has few documents, so two texts may start alike)
      String other = "# another prompt\n" + new String(org.retroinfer.model.eval.PythonCorpus
          .fallback().text(600, new SplittableRandom(seed + 1)), StandardCharsets.US_ASCII);
      com.fasterxml.jackson.databind.JsonNode alone = complete(a, "key-acme",
          Map.of("prompt", other, "max_tokens", 4, "temperature", 0));
      assertEquals(0, cachedTokens(alone), alone.toString());
      assertEquals(1, metric(a, "retroinfer_remote_fetch_failures_total"));
      long until = System.nanoTime() + 60_000_000_000L;
      while (metric(a, "retroinfer_remote_put_failures_total") < 1) {
        assertTrue(System.nanoTime() < until, "the put to a closed index never failed");
        Thread.sleep(50);
      }
      assertEquals(2, metric(a, "retroinfer_remote_puts_total"), "only the earlier puts went through");
      // still stored in A's cache: reused there
      assertEquals(other.length() + 1, cachedTokens(complete(a, "key-acme",
          Map.of("prompt", other, "max_tokens", 4, "temperature", 0))));
      assertEquals(200, server.send(json("POST", "/" + index + "/_open", "{}")).statusCode());
    }
  }

  static org.retroinfer.serve.OpenAiServer serve(Path cache, Path keys, String url)
      throws Exception {
    return org.retroinfer.serve.OpenAiServer.start(org.retroinfer.serve.OpenAiServer.Options
        .of(cache).withApiKeys(keys).withStorePolicy(256, 0).withRemoteStore(url));
  }

  static HttpResponse<String> http(org.retroinfer.serve.OpenAiServer s, String key, String method,
      String path, Object body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:"
        + s.port() + path)).header("Authorization", "Bearer " + key);
    b.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
        : HttpRequest.BodyPublishers.ofString(new com.fasterxml.jackson.databind.ObjectMapper()
            .writeValueAsString(body)));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    try (java.net.http.HttpClient c = java.net.http.HttpClient.newHttpClient()) {
      return c.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }
  }

  static com.fasterxml.jackson.databind.JsonNode complete(org.retroinfer.serve.OpenAiServer s,
      String key, Map<String, Object> request) throws Exception {
    HttpResponse<String> r = http(s, key, "POST", "/v1/completions", request);
    assertEquals(200, r.statusCode(), r.body());
    return new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body());
  }

  static int cachedTokens(com.fasterxml.jackson.databind.JsonNode completion) {
    return completion.at("/usage/prompt_tokens_details/cached_tokens").asInt();
  }

  static List<String> adminIds(org.retroinfer.serve.OpenAiServer s, String key) throws Exception {
    HttpResponse<String> r = http(s, key, "GET", "/admin/contexts", null);
    assertEquals(200, r.statusCode(), r.body());
    List<String> ids = new java.util.ArrayList<>();
    for (com.fasterxml.jackson.databind.JsonNode n : new com.fasterxml.jackson.databind
        .ObjectMapper().readTree(r.body()).get("data")) {
      ids.add(n.get("id").asText());
    }
    return ids;
  }

  static double metric(org.retroinfer.serve.OpenAiServer s, String name) throws Exception {
    String text = http(s, "unused", "GET", "/metrics", null).body();
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^" + name + " (\\S+)$")
        .matcher(text);
    assertTrue(m.find(), name + " in\n" + text);
    return Double.parseDouble(m.group(1));
  }

  /** Waits (up to a minute) for a background put: the metric reaches {@code at least}. */
  static void awaitMetric(org.retroinfer.serve.OpenAiServer s, String name, double atLeast)
      throws Exception {
    long until = System.nanoTime() + 60_000_000_000L;
    while (metric(s, name) < atLeast) {
      assertEquals(0, metric(s, "retroinfer_remote_put_failures_total"), "a put failed");
      assertTrue(System.nanoTime() < until, name + " stayed below " + atLeast);
      Thread.sleep(50);
    }
  }

  /** Last: it stops a node. */
  @Test
  @Order(100)
  void everyContextIsServedBitForBitAfterTheNodeHoldingThePrimaryStops() throws Exception {
    long seed = new SplittableRandom().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    ModelFingerprint model = fingerprint(r);
    String index = "replicated";
    float[] queries = queries(r);
    int count = 4;
    String[] ids = new String[count];
    byte[][] packs = new byte[count][];
    int[][] prompts = new int[count][];
    float[][] expected = new float[count][];
    for (int i = 0; i < count; i++) {
      int n = 120 + r.nextInt(200);
      prompts[i] = tokens(r, n);
      try (ContextCache c = cache(kv(r, n), n)) {
        expected[i] = attend(c, queries);
        Packed p = pack(work.resolve("replicated-" + seed + "-" + i), model, tenant(i),
            prompts[i], c);
        ids[i] = p.id();
        packs[i] = p.pack();
      }
      HttpResponse<String> put = server.send(cbor("PUT", "/_retroinfer/" + index
          + "/contexts?replicas=1", packs[i]));
      assertEquals(201, put.statusCode(), put.body());
    }
    HttpResponse<String> green = server.send(get("/_cluster/health/" + index
        + "?wait_for_status=green&timeout=60s"));
    assertTrue(green.body().contains("\"status\":\"green\""), green.body());
    String primary = null;
    for (String line : server.send(get("/_cat/shards/" + index + "?h=prirep,node")).body()
        .split("\n")) {
      String[] f = line.trim().split("\\s+");
      if (f.length == 2 && f[0].equals("p")) {
        primary = f[1];
      }
    }
    assertTrue(primary != null && primary.startsWith("node"), "primary on " + primary);
    server.stopNode(primary);
    server.awaitHealth(index, "yellow", NODES - 1);

    for (int i = 0; i < count; i++) {
      String scope = "?tenant=" + tenantHash(tenant(i)) + "&model=" + model.hex();
      HttpResponse<byte[]> got = server.sendForBytes(get("/_retroinfer/" + index + "/contexts/"
          + ids[i] + scope));
      assertEquals(200, got.statusCode(), new String(got.body(), StandardCharsets.UTF_8));
      TestPacks.assertSameContext(packs[i], got.body(), ids[i], "context " + i + " after "
          + primary + " stopped");
      Path host = work.resolve("replicated-host-" + seed + "-" + i);
      ContextPack.unpack(got.body(), host);
      try (ContextStore store = ContextStore.openReadOnly(host);
          ReusedContext reused = store.scope(model, tenant(i), KvDType.BFLOAT16)
              .load(ids[i], prompts[i], prompts[i].length, false)) {
        assertArrayEquals(expected[i], attend(reused.cache(), queries), "seed " + seed);
      }
      String other = "?tenant=" + tenantHash(tenant(i + 1)) + "&model=" + model.hex();
      assertEquals(404, server.send(get("/_retroinfer/" + index + "/contexts/" + ids[i] + other))
          .statusCode(), "another tenant's context, after the failover too");
    }
    HttpResponse<String> list = server.send(get("/_retroinfer/" + index + "/contexts?tenant="
        + tenantHash("acme")));
    assertEquals(count / 2, ((List<?>) parse(list.body()).get("contexts")).size(), list.body());
  }

  static String tenant(int i) {
    return i % 2 == 0 ? "acme" : "globex";
  }

  static com.fasterxml.jackson.databind.JsonNode cli(Object command, String... args)
      throws Exception {
    Run r = runCli(command, args);
    assertEquals(0, r.exit(), String.join(" ", args) + ": " + r.err() + r.out());
    return new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
  }

  record Run(int exit, String out, String err) {}

  /** A command run in this JVM as the retroinfer launcher runs it (its error handling too). */
  static Run runCli(Object command, String... args) {
    java.io.StringWriter out = new java.io.StringWriter();
    java.io.StringWriter err = new java.io.StringWriter();
    picocli.CommandLine cl = new picocli.CommandLine(command);
    cl.setOut(new java.io.PrintWriter(out));
    cl.setErr(new java.io.PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  /**
   * Two reports alike: the same fields, texts, integers and arrays, and floating-point figures
   * within 1e-4.
   */
  static void assertSameReport(com.fasterxml.jackson.databind.JsonNode expected,
      com.fasterxml.jackson.databind.JsonNode actual, String where) {
    if (expected.isFloatingPointNumber() || actual.isFloatingPointNumber()) {
      assertEquals(expected.asDouble(), actual.asDouble(), 1e-4, where);
    } else if (expected.isContainerNode()) {
      assertEquals(expected.size(), actual.size(), where);
      if (expected.isArray()) {
        for (int i = 0; i < expected.size(); i++) {
          assertSameReport(expected.get(i), actual.get(i), where + "[" + i + "]");
        }
      } else {
        expected.fieldNames().forEachRemaining(f -> assertSameReport(expected.get(f),
            actual.path(f), where + "." + f));
      }
    } else {
      assertEquals(expected, actual, where);
    }
  }

  /** The part of a page from {@code from} up to {@code to}. */
  static String section(String page, String from, String to) {
    int a = page.indexOf(from);
    int b = page.indexOf(to, Math.max(a, 0));
    assertTrue(a >= 0 && b > a, "no " + from + " ... " + to + " in the page");
    return page.substring(a, b);
  }

  /** The temporary directories of remote explains now present. */
  static java.util.Set<String> explainTemporaries() throws java.io.IOException {
    try (var files = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return files.map(f -> f.getFileName().toString())
          .filter(n -> n.startsWith("retroinfer-explain"))
          .collect(java.util.stream.Collectors.toSet());
    }
  }

  static int run(Object command, String... args) {
    picocli.CommandLine cl = new picocli.CommandLine(command);
    cl.setOut(new java.io.PrintWriter(new java.io.StringWriter()));
    cl.setErr(new java.io.PrintWriter(new java.io.StringWriter()));
    return cl.execute(args);
  }

  // ------------------------------------------------------------------ helpers

  static HttpRequest get(String path) {
    return HttpRequest.newBuilder(server.uri(path)).GET().build();
  }

  static HttpRequest json(String method, String path, String body) {
    return HttpRequest.newBuilder(server.uri(path)).header("Content-Type", "application/json")
        .method(method, HttpRequest.BodyPublishers.ofString(body)).build();
  }

  /** A put body: CBOR {"pack": byte string}. */
  static HttpRequest cbor(String method, String path, byte[] pack) {
    return HttpRequest.newBuilder(server.uri(path)).header("Content-Type", "application/cbor")
        .header("Accept", "application/json")
        .method(method, HttpRequest.BodyPublishers.ofByteArray(TestPacks.cborBody(pack))).build();
  }
}
