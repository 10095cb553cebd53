package org.retroinfer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.retroinfer.app.ModelFingerprints;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.store.StoreDamagedException;
import org.retroinfer.wave.WaveConfig;

/**
 * The OpenAI-compatible server over one model and one context store, on Helidon SE's web server.
 *
 * <ul>
 *   <li>{@code POST /v1/completions}, {@code POST /v1/chat/completions} ({@link ChatTemplate}),
 *       with {@code "stream": true} as server-sent events; {@code GET /v1/models}.
 *   <li>Every request reuses the longest prefix of its prompt that its tenant stored, prefills only
 *       the rest, and stores its prompt when it computed at least {@code storeMinTokens} tokens;
 *       {@code usage.prompt_tokens_details.cached_tokens} says how many tokens were reused.
 *   <li>Tenants: the API key ({@link ApiKeys}) selects the store's tenant salt, and a request's
 *       {@code cache_salt} narrows it further; no tenant reuses, lists or deletes another's
 *       contexts.
 *   <li>{@code GET /health}, {@code GET /metrics} ({@link ServerMetrics}), and the admin API of the
 *       caller's tenant: {@code GET /admin/contexts}, {@code POST|DELETE /admin/contexts/ID/pin},
 *       {@code DELETE /admin/contexts/ID}.
 *   <li>With a remote store ({@link Options#remoteStore}, shared with other servers), the store is
 *       this server's local cache of it ({@link RemoteTier}): longer prefixes are fetched from the
 *       remote, stored prompts are put there in the background, and an admin delete removes the
 *       remote copy too; eviction and pins act on the cache.
 *   <li>Errors are OpenAI's JSON ({@code {"error": {...}}}) with 400, 401, 404, 413, 429, 500,
 *       502 (the remote store failed an admin delete) or 503.
 * </ul>
 */
