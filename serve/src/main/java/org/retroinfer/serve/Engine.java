package org.retroinfer.serve;

import java.io.IOException;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.retroinfer.app.PromptCache;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * Runs generations on a fixed number of compute threads (platform threads: a prefill or a decode
 * step keeps a core busy, which would starve the web server's virtual threads) behind a bounded
 * queue. Each generation has its own cache and decoder, so decode steps of different requests never
 * share state; the model is immutable and the store takes one writer at a time.
 *
 * <p>A generation reuses the longest stored prefix of its prompt ({@link PromptCache}), prefills
 * the rest, sends its first token, then stores the prompt when the policy says so (before the first
 * decode step changes the cache), and decodes the rest.
 *
 * <p>With a remote store ({@link RemoteTier}) the store is its local cache: before the lookup, a
 * longer prefix that the remote holds for the tenant is copied into the cache, and a prompt stored
 * in the cache is also sent to the remote, in the background.
 */
final class Engine implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(Engine.class.getName());
  private final Llama model;
  private final ContextStore store;
  private final ModelFingerprint fingerprint;
  private final WaveConfig config;
  private final StoreKeeper keeper;
  private final RemoteTier remote; // null: the store is the only one
  private final ServerMetrics metrics;
  private final ThreadPoolExecutor pool;
  private final int threads;
  private final int queue;
  private final Set<Job> jobs = ConcurrentHashMap.newKeySet();
  private final AtomicInteger waiting = new AtomicInteger();

  Engine(Llama model, ContextStore store, ModelFingerprint fingerprint, WaveConfig config,
      StoreKeeper keeper, RemoteTier remote, ServerMetrics metrics, int threads, int queue) {
    this.model = model;
    this.store = store;
    this.fingerprint = fingerprint;
    this.config = config;
    this.keeper = keeper;
    this.remote = remote;
    this.metrics = metrics;
    this.threads = threads;
    this.queue = queue;
    AtomicInteger n = new AtomicInteger();
    this.pool = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
        queue == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(queue), r -> {
          Thread t = new Thread(r, "retroinfer-compute-" + n.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
  }

  /** What a generation tells its request, in order: Started, Text..., then Finished or Failed. */
  sealed interface Event permits Started, Text, Finished, Failed {}

  /** The prompt is ready and the first token chosen. */
  record Started(int promptTokens, int cachedTokens) implements Event {}

  /** Text to send. */
  record Text(String text) implements Event {}

  /** The end: why, and how many tokens were generated. */
  record Finished(String reason, int promptTokens, int cachedTokens, int completionTokens)
      implements Event {}

  record Failed(Throwable error) implements Event {}

  /** A submitted generation: its events, and a way to cancel it. */
  final class Job implements Runnable {
    final Generation g;
    final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private volatile boolean cancelled;

    private Job(Generation g) {
      this.g = g;
    }

    /** Stops the generation at its next step (the client went away, or the server stops). */
    void cancel() {
      cancelled = true;
    }

    Event next() throws InterruptedException {
      return events.take();
    }

    @Override
    public void run() {
      waiting.decrementAndGet();
      metrics.waiting.dec();
      metrics.running.inc();
      try {
        if (cancelled) {
          throw new CancellationException("cancelled before it started");
        }
        generate();
      } catch (Throwable e) {
        events.add(new Failed(e));
      } finally {
        metrics.running.dec();
        jobs.remove(this);
      }
    }

    private void checkCancelled() {
      if (cancelled) {
        throw new CancellationException("the request was cancelled");
      }
    }

    private void generate() throws IOException {
      long t0 = System.nanoTime();
      ContextStore.Scope scope = store.scope(fingerprint, g.tenantSalt(), config.kvType());
      String fetched = remote == null ? null : fetchLonger(scope);
      PromptCache cache = new PromptCache(model, scope, config);
      PromptCache.Prepared p = cache.prepare(g.prompt(), (done, total) -> checkCancelled());
      int n = g.prompt().length;
      metrics.prefixLookups.inc();
      if (p.reusedTokens() > 0) {
        metrics.prefixHits.inc();
        keeper.used(p.contextId());
        if (p.contextId().equals(fetched)) {
          metrics.remoteHits.inc();
        }
      }
      try (ContextCache c = p.cache()) {
        Sampler sampler = Sampler.of(g.temperature(), g.topP(), g.seed());
        TextAssembler text = new TextAssembler(g.stops());
        int token = sampler.sample(p.logits());
        metrics.timeToFirstToken.observe((System.nanoTime() - t0) / 1e9);
        events.add(new Started(n, p.reusedTokens()));
        int generated = 1;
        emit(text.add(token));
        // stored before the first decode step appends to the cache
        if (g.store(p.reusedTokens()) && store.writable()) {
          store(cache, p);
        }
        Decoder d = model.decoder(c);
        while (generated < g.maxTokens() && !text.stopped()) {
          checkCancelled();
          float[] logits = d.step(token);
          token = sampler.sample(logits);
          generated++;
          emit(text.add(token));
        }
        emit(text.finish());
        metrics.promptTokens.inc(n);
        metrics.cachedTokens.inc(p.reusedTokens());
        metrics.completionTokens.inc(generated);
        events.add(new Finished(text.stopped() ? "stop" : "length", n, p.reusedTokens(),
            generated));
      }
    }

    /**
     * Copies into the cache the remote's prefix of the prompt when it is longer than the cache's
     * (nothing when the cache holds the whole prompt with its logits). Returns the copied id or null.
     */
    private String fetchLonger(ContextStore.Scope scope) throws IOException {
      int[] prompt = g.prompt();
      var local = scope.find(prompt);
      if (local.isPresent() && local.get().exact() && local.get().context().hasLogits()) {
        return null;
      }
      String id = remote.fetchLonger(scope, g.tenantSalt(), prompt,
          local.map(m -> m.matchedTokens()).orElse(0));
      if (id != null) {
        keeper.used(id);
        try {
          keeper.evictToCapacity();
        } catch (IOException | RuntimeException e) {
          LOG.log(System.Logger.Level.WARNING, "could not evict from the store after a fetch from"
              + " the remote store (the request goes on): " + e.getMessage());
        }
      }
      checkCancelled();
      return id;
    }

    /**
     * Stores the prompt (and, with a remote store, sends it there in the background); a failure
     * costs the later reuse, not this request (one warning line).
     */
    private void store(PromptCache cache, PromptCache.Prepared p) {
      try {
        var info = cache.save("", g.prompt(), p);
        metrics.storedContexts.inc();
        keeper.used(info.id());
        if (remote != null) {
          remote.putLater(store.scope(fingerprint, g.tenantSalt(), config.kvType()),
              g.tenantSalt(), info.id());
        }
        keeper.evictToCapacity();
      } catch (IOException | RuntimeException e) {
        LOG.log(System.Logger.Level.WARNING, "could not store a " + g.prompt().length
            + "-token prompt for reuse (the request goes on without): " + e.getMessage());
      }
    }

    private void emit(String piece) {
      if (!piece.isEmpty()) {
        events.add(new Text(piece));
      }
    }
  }

  /**
   * Queues a generation.
   *
   * @throws ApiError 429 when every compute thread is busy and the queue is full
   */
  Job submit(Generation g) {
    Job job = new Job(g);
    jobs.add(job);
    waiting.incrementAndGet();
    metrics.waiting.inc();
    try {
      pool.execute(job);
    } catch (RejectedExecutionException e) {
      jobs.remove(job);
      waiting.decrementAndGet();
      metrics.waiting.dec();
      metrics.rejected.inc();
      if (pool.isShutdown()) {
        throw ApiError.unavailable("the server is shutting down; retry on another instance or"
            + " after its restart");
      }
      throw ApiError.busy("the server is busy: " + threads + " requests running and " + queue
          + " waiting, the most it queues (--max-queue); retry shortly");
    }
    return job;
  }

  /**
   * Stops taking work, lets queued and running generations finish for up to {@code graceMillis},
   * then cancels the rest and waits for them to end (a cancelled generation stops at its next
   * prefill chunk or decode step; a store commit in progress completes).
   */
  boolean shutdown(long graceMillis) throws InterruptedException {
    pool.shutdown();
    if (pool.awaitTermination(graceMillis, TimeUnit.MILLISECONDS)) {
      return true;
    }
    for (Job j : jobs) {
      j.cancel();
    }
    return pool.awaitTermination(30, TimeUnit.SECONDS);
  }

  /** Stops the compute threads of an engine that never ran anything. */
  void stopNow() {
    pool.shutdownNow();
  }

  @Override
  public void close() throws InterruptedException {
    shutdown(0);
  }
}
