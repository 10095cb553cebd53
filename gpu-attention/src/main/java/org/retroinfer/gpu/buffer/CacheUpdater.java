package org.retroinfer.gpu.buffer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Applies the replacement policy of a {@link BlockCache} on its own CPU thread, off the decode
 * step's critical path: after a step, {@link #submit} hands over the step's hits and misses and
 * returns at once; the thread touches the hits and admits the misses (LRU eviction), in step
 * order, and queues each {@link Admission} for the engine, which copies the rows into the blocks
 * and then calls {@link BlockCache#complete}.
 *
 * <p>An error on the updater thread is kept and rethrown by the next {@link #submit},
 * {@link #drainAdmissions} or {@link #awaitIdle}, so that it is never silently lost.
 */
public final class CacheUpdater implements AutoCloseable {
  private final BlockCache cache;
  private final ExecutorService thread;
  private final ConcurrentLinkedQueue<Admission> ready = new ConcurrentLinkedQueue<>();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private volatile Future<?> last;

  public CacheUpdater(BlockCache cache) {
    this.cache = cache;
    this.thread = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "wave-buffer-lru");
      t.setDaemon(true);
      return t;
    });
  }

  public BlockCache cache() {
    return cache;
  }

  /**
   * Hands over one step's accesses: {@code hits[0..hitCount)} and {@code misses[0..missCount)} with
   * their token counts. The arrays are copied; the call does not wait for the decisions.
   */
  public void submit(int[] hits, int hitCount, int[] misses, int[] missTokens, int missCount) {
    rethrow();
    int[] h = java.util.Arrays.copyOf(hits, hitCount);
    int[] m = java.util.Arrays.copyOf(misses, missCount);
    int[] t = java.util.Arrays.copyOf(missTokens, missCount);
    last = thread.submit(() -> {
      try {
        for (int c : h) {
          cache.touch(c);
        }
        for (int i = 0; i < m.length; i++) {
          Admission a = cache.admit(m[i], t[i]);
          if (a != null) {
            ready.add(a);
          }
        }
      } catch (Throwable e) {
        failure.compareAndSet(null, e);
      }
    });
  }

  /** Admissions decided so far and not yet drained, in decision order. */
  public List<Admission> drainAdmissions() {
    rethrow();
    List<Admission> out = new ArrayList<>();
    for (Admission a; (a = ready.poll()) != null; ) {
      out.add(a);
    }
    return out;
  }

  /** Waits until every submitted step has been applied (benchmarks and tests; not the decode path). */
  public void awaitIdle() {
    Future<?> f = last;
    if (f != null) {
      try {
        f.get(1, TimeUnit.MINUTES);
      } catch (Exception e) {
        throw new IllegalStateException("cache updater did not finish its work: " + e, e);
      }
    }
    rethrow();
  }

  private void rethrow() {
    Throwable e = failure.get();
    if (e != null) {
      throw new IllegalStateException("the cache updater thread failed: " + e, e);
    }
  }

  @Override
  public void close() {
    thread.shutdown();
    try {
      thread.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
