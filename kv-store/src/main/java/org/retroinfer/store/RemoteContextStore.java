package org.retroinfer.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.retroinfer.wave.kv.KvDType;

/**
 * A context store in an OpenSearch cluster with the RetroInfer plugin, at
 * {@code http://HOST:PORT/INDEX}: the same contexts, tenants and models as a local store, through
 * the plugin's REST API ({@code /_retroinfer/INDEX/...}).
 *
 * <p>A context travels as a {@link ContextPack} (the files of a store that holds only it: its K/V
 * in the wave codec's files with the clusters this host built). To find and load one, the host
 * asks the cluster for its tenant's candidates by the prompt's chained prefix hashes, fetches the
 * best, and opens it as an ordinary local store ({@link #materialize}): the hit is verified against
 * the stored token ids and loaded by the same code as a local store's, so the hits, the
 * verification and the answers are the same.
 */
public final class RemoteContextStore {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final URI base;
  private final String index;
  private final HttpClient http;
  private final Duration requestTimeout; // null: a request may wait for its answer indefinitely

  private RemoteContextStore(URI base, String index, HttpClient http, Duration requestTimeout) {
    this.base = base;
    this.index = index;
    this.http = http;
    this.requestTimeout = requestTimeout;
  }

  /**
   * The same store, whose requests fail with an {@link IOException} when their answer has not
   * begun within {@code timeout} (a server that must not hang on a stalled cluster).
   */
  public RemoteContextStore withRequestTimeout(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("a request timeout must be positive, got " + timeout);
    }
    return new RemoteContextStore(base, index, http, timeout);
  }

  /** Whether a {@code --store} value names a remote store ({@code http://} or {@code https://}). */
  public static boolean isRemote(String location) {
    return location != null && (location.startsWith("http://") || location.startsWith("https://"));
  }

  /** The store at {@code http://HOST:PORT/INDEX}. */
  public static RemoteContextStore of(String location) {
    URI uri = URI.create(location);
    String path = uri.getPath() == null ? "" : uri.getPath().replaceAll("^/+|/+$", "");
    if (uri.getHost() == null || path.isEmpty() || path.contains("/")
        || !path.matches("[a-z0-9][a-z0-9_.\\-]*")) {
      throw new IllegalArgumentException("a remote store is http://HOST:PORT/INDEX with one"
          + " lower-case OpenSearch index name, got '" + location + "'");
    }
    return new RemoteContextStore(URI.create(uri.getScheme() + "://" + uri.getRawAuthority()),
        path, HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build(), null);
  }

  @Override
  public String toString() {
    return base + "/" + index;
  }

  /**
   * Starts connecting to the store in the background (a request for the plugin's description,
   * whose answer is ignored) and returns at once. A process that has other work before its first
   * real request, such as loading the model, overlaps the connection and the HTTP client's start
   * with it; the next request reuses the open connection. Failures are left to that request.
   */
  public CompletableFuture<Void> connect() {
    return http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/_retroinfer")).GET().build(),
        HttpResponse.BodyHandlers.discarding()).handle((r, e) -> null);
  }

  /** This tenant's contexts (of {@code model}, or of every model when null), oldest first. */
  public List<ContextInfo> list(String tenantSalt, ModelFingerprint model) throws IOException {
    JsonNode r = json(send(HttpRequest.newBuilder(uri("/contexts", tenantSalt, model)).GET()));
    List<ContextInfo> out = new ArrayList<>();
    for (JsonNode c : r.path("contexts")) {
      out.add(info(c));
    }
    return out;
  }

  /** Deletes this tenant's context {@code id}; false if the tenant (and model) has no such one. */
  public boolean delete(String id, String tenantSalt, ModelFingerprint model) throws IOException {
    HttpResponse<byte[]> r = http(HttpRequest.newBuilder(uri("/contexts/" + id, tenantSalt, model))
        .DELETE());
    if (r.statusCode() == 404) {
      return false;
    }
    check(r);
    return true;
  }

  /** What a put sent: the context id, the pack's size, the time to pack it and to send it. */
  public record Put(String id, long bytes, long packNanos, long sendNanos) {}

  /** Stores the one context of the store at {@code storeDir} (closed). */
  public Put put(Path storeDir) throws IOException {
    long t0 = System.nanoTime();
    byte[] pack = ContextPack.pack(storeDir);
    long packed = System.nanoTime() - t0;
    // CBOR {"pack": byte string}: OpenSearch takes a body only in one of its content types
    ByteBuffer head = ByteBuffer.allocate(11);
    head.put((byte) 0xA1).put((byte) 0x64).put("pack".getBytes(StandardCharsets.US_ASCII))
        .put((byte) 0x5A).putInt(pack.length);
    HttpRequest.Builder b = HttpRequest.newBuilder(uri("/contexts", null, null))
        .header("Content-Type", "application/cbor")
        .PUT(HttpRequest.BodyPublishers.ofByteArrays(List.of(head.array(), pack)));
    long s0 = System.nanoTime();
    String id = json(send(b)).path("id").asText();
    return new Put(id, pack.length, packed, System.nanoTime() - s0);
  }

  /** The pack of this tenant's and model's context {@code id}. */
  public byte[] get(String id, String tenantSalt, ModelFingerprint model) throws IOException {
    HttpResponse<byte[]> r = http(HttpRequest.newBuilder(uri("/contexts/" + id, tenantSalt, model))
        .GET());
    check(r);
    return r.body();
  }

  /**
   * Writes into the new directory {@code dir} a local store that holds only this tenant's and
   * model's context {@code id}, as it travels (its files checked whole when opened, like any
   * store's). False, with nothing written, when the tenant and model have no such context (it was
   * never stored, was deleted, or is another tenant's or model's: the same answer for all three).
   * An unknown index is a {@link NoSuchIndexException}.
   */
  public boolean fetch(String id, String tenantSalt, ModelFingerprint model, Path dir)
      throws IOException {
    HttpResponse<byte[]> r = http(HttpRequest.newBuilder(uri("/contexts/" + enc(id), tenantSalt,
        model)).GET());
    if (r.statusCode() == 404 && !errorType(r).equals("index_not_found_exception")) {
      return false;
    }
    check(r);
    ContextPack.unpack(r.body(), dir);
    return true;
  }

  /** A candidate of a lookup: a context and the tokens its prefix keys claim to share. */
  public record Candidate(String id, int claimedTokens, int tokens) {}

  /** This scope's contexts sharing a whole chunk with {@code prompt}, longest claim first. */
  public List<Candidate> lookup(int[] prompt, ModelFingerprint model, String tenantSalt,
      KvDType kvType, int chunkTokens) throws IOException {
    PrefixHasher hasher = new PrefixHasher(model, tenantSalt, kvType, chunkTokens);
    String[] chain = hasher.chain(prompt);
    if (chain.length == 0) {
      return List.of();
    }
    var body = JSON.createObjectNode().put("namespace", hasher.namespace());
    var arr = body.putArray("chain");
    for (String h : chain) {
      arr.add(h);
    }
    JsonNode r = json(send(HttpRequest.newBuilder(uri("/_lookup", tenantSalt, model))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))));
    List<Candidate> out = new ArrayList<>();
    for (JsonNode c : r.path("candidates")) {
      out.add(new Candidate(c.path("id").asText(), c.path("claimed_tokens").asInt(),
          c.path("tokens").asInt()));
    }
    out.sort(Comparator.comparingInt((Candidate c) -> -c.claimedTokens())
        .thenComparingInt(Candidate::tokens));
    return out;
  }

  /**
   * Writes into the new directory {@code dir} a local store that holds this scope's best verified
   * stored prefix of {@code prompt} (the candidates are tried longest first and each is verified
   * against its stored token ids, as a local store does), or no context when there is none, and
   * gives it back open, read-only ({@link Materialized#store()}, which the caller closes): the
   * remote store's view for this prompt. {@code forPut}: a missing index is an empty store (the put
   * creates it); otherwise it is an error.
   */
  public Materialized materialize(Path dir, int[] prompt, ModelFingerprint model,
      String tenantSalt, KvDType kvType, boolean forPut) throws IOException {
    long t0 = System.nanoTime();
    List<Candidate> candidates;
    try {
      candidates = lookup(prompt, model, tenantSalt, kvType, PrefixHasher.DEFAULT_CHUNK_TOKENS);
    } catch (NoSuchIndexException e) {
      if (!forPut) {
        throw e;
      }
      candidates = List.of(); // the put creates the index
    }
    long lookup = System.nanoTime() - t0;
    long fetch = 0;
    long bytes = 0;
    for (Candidate c : candidates.subList(0, Math.min(3, candidates.size()))) {
      long f0 = System.nanoTime();
      byte[] pack;
      try {
        pack = get(c.id(), tenantSalt, model);
      } catch (IllegalArgumentException e) {
        continue; // deleted in between
      }
      fetch += System.nanoTime() - f0;
      bytes += pack.length;
      deleteTree(dir);
      ContextPack.unpack(pack, dir);
      ContextStore s = ContextStore.openReadOnly(dir);
      boolean kept = false;
      try {
        Optional<PrefixMatch> m = s.scope(model, tenantSalt, kvType).find(prompt);
        if (m.isPresent()) {
          kept = true;
          return new Materialized(s, m, lookup, fetch, bytes, System.nanoTime() - t0);
        }
      } finally {
        if (!kept) {
          s.close();
        }
      }
    }
    deleteTree(dir);
    ContextStore.open(dir, PrefixHasher.DEFAULT_CHUNK_TOKENS).close(); // an empty store
    return new Materialized(ContextStore.openReadOnly(dir), Optional.empty(), lookup, fetch, bytes,
        System.nanoTime() - t0);
  }

  /**
   * What {@link #materialize} found, and its cost: the store it wrote, open (the caller closes it),
   * the match in it, the lookup, the transfer of the packs it fetched ({@code bytes}), and the whole
   * (with unpacking and verification).
   */
  public record Materialized(ContextStore store, Optional<PrefixMatch> match, long lookupNanos,
      long fetchNanos, long bytes, long totalNanos) {}

  /** Removes a directory tree this client wrote (a materialized store). */
  public static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  // ------------------------------------------------------------------ HTTP

  private URI uri(String path, String tenantSalt, ModelFingerprint model) {
    StringBuilder q = new StringBuilder();
    if (tenantSalt != null && !tenantSalt.isEmpty()) {
      q.append("tenant=").append(enc(ContextStore.tenantHash(tenantSalt)));
    }
    if (model != null) {
      q.append(q.isEmpty() ? "" : "&").append("model=").append(enc(model.hex()));
    }
    return URI.create(base + "/_retroinfer/" + index + path + (q.isEmpty() ? "" : "?" + q));
  }

  private static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  private HttpResponse<byte[]> http(HttpRequest.Builder b) throws IOException {
    if (requestTimeout != null) {
      b.timeout(requestTimeout);
    }
    try {
      return http.send(b.header("Accept", "application/json").build(),
          HttpResponse.BodyHandlers.ofByteArray());
    } catch (java.net.http.HttpConnectTimeoutException e) {
      throw new IOException("cannot connect to the remote store " + this + " (no connection"
          + " within 10 s): is OpenSearch running there with the retroinfer plugin?", e);
    } catch (java.net.http.HttpTimeoutException e) {
      long ms = requestTimeout.toMillis();
      throw new IOException("the remote store " + this + " did not answer within "
          + (ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms"), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while talking to " + this, e);
    } catch (java.net.ConnectException e) {
      throw new IOException("cannot connect to the remote store " + this + ": is OpenSearch"
          + " running there with the retroinfer plugin?", e);
    }
  }

  private byte[] send(HttpRequest.Builder b) throws IOException {
    HttpResponse<byte[]> r = http(b);
    check(r);
    return r.body();
  }

  /** The type of an OpenSearch JSON error ({@code error.type}), or "" when there is none. */
  private static String errorType(HttpResponse<byte[]> r) {
    try {
      return JSON.readTree(r.body()).path("error").path("type").asText("");
    } catch (IOException notJson) {
      return "";
    }
  }

  private void check(HttpResponse<byte[]> r) throws IOException {
    if (r.statusCode() / 100 == 2) {
      return;
    }
    String reason = new String(r.body(), StandardCharsets.UTF_8);
    String type = "";
    try {
      JsonNode e = JSON.readTree(r.body()).path("error");
      if (e.has("reason")) {
        reason = e.path("reason").asText();
        type = e.path("type").asText();
      }
    } catch (IOException ignored) {
      // not JSON: the raw text
    }
    if (type.equals("index_not_found_exception")) {
      throw new NoSuchIndexException("remote store " + this + ": " + reason + " (a put creates"
          + " it)");
    }
    if (r.statusCode() == 404 || r.statusCode() == 400) {
      throw new IllegalArgumentException("remote store " + this + ": " + reason);
    }
    throw new IOException("remote store " + this + " answered " + r.statusCode() + ": " + reason);
  }

  /** The remote store's index does not exist. */
  public static final class NoSuchIndexException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    NoSuchIndexException(String message) {
      super(message);
    }
  }

  private static JsonNode json(byte[] body) throws IOException {
    return JSON.readTree(body);
  }

  private static ContextInfo info(JsonNode c) {
    return new ContextInfo(c.path("id").asText(), c.path("name").asText(""),
        c.path("kind").asText(), c.path("namespace").asText(), c.path("model").asText(),
        c.path("tenant").asText(""), c.path("tokens").asInt(), c.path("has_logits").asBoolean(),
        Instant.ofEpochMilli(c.path("created").asLong()), c.path("shape").asText(),
        c.path("config").asText());
  }
}
