package org.retroinfer.serve;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.retroinfer.store.ContextPack;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.PrefixHasher;
import org.retroinfer.store.PrefixMatch;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.wave.kv.KvDType;

/**
 * The shared store behind a server's local cache: a {@link RemoteContextStore} (an OpenSearch
 * cluster with the plugin) that several servers read and write, while each keeps the contexts it
 * uses in a local store of its own (the cache: eviction, pins and the admin API act on it).
 *
 * <ul>
 *   <li>{@link #fetchLonger}: when the remote holds a longer prefix of a prompt for the request's
 *       tenant and model than the cache, the candidates are fetched (longest claim first), each
 *       verified against its stored token ids as a local store verifies a hit, and the best copied
 *       into the cache, with its clusters and logits as they were stored; the request then loads it
 *       from the cache like any cached context.
 *   <li>{@link #putLater}: a context the server stored in its cache is sent to the remote on one
 *       background thread (the request does not wait); a failure logs one warning and counts in
 *       {@code retroinfer_remote_put_failures_total}, and costs only the other hosts' reuse.
 *   <li>{@link #delete}: the tenant's copy in the remote store (the admin API's delete removes both).
 * </ul>
 *
 * <p>A fetch or a put never fails a request: the request goes on with what the cache has. The tenant
 * salt goes to the remote with every call (as its hash, as a local store keeps it), so a tenant is
 * never served another tenant's context from the remote either.
 */
final class RemoteTier {
  private static final System.Logger LOG = System.getLogger(RemoteTier.class.getName());
  /** Candidates fetched at most per request (each is a whole context's transfer). */
  private static final int MAX_FETCHES = 3;
  /** Puts that may wait for the background thread; beyond them a put is dropped and counted. */
  private static final int PUT_QUEUE = 64;

  private final RemoteContextStore remote;
  private final ContextStore cache;
  private final ModelFingerprint model;
  private final KvDType kvType;
  private final ServerMetrics metrics;
  private final Path work;
  private final ThreadPoolExecutor puts;

