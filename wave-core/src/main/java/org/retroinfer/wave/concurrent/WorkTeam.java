package org.retroinfer.wave.concurrent;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A small team of always-ready threads for the many tiny parallel regions of a decode step (a
 * step of the shipped model runs about 50 of them, each 5-100 microseconds long).
 *
 * <p>Why not the common fork-join pool: its idle workers park within microseconds, and waking a
 * parked thread costs tens of microseconds on a virtual machine, about as long as the work. A
 * team's helpers spin for {@link #SPIN_NANOS} after each region before they park, so a region that
 * follows closely starts at once; the caller always works on its own region too.
 *
 * <p>A region is split into chunks that the caller and the helpers claim one at a time, so a helper
 * that the operating system has descheduled delays nothing: the caller takes its chunks and returns
 * as soon as every chunk is done, without waiting for late helpers.
 *
 * <p>One region runs at a time. A call made while another region is running (from another thread,
 * or from inside a chunk) runs its chunks on the calling thread, so the team never deadlocks.
 */
public final class WorkTeam {
  /** How long an idle helper spins before it parks. */
  public static final long SPIN_NANOS = 200_000;

  /** Pure spins (a few microseconds) before a waiting thread starts to yield its core. */
  static final int YIELD_AFTER_SPINS = 1_000;

  /** Work on items {@code [from, to)}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int from, int to);
  }

  private static final class Shared {
    static final WorkTeam TEAM = new WorkTeam(Runtime.getRuntime().availableProcessors());
  }

  /** The process-wide team, one thread per processor (the caller counts as one). */
  public static WorkTeam shared() {
    return Shared.TEAM;
  }

  /** One parallel region: immutable apart from its counters. */
  private static final class Region {
    final RangeBody body;
    final int n;
    final int chunks;
    final AtomicInteger next = new AtomicInteger();
    final AtomicInteger done = new AtomicInteger();
    volatile Throwable failure;

    Region(RangeBody body, int n, int chunks) {
      this.body = body;
      this.n = n;
      this.chunks = chunks;
    }

    /** Claims and runs chunks until none is left. */
    void work() {
      for (int c; (c = next.getAndIncrement()) < chunks; ) {
        try {
          body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks));
        } catch (Throwable t) {
          if (failure == null) {
            failure = t;
          }
        } finally {
          done.incrementAndGet();
        }
      }
    }
  }

  private final Thread[] helpers;
  private final AtomicBoolean[] parked;
  private final AtomicBoolean busy = new AtomicBoolean();
  private volatile Region current;

  /** A team of {@code threads} threads in all: the caller and {@code threads - 1} daemon helpers. */
  public WorkTeam(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("a team needs at least one thread, got " + threads);
    }
    helpers = new Thread[threads - 1];
    parked = new AtomicBoolean[threads - 1];
    for (int i = 0; i < helpers.length; i++) {
      int id = i;
      parked[i] = new AtomicBoolean();
      helpers[i] = Thread.ofPlatform().daemon().name("retroinfer-team-" + (i + 1))
          .unstarted(() -> helperLoop(id));
      helpers[i].start();
    }
  }

  /** Threads that work on a region, the caller included. */
  public int threads() {
    return helpers.length + 1;
  }

  /**
   * Runs {@code body} over {@code [0, n)} split into {@code chunks} contiguous chunks (at most
   * {@code n}), in parallel, and returns when all are done. The first exception a chunk throws is
   * rethrown here after the others finished.
   */
  public void forRange(int n, int chunks, RangeBody body) {
    if (n <= 0) {
      return;
    }
    int parts = Math.max(1, Math.min(chunks, n));
    Region region = new Region(body, n, parts);
    if (parts == 1 || helpers.length == 0 || !busy.compareAndSet(false, true)) {
      region.work();
    } else {
      try {
        current = region;
        for (int i = 0; i < helpers.length; i++) {
          if (parked[i].get()) {
            LockSupport.unpark(helpers[i]);
          }
        }
        region.work();
        // a helper may have been preempted inside its chunk (the machine is busy: JIT compiler
        // threads, other processes): after a short spin, yield so that it can run here, instead
        // of spinning through a whole scheduler time slice (measured: about 4 ms per stall)
        for (int spins = 0; region.done.get() < parts; spins++) {
          if (spins < YIELD_AFTER_SPINS) {
            Thread.onSpinWait();
          } else {
            Thread.yield();
          }
        }
      } finally {
        busy.set(false);
      }
    }
    Throwable failure = region.failure;
    if (failure instanceof RuntimeException e) {
      throw e;
    } else if (failure instanceof Error e) {
      throw e;
    } else if (failure != null) {
      throw new IllegalStateException(failure);
    }
  }

  private void helperLoop(int id) {
    Region seen = null;
    while (true) {
      Region r = current;
      long idleSince = System.nanoTime();
      int spins = 0;
      while (r == seen) {
        if ((++spins & 255) == 0 && System.nanoTime() - idleSince > SPIN_NANOS) {
          parked[id].set(true);
          if (current == seen) {
            LockSupport.park(this);
          }
          parked[id].set(false);
          idleSince = System.nanoTime();
          spins = 0;
        } else if (spins > YIELD_AFTER_SPINS) {
          Thread.yield(); // idle: leave the core to any other runnable thread
        } else {
          Thread.onSpinWait();
        }
        r = current;
      }
      seen = r;
      r.work();
    }
  }
}
