package org.retroinfer.app.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Function;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarStyle;
import me.tongfei.progressbar.ProgressState;

/**
 * The progress of one long step of a command (a prefill, an index build, a decode, an evaluation),
 * on the command's error stream, drawn by {@code me.tongfei:progressbar}: on a terminal a bar with
 * count, rate and ETA, redrawn in place; otherwise plain lines (logs, pipes, tests). A step that
 * ends within {@link #delayMillis()} shows nothing, so quick steps add no noise.
 *
 * <p>How progress shows is decided by the system property {@code retroinfer.progress}
 * or the environment variable {@code RETROINFER_PROGRESS} ({@code bar}, {@code lines} or
 * {@code none}); the launcher sets the property from whether its standard error is a terminal;
 * without either, a bar when the JVM has an interactive console. Safe to update from any thread.
 */
public final class Progress implements AutoCloseable {
  /** How progress is shown. */
  public enum Mode { BAR, LINES, NONE }

  /** Seconds between two plain lines of one step. */
  static final int LINE_EVERY_SECONDS = 10;

  private final ProgressBar bar;
  private final ProgressBarConsumer consumer;
  private final long start = System.nanoTime();

  private Progress(ProgressBar bar, ProgressBarConsumer consumer) {
    this.bar = bar;
    this.consumer = consumer;
  }

  /**
   * Starts showing a step.
   *
   * @param err where the lines go when the output is not a terminal (a bar goes to standard error)
   * @param task what is being done, e.g. "prefill"
   * @param unit what is counted, e.g. "tokens"
   * @param total how many of them the step does
   */
  public static Progress start(PrintWriter err, String task, String unit, long total) {
    return start(err, task, unit, total, null);
  }

  /**
   * A prefill of {@code tokens} tokens. Causal attention makes each token cost more than the one
   * before, so the ETA comes from a cost of {@code d + d^2 / }{@link #PREFILL_QUADRATIC_TOKENS} for
   * the first d tokens instead of the library's constant rate (which promised a 16K prefill's end
   * several times too early).
   */
  public static Progress prefill(PrintWriter err, long tokens) {
    return start(err, "prefill", "tokens", tokens, state -> {
      double done = cost(state.getCurrent());
      if (state.getCurrent() <= 0 || done <= 0) {
        return Optional.empty();
      }
      double left = cost(state.getMax()) - done;
      return Optional.of(Duration.ofMillis(
          (long) (state.getElapsedAfterStart().toMillis() * left / done)));
    });
  }

  /**
   * Q of the prefill cost model d + d^2 / Q: fits to the progress of two 16K prefills of the shipped
   * model on two cores gave Q of about 5,400 (cores idle) and 940 (cores shared); 4,096 sits between.
   */
  static final double PREFILL_QUADRATIC_TOKENS = 4096;

  private static double cost(long tokens) {
    return tokens + (double) tokens * tokens / PREFILL_QUADRATIC_TOKENS;
  }

  private static Progress start(PrintWriter err, String task, String unit, long total,
      Function<ProgressState, Optional<Duration>> eta) {
    Mode mode = mode();
    ProgressBarConsumer consumer = switch (mode) {
      case BAR -> new TerminalLine(delayMillis());
      case LINES -> new PlainLines(err, delayMillis());
      case NONE -> null;
    };
    if (consumer == null) {
      return new Progress(null, null);
    }
    ProgressBarBuilder builder = new ProgressBarBuilder()
        .setTaskName(String.format(Locale.ROOT, "%-9s", task))
        .setInitialMax(Math.max(1, total))
        .setUnit(" " + unit, 1)
        .showSpeed(new java.text.DecimalFormat("#,##0.0"))
        .setStyle(ProgressBarStyle.ASCII)
        .setUpdateIntervalMillis(mode == Mode.BAR ? 250 : 1000)
        .setConsumer(consumer);
    if (eta != null) {
      builder.setEtaFunction(eta);
    }
    ProgressBar bar = builder.build();
    return new Progress(bar, consumer);
  }

