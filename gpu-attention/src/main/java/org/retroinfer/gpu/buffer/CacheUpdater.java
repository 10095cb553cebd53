package org.retroinfer.gpu.buffer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Applies the replacement policy of a {@link BlockCache} on its own CPU thread, off the decode
 * step's critical path: after a step, {@link #submit} hands over the step's hits and misses and
 * returns at once; the thread touches the hits and admits the misses (LRU eviction), in step
 * order, and queues each {@link Admission} for the engine, which copies the rows into the blocks
 * and then calls {@link BlockCache#complete}.
 *
 * <p>{@link #submit} is a copy into a recycled buffer and a lock-free enqueue: while steps keep
 * coming the thread polls for them (every 0.1 ms, for up to 50 ms after its last step), so that
 * the caller does not pay for waking it (a system call, tens of microseconds in a virtual
 * machine); after that it sleeps until the next submit wakes it.
 *
 * <p>An error on the updater thread is kept and rethrown by the next {@link #submit},
 * {@link #drainAdmissions} or {@link #awaitIdle}, so that it is never silently lost.
 */
public final class CacheUpdater implements AutoCloseable {
  /** Touches per hold of the cache's lock: the engine's lookups never wait for long. */
  private static final int TOUCH_RUN = 64;
  private static final long POLL_MICROS = 100;
  private static final long LINGER_MILLIS = 50;
  private final BlockCache cache;
  private final Thread thread;
  private final ConcurrentLinkedQueue<Step> queue = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<Step> spare = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<Admission> ready = new ConcurrentLinkedQueue<>();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final AtomicLong submitted = new AtomicLong();
  private final AtomicLong applied = new AtomicLong();
  private volatile boolean sleeping;
  private volatile boolean closed;

  public CacheUpdater(BlockCache cache) {
    this.cache = cache;
    this.thread = new Thread(this::run, "wave-buffer-lru");
    thread.setDaemon(true);
    thread.start();
  }

  public BlockCache cache() {
    return cache;
  }

  /**
   * Hands over one step's accesses: {@code hits[0..hitCount)} and {@code misses[0..missCount)} with
   * their token counts. The arrays are copied (into buffers that the updater recycles, so that a
   * step allocates no large arrays); the call does not wait for the decisions.
   */
  public void submit(int[] hits, int hitCount, int[] misses, int[] missTokens, int missCount) {
    rethrow();
    if (closed) {
      throw new IllegalStateException("the cache updater is closed");
    }
    Step s = spare.poll();
    if (s == null) {
      s = new Step();
    }
    s.set(hits, hitCount, misses, missTokens, missCount);
    submitted.incrementAndGet();
    queue.add(s);
    if (sleeping) {
      LockSupport.unpark(thread);
    }
  }

  private void run() {
    long lingerNanos = TimeUnit.MILLISECONDS.toNanos(LINGER_MILLIS);
    long idleSince = System.nanoTime();
    while (true) {
      Step s = queue.poll();
      if (s != null) {
        try {
          apply(s);
        } catch (Throwable e) {
          failure.compareAndSet(null, e);
        } finally {
          spare.add(s);
          applied.incrementAndGet();
        }
        idleSince = System.nanoTime();
      } else if (closed) {
        return;
      } else if (System.nanoTime() - idleSince < lingerNanos) {
        LockSupport.parkNanos(this, TimeUnit.MICROSECONDS.toNanos(POLL_MICROS));
      } else {
        // a submit after this write sees it and wakes us; one before it is in the queue
        sleeping = true;
        if (queue.isEmpty() && !closed) {
          LockSupport.park(this);
        }
        sleeping = false;
        idleSince = System.nanoTime();
      }
    }
  }

  private void apply(Step s) {
    for (int i = 0; i < s.hitCount; i += TOUCH_RUN) {
      cache.touchAll(s.hits, i, Math.min(s.hitCount, i + TOUCH_RUN));
    }
    for (int i = 0; i < s.missCount; i++) {
      Admission a = cache.admit(s.misses[i], s.tokens[i]);
      if (a != null) {
        ready.add(a);
      }
    }
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
    long target = submitted.get();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    while (applied.get() < target) {
      if (!thread.isAlive()) {
        throw new IllegalStateException("cache updater thread ended with "
            + (target - applied.get()) + " steps not applied");
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("cache updater did not finish its work within a minute");
      }
      LockSupport.parkNanos(20_000);
    }
    rethrow();
  }

  private void rethrow() {
    Throwable e = failure.get();
    if (e != null) {
      throw new IllegalStateException("the cache updater thread failed: " + e, e);
    }
  }

  /** Applies the steps already submitted (for up to 10 s), then ends the thread. */
  @Override
  public void close() {
    closed = true;
    LockSupport.unpark(thread);
    try {
      thread.join(TimeUnit.SECONDS.toMillis(10));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One step's accesses, in buffers reused from step to step. */
  private static final class Step {
    int[] hits = new int[0];
    int[] misses = new int[0];
    int[] tokens = new int[0];
    int hitCount;
    int missCount;

    void set(int[] h, int hc, int[] m, int[] t, int mc) {
      if (hits.length < hc) {
        hits = new int[Math.max(hc, 2 * hits.length)];
      }
      if (misses.length < mc) {
        misses = new int[Math.max(mc, 2 * misses.length)];
        tokens = new int[misses.length];
      }
      System.arraycopy(h, 0, hits, 0, hc);
      System.arraycopy(m, 0, misses, 0, mc);
      System.arraycopy(t, 0, tokens, 0, mc);
      hitCount = hc;
      missCount = mc;
    }
  }
}
