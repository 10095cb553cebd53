package org.retroinfer.serve;

import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.RemoteContextStore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code retroinfer serve}: the OpenAI-compatible server with prompt-prefix caching. */
@Command(name = "serve", mixinStandardHelpOptions = true,
    description = {"An OpenAI-compatible server (POST /v1/completions, POST /v1/chat/completions,"
        + " GET /v1/models) that reuses the longest stored prefix of every prompt, across"
        + " sessions and restarts, and stores long prompts for later requests.",
        "Also GET /health, GET /metrics (Prometheus) and the admin API /admin/contexts (list,"
            + " pin, delete). Stops gracefully on Ctrl-C or SIGTERM.",
        "Several servers share contexts through --store http://HOST:PORT/INDEX (an OpenSearch"
            + " cluster with the retroinfer plugin): each looks in its --cache first, fetches a"
            + " longer prefix of the request's tenant from the cluster into the cache, and puts"
            + " what it stores into the cluster in the background."})
public final class ServeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--store", paramLabel = "DIR|URL", description = "The context store directory"
      + " (default: $XDG_DATA_HOME/retroinfer/store or ~/.local/share/retroinfer/store; created if"
      + " missing), or a store shared with other servers in an OpenSearch cluster with the"
      + " retroinfer plugin, http://HOST:PORT/INDEX: then --cache is this server's local copy of"
      + " what it uses, and what it stores is also put there.")
  String store;

  @Option(names = "--cache", paramLabel = "DIR", description = "With --store http://...: the"
      + " local store that caches the remote one (eviction, pins and the admin API act on it; kept"
      + " across restarts; give each server on a host its own). Default:"
      + " $XDG_CACHE_HOME/retroinfer/serve-cache/HOST_PORT_INDEX or"
      + " ~/.cache/retroinfer/serve-cache/HOST_PORT_INDEX.")
  Path cache;

  @Option(names = "--model", paramLabel = "DIR",
      description = "Checkpoint directory (default: the shipped models/bytecode-llama-10m).")
  Path model;

  @Option(names = "--host", defaultValue = "127.0.0.1",
      description = "Address to listen on (default ${DEFAULT-VALUE}; 0.0.0.0 for every interface).")
  String host;

  @Option(names = "--port", defaultValue = "8000",
      description = "Port to listen on (default ${DEFAULT-VALUE}; 0 picks a free one).")
  int port;

  @Option(names = "--api-keys", paramLabel = "FILE", description = "File of 'KEY TENANT' lines:"
      + " every request must send one of these keys (Authorization: Bearer KEY), and its tenant's"
      + " contexts are the only ones it reuses, lists or deletes. Without it: one local tenant"
      + " (the store's default tenant) and no keys.")
  Path apiKeys;

  @Option(names = "--store-min-tokens", paramLabel = "N", defaultValue = "256",
      description = "Store a prompt for reuse by later requests when the request computed at"
          + " least N of its tokens, i.e. did not reuse them from the store (default"
          + " ${DEFAULT-VALUE}; 0 stores none).")
  int storeMinTokens;

  @Option(names = "--store-capacity", paramLabel = "BYTES", defaultValue = "0",
      description = "The store's (with a remote store: the local cache's) capacity in bytes"
          + " (suffixes k, m, g: 1024-based); beyond it the"
          + " least recently used unpinned contexts are evicted (default 0: unbounded).")
  String capacity;

  @Option(names = "--threads", paramLabel = "N", defaultValue = "2",
      description = "Requests computed at once (default ${DEFAULT-VALUE}).")
  int threads;

  @Option(names = "--max-queue", paramLabel = "N", defaultValue = "32",
      description = "Requests that may wait for a compute thread; more are refused with 429"
          + " (default ${DEFAULT-VALUE}).")
  int queue;

  @Option(names = "--max-body-bytes", paramLabel = "BYTES", defaultValue = "4194304",
      description = "The largest request body; larger ones are refused with 413 (default 4 MiB).")
  long maxBody;

  @Option(names = "--shutdown-grace", paramLabel = "SECONDS", defaultValue = "30",
      description = "On shutdown, how long requests in flight may still run (default"
          + " ${DEFAULT-VALUE} s); then they are cancelled.")
  long grace;

  @Option(names = "--no-warm-up", negatable = false,
      description = "Do not run a request's code paths once at start (on scratch data in a"
          + " temporary store, about two seconds); without the warm-up the first requests run"
          + " partly in the interpreter.")
  boolean noWarmUp;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    atLeast("--port", port, 0);
    if (port > 65535) {
      throw new ParameterException(spec.commandLine(), "--port must be 0 (any free port) to 65535,"
          + " got " + port);
    }
    atLeast("--threads", threads, 1);
    atLeast("--max-queue", queue, 0);
    atLeast("--store-min-tokens", storeMinTokens, 0);
    atLeast("--max-body-bytes", maxBody, 1);
    atLeast("--shutdown-grace", grace, 0);
    String remote = remoteStore();
    OpenAiServer.Options o = new OpenAiServer.Options(storeDirectory(remote), model, host, port,
        apiKeys, storeMinTokens, bytes(capacity), threads, queue, maxBody,
        Duration.ofSeconds(grace), !noWarmUp, remote);
    OpenAiServer server = OpenAiServer.start(o);
    CountDownLatch stopped = new CountDownLatch(1);
    // Ctrl-C or a TERM: the JVM runs this hook, then exits with 130 or 143, as after any signal
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        server.close();
        out.println("retroinfer serve: stopped; every request in flight finished or was cancelled,"
            + " and the store is closed");
        out.flush();
      } catch (Exception e) {
        System.err.println("retroinfer serve: stopping failed: " + e.getMessage());
      } finally {
        stopped.countDown();
      }
    }, "retroinfer-serve-shutdown"));
    out.printf("retroinfer serve: listening on http://%s:%d/v1 (model %s, store %s, %s)%n", host,
        server.port(), server.modelId(), server.storeDescription(), server.tenancy());
    out.flush();
    stopped.await();
    return 0;
  }

  private void atLeast(String option, long value, long min) {
    if (value < min) {
      throw new ParameterException(spec.commandLine(), option + " must be at least " + min
          + ", got " + value);
    }
  }

  /** The remote store's URL (checked), or null for a store directory. */
  private String remoteStore() {
    if (!RemoteContextStore.isRemote(store)) {
      if (cache != null) {
        throw new ParameterException(spec.commandLine(), "--cache is the local cache of a remote"
            + " store; give it with --store http://HOST:PORT/INDEX, or drop it (--store DIR is"
            + " used directly)");
      }
      return null;
    }
    try {
      RemoteContextStore.of(store);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), "--store: " + e.getMessage());
    }
    return store;
  }

  /** The local store: --store DIR, or with a remote store the cache directory. */
  private Path storeDirectory(String remote) {
    Path dir;
    if (remote != null) {
      dir = cache != null ? cache : defaultCache(remote);
      if (Files.exists(dir) && !Files.isDirectory(dir)) {
        throw new ParameterException(spec.commandLine(), "--cache " + dir + " is a file; give a"
            + " directory (created if missing)");
      }
      return dir;
    }
    dir = store == null ? ContextStore.defaultDirectory() : Path.of(store);
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new ParameterException(spec.commandLine(), "--store " + dir + " is a file; give a"
          + " store directory (created if missing) or http://HOST:PORT/INDEX");
    }
    return dir;
  }

  /** {@code $XDG_CACHE_HOME/retroinfer/serve-cache/HOST_PORT_INDEX}, else under {@code ~/.cache}. */
  static Path defaultCache(String remote) {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg)
        : Path.of(System.getProperty("user.home"), ".cache");
    URI u = URI.create(remote);
    String name = (u.getHost() + "_" + (u.getPort() < 0 ? "80" : u.getPort()) + "_"
        + u.getPath().replaceAll("^/+|/+$", "")).replaceAll("[^A-Za-z0-9._-]", "_");
    return base.resolve("retroinfer").resolve("serve-cache").resolve(name);
  }

  private long bytes(String text) {
    String t = text.strip().toLowerCase(java.util.Locale.ROOT);
    long unit = 1;
    if (t.endsWith("k") || t.endsWith("m") || t.endsWith("g")) {
      unit = t.endsWith("k") ? 1L << 10 : t.endsWith("m") ? 1L << 20 : 1L << 30;
      t = t.substring(0, t.length() - 1);
    }
    try {
      long v = Long.parseLong(t);
      if (v < 0) {
        throw new NumberFormatException();
      }
      return Math.multiplyExact(v, unit);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new ParameterException(spec.commandLine(), "--store-capacity must be a number of bytes"
          + " (optionally with k, m or g), 0 for unbounded; got '" + text + "'");
    }
  }
}
