package org.retroinfer.model.tensor;

import java.util.stream.IntStream;

/**
 * Splits a range of independent work items over the common fork-join pool. Items are grouped into
 * chunks of at least {@code grain} items so that tiny ranges (a decode step's 128-row projection)
 * run inline instead of paying for a fork.
 */
public final class Parallel {
  private static final int THREADS = Runtime.getRuntime().availableProcessors();

  private Parallel() {}

  /** Work on items {@code [from, to)}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int from, int to);
  }

  /** Runs {@code body} over {@code [0, n)} in parallel chunks of at least {@code grain} items. */
  public static void forRange(int n, int grain, RangeBody body) {
    if (n <= 0) {
      return;
    }
    int chunks = (int) Math.min((n + (long) grain - 1) / Math.max(1, grain), 4L * THREADS);
    if (chunks <= 1 || THREADS == 1) {
      body.run(0, n);
      return;
    }
    IntStream.range(0, chunks).parallel()
        .forEach(c -> body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks)));
  }
}