public final class OpenAiServer implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_STOPS = 4;
  /** How long a call to the remote store may wait for the start of its answer. */
  static final Duration REMOTE_TIMEOUT = Duration.ofSeconds(60);

  /**
   * How to run a server.
   *
   * @param store the store directory (created if missing)
   * @param model the checkpoint directory, or null for the shipped model
   * @param host the address to listen on
   * @param port the port (0: any free port)
   * @param apiKeys the key file, or null for one local tenant
   * @param storeMinTokens a prompt is stored for reuse when the request computed at least this
   *     many of its tokens (not reused from the store); 0: none is stored
   * @param storeCapacityBytes the store's capacity (0: unbounded); beyond it the least recently
   *     used unpinned contexts are evicted
   * @param computeThreads requests computed at once
   * @param queue requests that wait for a compute thread; beyond them, 429
   * @param maxBodyBytes the largest request body; beyond it, 413
   * @param shutdownGrace how long a shutdown lets requests in flight finish
   * @param warmUp whether to run a request's code paths once at start, on scratch data in a
   *     temporary store, so that the first requests do not wait for the JIT compiler
   * @param remoteStore a remote store shared with other servers ({@code http://HOST:PORT/INDEX}),
   *     or null; with one, {@code store} is this server's local cache of it ({@link RemoteTier})
   */
  public record Options(Path store, Path model, String host, int port, Path apiKeys,
      int storeMinTokens, long storeCapacityBytes, int computeThreads, int queue,
      long maxBodyBytes, Duration shutdownGrace, boolean warmUp, String remoteStore) {

    /** Defaults for a store directory: the shipped model, loopback, any port. */
    public static Options of(Path store) {
      return new Options(store, null, "127.0.0.1", 0, null, 256, 0, 2, 32, 4 << 20,
          Duration.ofSeconds(30), false, null);
    }

    public Options withPort(int p) {
      return new Options(store, model, host, p, apiKeys, storeMinTokens, storeCapacityBytes,
          computeThreads, queue, maxBodyBytes, shutdownGrace, warmUp, remoteStore);
    }

    public Options withApiKeys(Path keys) {
      return new Options(store, model, host, port, keys, storeMinTokens, storeCapacityBytes,
          computeThreads, queue, maxBodyBytes, shutdownGrace, warmUp, remoteStore);
    }

    public Options withStorePolicy(int minTokens, long capacityBytes) {
      return new Options(store, model, host, port, apiKeys, minTokens, capacityBytes,
          computeThreads, queue, maxBodyBytes, shutdownGrace, warmUp, remoteStore);
    }

    public Options withCompute(int threads, int queued) {
      return new Options(store, model, host, port, apiKeys, storeMinTokens, storeCapacityBytes,
          threads, queued, maxBodyBytes, shutdownGrace, warmUp, remoteStore);
    }

    public Options withShutdownGrace(Duration grace) {
      return new Options(store, model, host, port, apiKeys, storeMinTokens, storeCapacityBytes,
          computeThreads, queue, maxBodyBytes, grace, warmUp, remoteStore);
    }

    public Options withMaxBodyBytes(long bytes) {
      return new Options(store, model, host, port, apiKeys, storeMinTokens, storeCapacityBytes,
          computeThreads, queue, bytes, shutdownGrace, warmUp, remoteStore);
    }

    /** With {@code url} ({@code http://HOST:PORT/INDEX}) as the shared store; {@code store} caches it. */
    public Options withRemoteStore(String url) {
      return new Options(store, model, host, port, apiKeys, storeMinTokens, storeCapacityBytes,
          computeThreads, queue, maxBodyBytes, shutdownGrace, warmUp, url);
    }
  }

  private final Options options;
  private final Llama model;
  private final String modelId;
  private final long created = System.currentTimeMillis() / 1000;
  private final ModelFingerprint fingerprint;
  private final ContextStore store;
  private final ApiKeys keys;
  private final ServerMetrics metrics;
  private final StoreKeeper keeper;
  private final RemoteTier remote; // null without a remote store
  private final Engine engine;
  private final WebServer web;
  private final AtomicBoolean stopping = new AtomicBoolean();
  /** Completion requests whose handler has not returned (a stream still being written). */
  private final java.util.concurrent.atomic.AtomicInteger answering =
      new java.util.concurrent.atomic.AtomicInteger();

  private OpenAiServer(Options o, Llama model, ModelDirectory dir, ContextStore store, ApiKeys keys,
      RemoteContextStore remoteStore) throws IOException {
    this.options = o;
    this.model = model;
    this.modelId = dir.path().getFileName().toString();
    this.fingerprint = ModelFingerprints.of(dir);
    this.store = store;
    this.keys = keys;
    this.metrics = new ServerMetrics(this::storeBytes, this::storeContexts);
    this.keeper = new StoreKeeper(store, o.storeCapacityBytes(), metrics);
    this.remote = remoteStore == null ? null : new RemoteTier(remoteStore, store, fingerprint,
        WaveConfig.defaults().kvType(), metrics);
    this.engine = new Engine(model, store, fingerprint, WaveConfig.defaults(), keeper, remote,
        metrics, o.computeThreads(), o.queue());
    this.web = WebServer.builder()
        .host(o.host())
        .port(o.port())
        .shutdownHook(false) // close() stops it, after the requests in flight
        .routing(this::routes)
        .build();
  }

  /** Loads the model, opens the store and starts listening. */
  public static OpenAiServer start(Options o) throws IOException {
    check(o);
    probe(o.host(), o.port());
    ApiKeys keys = o.apiKeys() == null ? ApiKeys.none() : ApiKeys.read(o.apiKeys());
    RemoteContextStore remoteStore = null;
    if (o.remoteStore() != null) {
      // a stalled cluster fails a lookup (the request goes on) instead of holding a compute thread
      remoteStore = RemoteContextStore.of(o.remoteStore()).withRequestTimeout(REMOTE_TIMEOUT);
      RemoteTier.probe(remoteStore); // a wrong address fails here, before the model loads
    }
    ModelDirectory dir = o.model() == null ? ModelDirectory.shipped() : ModelDirectory.of(o.model());
    Llama model = Llama.load(dir);
    ContextStore store = null;
    try {
      if (o.warmUp()) {
        WarmUp.run(model, ModelFingerprints.of(dir), WaveConfig.defaults());
      }
      store = ContextStore.open(o.store());
      OpenAiServer s = new OpenAiServer(o, model, dir, store, keys, remoteStore);
      s.web.start();
      if (s.web.isRunning() && s.web.port() > 0) {
        return s;
      }
      // the address was taken since the probe (Helidon logged why)
      s.web.stop();
      s.engine.stopNow();
      if (s.remote != null) {
        s.remote.stopNow();
      }
      throw cannotListen(o.host(), o.port(), "the web server did not start");
    } catch (IOException | RuntimeException e) {
      if (store != null) {
        store.close();
      }
      model.close();
      throw e;
    }
  }

  /** Fails with a clear message, before the model loads, when the address cannot be bound. */
  private static void probe(String host, int port) {
    try (java.net.ServerSocket socket = new java.net.ServerSocket()) {
      socket.setReuseAddress(true);
      socket.bind(new java.net.InetSocketAddress(host, port));
    } catch (IOException | RuntimeException e) {
      throw cannotListen(host, port, e.getMessage());
    }
  }

  private static IllegalArgumentException cannotListen(String host, int port, String why) {
    return new IllegalArgumentException("cannot listen on " + host + ":" + port + " (" + why
        + "); is another server running there? Choose another --port (0 picks a free one) or"
        + " --host");
  }

  private static void check(Options o) {
    if (o.port() < 0 || o.port() > 65535) {
      throw new IllegalArgumentException("port must be 0 (any free port) to 65535, got " + o.port());
    }
    if (o.computeThreads() < 1) {
      throw new IllegalArgumentException("at least one compute thread is needed, got "
          + o.computeThreads());
    }
    if (o.queue() < 0 || o.storeMinTokens() < 0 || o.storeCapacityBytes() < 0
        || o.maxBodyBytes() < 1) {
      throw new IllegalArgumentException("queue, store-min-tokens and store capacity must be 0 or"
          + " more, and the body limit positive: got " + o.queue() + ", " + o.storeMinTokens() + ", "
          + o.storeCapacityBytes() + ", " + o.maxBodyBytes());
    }
  }

  /** The port it listens on. */
  public int port() {
    return web.port();
  }

  public String modelId() {
    return modelId;
  }

  public Path storeDirectory() {
    return store.directory();
  }

  /** The store as the start line names it: its directory, or the remote store and its cache. */
  public String storeDescription() {
    return remote == null ? store.directory().toString()
        : remote + " (local cache " + store.directory() + ")";
  }

  public String tenancy() {
    return keys.toString();
  }

  /**
   * Graceful shutdown: new requests get 503, requests in flight may finish within the grace
   * period (then they are cancelled: a stream ends with an error event), the web server stops,
   * and the store closes with every put committed or not begun.
   */
  @Override
  public void close() throws IOException {
    if (!stopping.compareAndSet(false, true)) {
      return;
    }
    try {
      engine.shutdown(options.shutdownGrace().toMillis());
      // the generations have ended: let their handlers send what is left (a few ms)
      long until = System.nanoTime() + 5_000_000_000L;
      while (answering.get() > 0 && System.nanoTime() < until) {
        Thread.sleep(5);
      }
      if (remote != null) {
        remote.close(options.shutdownGrace().toMillis()); // the puts queued, before the cache closes
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      try {
        web.stop();
      } finally {
        try {
          store.close();
        } finally {
          model.close();
        }
      }
    }
  }

  // ------------------------------------------------------------------ routing

  @FunctionalInterface
  private interface Endpoint {
    void handle(ServerRequest req, ServerResponse res) throws Exception;
  }

  private void routes(HttpRouting.Builder r) {
    r.get("/health", wrap("health", (req, res) -> {
      if (stopping.get()) {
        throw ApiError.unavailable("the server is shutting down");
      }
      sendJson(res, 200, JSON.createObjectNode().put("status", "ok"));
    }));
    r.get("/metrics", wrap("metrics", (req, res) -> {
      res.header("Content-Type", ServerMetrics.contentType());
      res.send(metrics.scrape());
    }));
    r.get("/v1/models", wrap("models", (req, res) -> {
      tenant(req);
      ObjectNode list = JSON.createObjectNode().put("object", "list");
      list.putArray("data").add(modelJson());
      sendJson(res, 200, list);
    }));
    r.get("/v1/models/{id}", wrap("models", (req, res) -> {
      tenant(req);
      String id = req.path().pathParameters().get("id");
      if (!id.equals(modelId)) {
        throw modelNotFound(id);
      }
      sendJson(res, 200, modelJson());
    }));
    r.post("/v1/completions", wrap("completions", (req, res) -> complete(req, res, false)));
    r.post("/v1/chat/completions", wrap("chat", (req, res) -> complete(req, res, true)));
    r.get("/admin/contexts", wrap("admin", this::listContexts));
    r.post("/admin/contexts/{id}/pin", wrap("admin", (req, res) -> pin(req, res, true)));
    r.delete("/admin/contexts/{id}/pin", wrap("admin", (req, res) -> pin(req, res, false)));
    r.delete("/admin/contexts/{id}", wrap("admin", this::deleteContext));
    r.any(wrap("unknown", (req, res) -> {
      throw ApiError.notFound("unknown_url", "no route " + req.prologue().method().text() + " "
          + req.path().path() + "; this server answers POST /v1/completions, POST"
          + " /v1/chat/completions, GET /v1/models, GET /health, GET /metrics and /admin/contexts");
    }));
  }

  /** Runs an endpoint, answering its errors as OpenAI's JSON and counting the answer. */
  private io.helidon.webserver.http.Handler wrap(String endpoint, Endpoint e) {
    return (req, res) -> {
      try {
        e.handle(req, res);
      } catch (ApiError a) {
        sendError(res, a);
      } catch (StoreDamagedException d) {
        sendError(res, ApiError.internal(d.getMessage()));
      } catch (Exception | Error x) {
        System.getLogger(OpenAiServer.class.getName()).log(System.Logger.Level.WARNING,
            endpoint + " failed: " + x, x);
        sendError(res, ApiError.internal("internal error: " + x.getMessage() + " ("
            + x.getClass().getSimpleName() + "); the server log has the details"));
      } finally {
        metrics.requests.labelValues(endpoint, Integer.toString(res.status().code())).inc();
      }
    };
  }

  private static void sendError(ServerResponse res, ApiError a) {
    if (res.isSent()) {
      return; // a stream already started: its error went out as an event
    }
    ObjectNode err = JSON.createObjectNode();
    err.putObject("error").put("message", a.getMessage()).put("type", a.type)
        .put("param", a.param).put("code", a.code);
    if (a.status == 429) {
      res.header("Retry-After", "1");
    }
    sendJson(res, a.status, err);
  }

  private static void sendJson(ServerResponse res, int status, JsonNode body) {
    res.status(status);
    res.header("Content-Type", "application/json");
    try {
      res.send(JSON.writeValueAsBytes(body));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private ObjectNode modelJson() {
    return JSON.createObjectNode().put("id", modelId).put("object", "model")
        .put("created", created).put("owned_by", "retroinfer");
  }

  private ApiError modelNotFound(String id) {
    return ApiError.notFound("model_not_found", "the model '" + id + "' does not exist; this"
        + " server has '" + modelId + "' (GET /v1/models)");
  }

  private String tenant(ServerRequest req) {
    return keys.tenant(req.headers().first(io.helidon.http.HeaderNames.AUTHORIZATION)
        .orElse(null));
  }

  private JsonNode readJson(ServerRequest req) throws IOException {
    long limit = options.maxBodyBytes();
    var length = req.headers().contentLength();
    if (length.isPresent() && length.getAsLong() > limit) {
      throw tooLarge(length.getAsLong());
    }
    byte[] body;
    try (InputStream in = req.content().inputStream()) {
      body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
    }
    if (body.length > limit) {
      throw tooLarge(body.length);
    }
    if (body.length == 0) {
      throw ApiError.invalid(null, "the request has no body; send a JSON object");
    }
    try {
      JsonNode n = JSON.readTree(body);
      if (n == null || !n.isObject()) {
        throw ApiError.invalid(null, "the body must be a JSON object");
      }
      return n;
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw ApiError.invalid(null, "the body is not valid JSON: " + e.getOriginalMessage());
    }
  }

  private ApiError tooLarge(long bytes) {
    return ApiError.tooLarge("the request body has " + (bytes > options.maxBodyBytes() ? "more"
        + " than " : "") + options.maxBodyBytes() + " bytes, the most this server takes"
        + " (--max-body-bytes)");
  }

  // ------------------------------------------------------------------ completions

  private void complete(ServerRequest req, ServerResponse res, boolean chat) throws Exception {
    if (stopping.get()) {
      throw ApiError.unavailable("the server is shutting down");
    }
    String tenant = tenant(req);
    JsonNode body = readJson(req);
    Generation g = parse(body, tenant, chat);
    boolean stream = bool(body, "stream", false);
    boolean usageInStream = bool(body.path("stream_options"), "include_usage", false);
    String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
    Engine.Job job = engine.submit(g);
    answering.incrementAndGet();
    try {
      Engine.Event first = job.next();
      if (first instanceof Engine.Failed f) {
        throw failure(f.error());
      }
      if (stream) {
        stream(res, job, id, chat, usageInStream);
      } else {
        StringBuilder text = new StringBuilder();
        for (Engine.Event e = job.next(); ; e = job.next()) {
          if (e instanceof Engine.Text t) {
            text.append(t.text());
          } else if (e instanceof Engine.Finished f) {
            sendJson(res, 200, completion(id, chat, text.toString(), f));
            return;
          } else if (e instanceof Engine.Failed f) {
            throw failure(f.error());
          }
        }
      }
    } finally {
      job.cancel(); // a no-op after the end; stops the work when the client went away
      answering.decrementAndGet();
    }
  }

  private static ApiError failure(Throwable e) {
    if (e instanceof ApiError a) {
      return a;
    }
    if (e instanceof CancellationException) {
      return ApiError.unavailable("the request was cancelled: the server is shutting down");
    }
    if (e instanceof IllegalArgumentException) {
      return ApiError.invalid(null, e.getMessage());
    }
    System.getLogger(OpenAiServer.class.getName()).log(System.Logger.Level.WARNING,
        "a generation failed: " + e, e);
    return ApiError.internal(e instanceof StoreDamagedException ? e.getMessage()
        : "the generation failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
  }

  private void stream(ServerResponse res, Engine.Job job, String id, boolean chat,
      boolean usage) throws Exception {
    EventStream sink = new EventStream(res);
    try {
      if (chat) {
        ObjectNode c = chunk(id, true);
        ObjectNode choice = ((ArrayNode) c.get("choices")).addObject().put("index", 0);
        choice.putObject("delta").put("role", "assistant").put("content", "");
        choice.putNull("finish_reason");
        emit(sink, c);
      }
      for (Engine.Event e = job.next(); ; e = job.next()) {
        if (e instanceof Engine.Text t) {
          ObjectNode c = chunk(id, chat);
          ObjectNode choice = ((ArrayNode) c.get("choices")).addObject().put("index", 0);
          if (chat) {
            choice.putObject("delta").put("content", t.text());
          } else {
            choice.put("text", t.text()).putNull("logprobs");
          }
          choice.putNull("finish_reason");
          emit(sink, c);
        } else if (e instanceof Engine.Finished f) {
          ObjectNode c = chunk(id, chat);
          ObjectNode choice = ((ArrayNode) c.get("choices")).addObject().put("index", 0);
          if (chat) {
            choice.putObject("delta");
          } else {
            choice.put("text", "").putNull("logprobs");
          }
          choice.put("finish_reason", f.reason());
          emit(sink, c);
          if (usage) {
            ObjectNode u = chunk(id, chat);
            u.set("usage", usage(f));
            emit(sink, u);
          }
          sink.send("[DONE]");
          return;
        } else if (e instanceof Engine.Failed f) {
          ApiError a = failure(f.error());
          ObjectNode err = JSON.createObjectNode();
          err.putObject("error").put("message", a.getMessage()).put("type", a.type)
              .put("code", a.code);
          emit(sink, err);
          return;
        }
      }
    } catch (IOException | RuntimeException gone) { // the client went away
      job.cancel();
    } finally {
      try {
        sink.close();
      } catch (IOException | RuntimeException ignored) {
        // the connection is gone already
      }
    }
  }

  private static void emit(EventStream sink, JsonNode chunk) throws IOException {
    sink.send(JSON.writeValueAsString(chunk));
  }

  private ObjectNode chunk(String id, boolean chat) {
    ObjectNode c = JSON.createObjectNode().put("id", id)
        .put("object", chat ? "chat.completion.chunk" : "text_completion")
        .put("created", System.currentTimeMillis() / 1000).put("model", modelId);
    c.putArray("choices");
    return c;
  }

  private ObjectNode completion(String id, boolean chat, String text, Engine.Finished f) {
    ObjectNode c = JSON.createObjectNode().put("id", id)
        .put("object", chat ? "chat.completion" : "text_completion")
        .put("created", System.currentTimeMillis() / 1000).put("model", modelId);
    ObjectNode choice = c.putArray("choices").addObject().put("index", 0);
    if (chat) {
      choice.putObject("message").put("role", "assistant").put("content", text);
    } else {
      choice.put("text", text).putNull("logprobs");
    }
    choice.put("finish_reason", f.reason());
    c.set("usage", usage(f));
    return c;
  }

  private static ObjectNode usage(Engine.Finished f) {
    ObjectNode u = JSON.createObjectNode().put("prompt_tokens", f.promptTokens())
        .put("completion_tokens", f.completionTokens())
        .put("total_tokens", f.promptTokens() + f.completionTokens());
    u.putObject("prompt_tokens_details").put("cached_tokens", f.cachedTokens());
    return u;
  }

  /** A request's generation, checked against what this server and model can do. */
  private Generation parse(JsonNode b, String tenant, boolean chat) {
    if (b.hasNonNull("model") && !b.get("model").asText().equals(modelId)) {
      throw modelNotFound(b.get("model").asText());
    }
    int[] prompt;
    if (chat) {
      prompt = tokens(ChatTemplate.render(b.get("messages")));
    } else {
      prompt = prompt(b.get("prompt"));
    }
    int context = model.config().maxPositions();
    if (prompt.length > context) {
      throw new ApiError(400, "invalid_request_error", "context_length_exceeded", chat
          ? "messages" : "prompt", "the prompt has " + prompt.length + " tokens, more than the "
          + context + "-token context of " + modelId + "; shorten it");
    }
    unsupported(b, "n", 1);
    unsupported(b, "best_of", 1);
    if (bool(b, "echo", false)) {
      throw ApiError.invalid("echo", "'echo' is not supported by this server");
    }
    if (b.hasNonNull("logprobs") && !(b.get("logprobs").isBoolean() && !b.get("logprobs")
        .asBoolean()) && !(b.get("logprobs").isInt() && b.get("logprobs").asInt() == 0)) {
      throw ApiError.invalid("logprobs", "'logprobs' is not supported by this server");
    }
    if (b.hasNonNull("suffix") || b.hasNonNull("tools") || b.hasNonNull("functions")) {
      throw ApiError.invalid(null, "'suffix', 'tools' and 'functions' are not supported by this"
          + " server");
    }
    for (String penalty : List.of("presence_penalty", "frequency_penalty")) {
      if (b.hasNonNull(penalty) && number(b, penalty, 0) != 0) {
        throw ApiError.invalid(penalty, "'" + penalty + "' is not supported (only 0)");
      }
    }
    int room = context - prompt.length;
    String maxKey = chat && b.hasNonNull("max_completion_tokens") ? "max_completion_tokens"
        : "max_tokens";
    int maxTokens;
    if (b.hasNonNull(maxKey)) {
      if (!b.get(maxKey).canConvertToInt() || b.get(maxKey).asInt() < 1) {
        throw ApiError.invalid(maxKey, "'" + maxKey + "' must be a positive integer, got "
            + b.get(maxKey));
      }
      maxTokens = b.get(maxKey).asInt();
      if (maxTokens > room) {
        throw new ApiError(400, "invalid_request_error", "context_length_exceeded", maxKey,
            "the prompt (" + prompt.length + " tokens) and " + maxKey + " (" + maxTokens + ")"
            + " exceed the " + context + "-token context of " + modelId + "; ask for at most "
            + room + " tokens");
      }
    } else {
      maxTokens = Math.min(chat ? 128 : 16, room);
      if (maxTokens < 1) {
        throw new ApiError(400, "invalid_request_error", "context_length_exceeded", null,
            "the prompt fills the whole " + context + "-token context; nothing can follow it");
      }
    }
    double temperature = number(b, "temperature", 1);
    if (!(temperature >= 0 && temperature <= 2)) {
      throw ApiError.invalid("temperature", "'temperature' must be between 0 and 2, got "
          + b.get("temperature"));
    }
    double topP = number(b, "top_p", 1);
    if (!(topP > 0 && topP <= 1)) {
      throw ApiError.invalid("top_p", "'top_p' must be in (0, 1], got " + b.get("top_p"));
    }
    long seed = ThreadLocalRandom.current().nextLong();
    if (b.hasNonNull("seed")) {
      if (!b.get("seed").canConvertToLong()) {
        throw ApiError.invalid("seed", "'seed' must be an integer, got " + b.get("seed"));
      }
      seed = b.get("seed").asLong();
    }
    List<String> stops = new ArrayList<>(stops(b.get("stop")));
    if (chat) {
      stops.add(ChatTemplate.END_OF_TURN);
    }
    String salt = tenant;
    if (b.hasNonNull("cache_salt")) {
      if (!b.get("cache_salt").isTextual()) {
        throw ApiError.invalid("cache_salt", "'cache_salt' must be a string");
      }
      if (!b.get("cache_salt").asText().isEmpty()) {
        salt = tenant + "/" + b.get("cache_salt").asText();
      }
    }
    return new Generation(prompt, maxTokens, temperature, topP, seed, stops, salt,
        options.storeMinTokens());
  }

  private static int[] tokens(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    int[] ids = new int[bytes.length + 1];
    ids[0] = ByteTokenizer.DOCUMENT_START;
    for (int i = 0; i < bytes.length; i++) {
      ids[i + 1] = bytes[i] & 0xFF;
    }
    return ids;
  }

  /** A completion's prompt: a string, a list of one string, or a list of token ids. */
  private int[] prompt(JsonNode p) {
    if (p == null || p.isNull()) {
      throw ApiError.invalid("prompt", "'prompt' is missing; give a string");
    }
    if (p.isTextual()) {
      return tokens(p.asText());
    }
    if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
      return tokens(p.get(0).asText());
    }
    if (p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
      int vocab = model.config().vocabSize();
      int[] ids = new int[p.size()];
      for (int i = 0; i < ids.length; i++) {
        JsonNode t = p.get(i);
        if (!t.canConvertToInt() || t.asInt() < 0 || t.asInt() >= vocab) {
          throw ApiError.invalid("prompt", "prompt[" + i + "] = " + t + " is not a token id of"
              + " this model (0 to " + (vocab - 1) + ")");
        }
        ids[i] = t.asInt();
      }
      return ids;
    }
    throw ApiError.invalid("prompt", "'prompt' must be a string, a list of one string or a list"
        + " of token ids; this server takes one prompt per request");
  }

  private static List<String> stops(JsonNode s) {
    if (s == null || s.isNull()) {
      return List.of();
    }
    if (s.isTextual()) {
      return List.of(s.asText());
    }
    if (s.isArray() && s.size() <= MAX_STOPS) {
      List<String> out = new ArrayList<>();
      for (JsonNode x : s) {
        if (!x.isTextual()) {
          throw ApiError.invalid("stop", "'stop' must be a string or a list of strings");
        }
        out.add(x.asText());
      }
      return out;
    }
    throw ApiError.invalid("stop", "'stop' must be a string or a list of at most " + MAX_STOPS
        + " strings");
  }

  private static void unsupported(JsonNode b, String field, int only) {
    if (b.hasNonNull(field) && b.get(field).asInt(-1) != only) {
      throw ApiError.invalid(field, "'" + field + "' must be " + only + " here (got "
          + b.get(field) + "): this server returns one choice per request");
    }
  }

  private static boolean bool(JsonNode b, String field, boolean absent) {
    JsonNode n = b.get(field);
    if (n == null || n.isNull()) {
      return absent;
    }
    if (!n.isBoolean()) {
      throw ApiError.invalid(field, "'" + field + "' must be true or false, got " + n);
    }
    return n.asBoolean();
  }

  private static double number(JsonNode b, String field, double absent) {
    JsonNode n = b.get(field);
    if (n == null || n.isNull()) {
      return absent;
    }
    if (!n.isNumber()) {
      throw ApiError.invalid(field, "'" + field + "' must be a number, got " + n);
    }
    return n.asDouble();
  }

  // ------------------------------------------------------------------ admin

  /** The caller's tenant, narrowed by a {@code cache_salt} query parameter as requests are. */
  private ContextStore.TenantView view(ServerRequest req) {
    return store.tenant(tenantSalt(req), fingerprint);
  }

  private String tenantSalt(ServerRequest req) {
    String tenant = tenant(req);
    String salt = req.query().contains("cache_salt") ? req.query().get("cache_salt") : "";
    return salt.isEmpty() ? tenant : tenant + "/" + salt;
  }

  private void listContexts(ServerRequest req, ServerResponse res) throws IOException {
    ContextStore.TenantView v = view(req);
    ObjectNode list = JSON.createObjectNode().put("object", "list");
    ArrayNode data = list.putArray("data");
    for (ContextInfo c : v.list()) {
      data.addObject().put("id", c.id()).put("object", "context").put("kind", c.kind())
          .put("tokens", c.tokens()).put("created", c.created().getEpochSecond())
          .put("pinned", keeper.pinned(c.id()));
    }
    sendJson(res, 200, list);
  }

  private Optional<ContextInfo> find(ServerRequest req, String id) throws IOException {
    return view(req).info(id);
  }

  private ApiError noContext(String id) {
    // the same answer for a context that does not exist and one of another tenant
    return ApiError.notFound("context_not_found", "no stored context " + id + " of this tenant;"
        + " GET /admin/contexts lists yours");
  }

  private void pin(ServerRequest req, ServerResponse res, boolean pin) throws IOException {
    String id = req.path().pathParameters().get("id");
    if (find(req, id).isEmpty()) {
      throw noContext(id);
    }
    keeper.pin(id, pin);
    sendJson(res, 200, JSON.createObjectNode().put("id", id).put("pinned", pin));
  }

  /**
   * Deletes the tenant's context from the local store and, with a remote store, from the remote
   * too (first, so that no request fetches it back into the cache); 404 when neither has it.
   */
  private void deleteContext(ServerRequest req, ServerResponse res) throws IOException {
    String id = req.path().pathParameters().get("id");
    ContextStore.TenantView v = view(req);
    boolean remoteDeleted = false;
    if (remote != null) {
      try {
        remoteDeleted = remote.delete(id, tenantSalt(req));
      } catch (IOException | RuntimeException e) {
        throw ApiError.remoteFailed("context " + id + " was not deleted: the remote store "
            + remote + " failed (" + e.getMessage() + "); retry when it answers");
      }
    }
    boolean localDeleted = v.delete(id);
    if (!localDeleted && !remoteDeleted) {
      throw noContext(id);
    }
    keeper.forget(id);
    ObjectNode out = JSON.createObjectNode().put("id", id).put("deleted", true);
    if (remote != null) {
      out.put("local", localDeleted).put("remote", remoteDeleted);
    }
    sendJson(res, 200, out);
  }

  private double storeBytes() {
    try {
      return store.sizeInBytes();
    } catch (IOException | RuntimeException e) {
      return Double.NaN;
    }
  }

  private double storeContexts() {
    try {
      return store.everyTenantsContexts().size();
    } catch (IOException | RuntimeException e) {
      return Double.NaN;
    }
  }
}
