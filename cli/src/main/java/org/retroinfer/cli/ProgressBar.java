package org.retroinfer.cli;

import java.io.PrintWriter;

/**
 * A one-line progress bar on a terminal ({@code \r}-redrawn), or a line every quarter when the output
 * is not a terminal (logs, tests).
 */
final class ProgressBar {
  private static final int WIDTH = 30;
  private final PrintWriter out;
  private final String label;
  private final String unit;
  private final boolean terminal;
  private final long start = System.nanoTime();
  private int lastQuarter = -1;

  ProgressBar(PrintWriter out, String label, String unit) {
    this.out = out;
    this.label = label;
    this.unit = unit;
    this.terminal = System.console() != null && System.getenv("RETROINFER_PLAIN") == null;
  }

  synchronized void update(int done, int total) {
    double seconds = (System.nanoTime() - start) / 1e9;
    int filled = (int) ((long) WIDTH * done / total);
    String line = String.format("%-9s [%s%s] %,d/%,d %s  %.1f s", label, "#".repeat(filled),
        ".".repeat(WIDTH - filled), done, total, unit, seconds);
    if (terminal) {
      out.print("\r" + line);
      if (done == total) {
        out.println();
      }
      out.flush();
    } else {
      int quarter = (int) (4L * done / total);
      if (quarter != lastQuarter) {
        lastQuarter = quarter;
        out.println(line);
        out.flush();
      }
    }
  }

  double seconds() {
    return (System.nanoTime() - start) / 1e9;
  }
}