  RemoteTier(RemoteContextStore remote, ContextStore cache, ModelFingerprint model, KvDType kvType,
      ServerMetrics metrics) throws IOException {
    if (cache.chunkTokens() != PrefixHasher.DEFAULT_CHUNK_TOKENS) {
      throw new IllegalArgumentException("the cache " + cache.directory() + " is a store with"
          + " chunks of " + cache.chunkTokens() + " tokens, but a remote store is looked up by "
          + PrefixHasher.DEFAULT_CHUNK_TOKENS + "-token chunks; give another --cache directory");
    }
    this.remote = remote;
    this.cache = cache;
    this.model = model;
    this.kvType = kvType;
    this.metrics = metrics;
    // beside the cache's index: what a fetch unpacks and a put packs, removed after each
    this.work = cache.directory().resolve("serve-remote-work");
    RemoteContextStore.deleteTree(work); // left by a process that was killed
    Files.createDirectories(work);
    this.puts = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS,
        new ArrayBlockingQueue<>(PUT_QUEUE), r -> {
          Thread t = new Thread(r, "retroinfer-remote-put");
          t.setDaemon(true);
          return t;
        });
  }

  /**
   * Checks that the remote store answers (a missing index is fine: the first put creates it), so
   * that a wrong address fails at start with one clear line rather than at every request.
   */
  static void probe(RemoteContextStore remote) throws IOException {
    try {
      remote.list("", null);
    } catch (RemoteContextStore.NoSuchIndexException e) {
      // an empty remote store
    }
  }

  @Override
  public String toString() {
    return remote.toString();
  }

  /**
   * Copies into the cache the remote's best verified prefix of {@code prompt} for this tenant, when
   * it is longer than the cache's own ({@code cachedTokens}: what the cache's scope matched, 0 for
   * nothing). Returns the id of the context copied into the cache, or null (nothing longer, the
   * remote unreachable, or its answer damaged: one warning, and the request goes on).
   */
  String fetchLonger(ContextStore.Scope scope, String tenantSalt, int[] prompt,
      int cachedTokens) {
    long t0 = System.nanoTime();
    Path dir = work.resolve("fetch-" + UUID.randomUUID());
    metrics.remoteLookups.inc();
    int fetched = 0;
    try {
      List<RemoteContextStore.Candidate> candidates;
      try {
        candidates = remote.lookup(prompt, model, tenantSalt, kvType,
            PrefixHasher.DEFAULT_CHUNK_TOKENS);
      } catch (RemoteContextStore.NoSuchIndexException e) {
        return null; // nothing put yet
      }
      for (RemoteContextStore.Candidate c : candidates) {
        if (fetched == MAX_FETCHES) {
          break;
        }
        // a claim is whole chunks that the stored tokens may extend by less than one
        if (c.claimedTokens() + PrefixHasher.DEFAULT_CHUNK_TOKENS <= cachedTokens
            || scope.info(c.id()).isPresent()) {
          continue; // cannot beat the cache, or is in it already
        }
        byte[] pack;
        try {
          pack = remote.get(c.id(), tenantSalt, model);
        } catch (IllegalArgumentException e) {
          continue; // deleted in between
        }
        fetched++;
        metrics.remoteFetchedBytes.inc(pack.length);
        RemoteContextStore.deleteTree(dir);
        ContextPack.unpack(pack, dir);
        String id = copyIfLonger(dir, scope, tenantSalt, prompt, cachedTokens);
        if (id != null) {
          return id;
        }
      }
      return null;
    } catch (IOException | RuntimeException e) {
      metrics.remoteFetchFailures.inc();
      LOG.log(System.Logger.Level.WARNING, "could not fetch a prefix of a " + prompt.length
          + "-token prompt from the remote store " + remote + " (the request goes on with the"
          + " local cache): " + e.getMessage());
      return null;
    } finally {
      if (fetched > 0) {
        metrics.remoteFetchSeconds.observe((System.nanoTime() - t0) / 1e9);
      }
      deleteQuietly(dir);
    }
  }

  /** Copies the fetched context into the cache when its verified match beats the cache's. */
  private String copyIfLonger(Path dir, ContextStore.Scope scope, String tenantSalt, int[] prompt,
      int cachedTokens) throws IOException {
    try (ContextStore fetched = ContextStore.openReadOnly(dir)) {
      ContextStore.Scope there = fetched.scope(model, tenantSalt, kvType);
      Optional<PrefixMatch> m = there.find(prompt); // verified against the stored token ids
      if (m.isEmpty() || m.get().matchedTokens() <= cachedTokens) {
        return null;
      }
      String id = m.get().context().id();
      ContextStore.Stored stored = there.stored(id);
      int[] tokens = stored.tokens();
      try (ReusedContext c = there.load(id, tokens, tokens.length, false)) {
        return scope.put(stored.info().name(), stored.info().kind(), tokens, c.cache(),
            stored.logits(), null).id();
      }
    }
  }

  /**
   * Sends the cache's context {@code id} of this scope to the remote store, on the background
   * thread: it is read back from the cache (so the request's own cache may go on decoding), written
   * as a one-context store and sent as a pack.
   */
  void putLater(ContextStore.Scope scope, String tenantSalt, String id) {
    try {
      puts.execute(() -> put(scope, tenantSalt, id));
    } catch (RejectedExecutionException e) {
      metrics.remotePutFailures.inc();
      LOG.log(System.Logger.Level.WARNING, "did not send context " + id + " to the remote store "
          + remote + ": " + (puts.isShutdown() ? "the server is stopping"
          : PUT_QUEUE + " puts are waiting already"));
    }
  }

  private void put(ContextStore.Scope scope, String tenantSalt, String id) {
    Path dir = work.resolve("put-" + UUID.randomUUID());
    try {
      if (scope.info(id).isEmpty()) {
        return; // deleted (by the admin API) or evicted since it was stored: nothing to share
      }
      ContextStore.Stored stored = scope.stored(id);
      int[] tokens = stored.tokens();
      try (ReusedContext c = scope.load(id, tokens, tokens.length, false);
          ContextStore one = ContextStore.open(dir, PrefixHasher.DEFAULT_CHUNK_TOKENS)) {
        one.scope(model, tenantSalt, kvType).put(stored.info().name(),
            stored.info().kind(), tokens, c.cache(), stored.logits(), null);
      }
      RemoteContextStore.Put sent = remote.put(dir);
      metrics.remotePuts.inc();
      metrics.remotePutBytes.inc(sent.bytes());
    } catch (IOException | RuntimeException e) {
      metrics.remotePutFailures.inc();
      LOG.log(System.Logger.Level.WARNING, "could not put context " + id + " into the remote store "
          + remote + " (it stays in the local cache; other hosts will compute it): "
          + e.getMessage());
    } finally {
      deleteQuietly(dir);
    }
  }

  /**
   * Deletes this tenant's context {@code id} from the remote store; false when the remote has no
   * such context of this tenant and model.
   */
  boolean delete(String id, String tenantSalt) throws IOException {
    try {
      return remote.delete(id, tenantSalt, model);
    } catch (RemoteContextStore.NoSuchIndexException e) {
      return false;
    }
  }

  /**
   * Sends the puts still queued, waiting up to {@code graceMillis} for them, then drops the rest
   * (one warning). Call before the cache closes.
   */
  void close(long graceMillis) throws InterruptedException {
    puts.shutdown();
    if (!puts.awaitTermination(graceMillis, TimeUnit.MILLISECONDS)) {
      int dropped = puts.shutdownNow().size();
      metrics.remotePutFailures.inc(dropped);
      LOG.log(System.Logger.Level.WARNING, "stopped with " + dropped + " puts to the remote store "
          + remote + " not sent (their contexts stay in the local cache)");
      puts.awaitTermination(30, TimeUnit.SECONDS);
    }
    deleteQuietly(work);
  }

  /** Stops the background thread of a server that never ran (nothing was queued). */
  void stopNow() {
    puts.shutdownNow();
    deleteQuietly(work);
  }

  private static void deleteQuietly(Path dir) {
    try {
      RemoteContextStore.deleteTree(dir);
    } catch (IOException e) {
      LOG.log(System.Logger.Level.WARNING, "could not remove " + dir + ": " + e.getMessage());
    }
  }
}
