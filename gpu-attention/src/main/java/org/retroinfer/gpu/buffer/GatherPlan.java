package org.retroinfer.gpu.buffer;

import java.util.Arrays;

/**
 * A list of row copies ("tasks") that assemble an execution buffer, or fill cache blocks: task
 * {@code t} copies {@code rows(t)} K and V rows from row {@code srcRow(t)} of source
 * {@code source(t)} to row {@code dstRow(t)} of the destination. This is the argument list of the
 * {@code gather_tasks} kernel, and {@link org.retroinfer.gpu.emulation.KernelEmulator} executes the
 * same list on the CPU. Tasks are at most {@link #maxRowsPerTask()} rows so that the GPU spreads a
 * large cluster over several blocks.
 */
public final class GatherPlan {
  /** The steady zone (device). */
  public static final int STEADY = 0;
  /** The block cache (device). */
  public static final int CACHE = 1;
  /** The cluster-contiguous K/V of all indexed tokens: pinned host tier, or device when resident. */
  public static final int CLUSTERS = 2;

  private final int maxRowsPerTask;
  private int[] source = new int[64];
  private long[] srcRow = new long[64];
  private long[] dstRow = new long[64];
  private int[] rows = new int[64];
  private int count;
  private final long[] rowsBySource = new long[3];

  public GatherPlan(int maxRowsPerTask) {
    if (maxRowsPerTask <= 0) {
      throw new IllegalArgumentException("maxRowsPerTask must be positive, got " + maxRowsPerTask);
    }
    this.maxRowsPerTask = maxRowsPerTask;
  }

  public int maxRowsPerTask() {
    return maxRowsPerTask;
  }

  public void clear() {
    count = 0;
    Arrays.fill(rowsBySource, 0);
  }

  /** Adds a copy of {@code n} rows, split into tasks of at most {@link #maxRowsPerTask()}. */
  public void add(int src, long from, long to, int n) {
    if (src < STEADY || src > CLUSTERS || from < 0 || to < 0 || n < 0) {
      throw new IllegalArgumentException("bad gather task: source " + src + ", rows " + from + " -> "
          + to + " x " + n);
    }
    rowsBySource[src] += n;
    for (int done = 0; done < n; done += maxRowsPerTask) {
      if (count == source.length) {
        int cap = count * 2;
        source = Arrays.copyOf(source, cap);
        srcRow = Arrays.copyOf(srcRow, cap);
        dstRow = Arrays.copyOf(dstRow, cap);
        rows = Arrays.copyOf(rows, cap);
      }
      source[count] = src;
      srcRow[count] = from + done;
      dstRow[count] = to + done;
      rows[count] = Math.min(maxRowsPerTask, n - done);
      count++;
    }
  }

  public int size() {
    return count;
  }

  public int source(int t) {
    return source[t];
  }

  public long srcRow(int t) {
    return srcRow[t];
  }

  public long dstRow(int t) {
    return dstRow[t];
  }

  public int rows(int t) {
    return rows[t];
  }

  /** Rows copied from {@code src} by this plan. */
  public long rowsFrom(int src) {
    return rowsBySource[src];
  }

  /** The task columns, trimmed, for upload: sources. */
  public int[] sources() {
    return Arrays.copyOf(source, count);
  }

  public long[] srcRows() {
    return Arrays.copyOf(srcRow, count);
  }

  public long[] dstRows() {
    return Arrays.copyOf(dstRow, count);
  }

  public int[] rowCounts() {
    return Arrays.copyOf(rows, count);
  }
}