  /** The step has done {@code done} of its units. */
  public void stepTo(long done) {
    if (bar != null) {
      bar.stepTo(done);
    }
  }

  /** The step has done {@code done} of {@code total} units (for prefill and index callbacks). */
  public void update(int done, int total) {
    if (bar != null) {
      bar.maxHint(Math.max(1, total));
      bar.stepTo(done);
    }
  }

  /**
   * Prints a line of its own on {@code err} while the step runs (e.g. one result per prompt): on a
   * terminal the bar's line is cleared first and redrawn below it at the next refresh.
   */
  public void println(PrintWriter err, String line) {
    if (bar != null && consumer instanceof TerminalLine t) {
      t.printAbove(line);
    } else {
      err.println(line);
      err.flush();
    }
  }

  /** Seconds since the step started. */
  public double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }

  /** Ends the step: a bar stays on screen at its final state; plain lines end with a last one. */
  @Override
  public void close() {
    if (bar != null) {
      bar.close();
    }
  }

  /** How this process shows progress. */
  public static Mode mode() {
    String m = System.getProperty("retroinfer.progress", System.getenv("RETROINFER_PROGRESS"));
    if (m != null && !m.isBlank()) {
      try {
        return Mode.valueOf(m.strip().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        // an unknown value: decide as if none were set
      }
    }
    java.io.Console console = System.console();
    return console != null && console.isTerminal() ? Mode.BAR : Mode.LINES;
  }

  /** Milliseconds a step runs before it shows (property {@code retroinfer.progress.delay-ms}). */
  static long delayMillis() {
    return Long.getLong("retroinfer.progress.delay-ms", 1000);
  }

  /** Elapsed time of a step as a progress state sees it. */
  private static long millisSince(long startNanos) {
    return Duration.ofNanos(System.nanoTime() - startNanos).toMillis();
  }

  /** The library's one-line terminal display, shown only once the step has run for a while. */
  private static final class TerminalLine extends ConsoleProgressBarConsumer {
    private final long created = System.nanoTime();
    private final long delay;
    private boolean shown;

    TerminalLine(long delayMillis) {
      super(System.err);
      this.delay = delayMillis;
    }

    @Override
    public synchronized void accept(String line) {
      if (shown || millisSince(created) >= delay) {
        shown = true;
        super.accept(line);
        System.err.flush();
      }
    }

    @Override
    public synchronized void close() {
      if (shown) {
        super.close();
      }
    }

    /** A line above the bar: the bar's line is blanked, the text printed, the bar redrawn later. */
    synchronized void printAbove(String line) {
      if (shown) {
        System.err.print("\r" + " ".repeat(Math.max(0, getMaxRenderedLength())) + "\r");
      }
      System.err.println(line);
      System.err.flush();
    }
  }

  /**
   * Plain lines for logs: the first once the step has run for twice the delay, then one every
   * {@link #LINE_EVERY_SECONDS} seconds, and the final state if anything was printed.
   */
  private static final class PlainLines implements ProgressBarConsumer {
    private final PrintWriter out;
    private final long created = System.nanoTime();
    private final long delay;
    private long lastPrinted = -1;
    private String last;
    private String printed;

    PlainLines(PrintWriter out, long delayMillis) {
      this.out = out;
      this.delay = 2 * delayMillis;
    }

    @Override
    public int getMaxRenderedLength() {
      return 100;
    }

    @Override
    public synchronized void accept(String line) {
      last = line;
      long now = millisSince(created);
      boolean due = lastPrinted < 0 ? now >= delay : now - lastPrinted >= LINE_EVERY_SECONDS * 1000L;
      if (due) {
        print(line, now);
      }
    }

    private void print(String line, long now) {
      out.println(line.strip());
      out.flush();
      lastPrinted = now;
      printed = line;
    }

    @Override
    public synchronized void close() {
      if (last != null && lastPrinted >= 0 && !last.equals(printed)) {
        print(last, millisSince(created));
      }
    }
  }
}
