package org.retroinfer.gpu.buffer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A list of row copies ("tasks") that assemble an execution buffer, or fill cache blocks: task
 * {@code t} copies {@code rows(t)} K and V rows from row {@code srcRow(t)} of source
 * {@code source(t)} to row {@code dstRow(t)} of the destination. This is the argument list of the
 * {@code gather_tasks} kernel, and {@link org.retroinfer.gpu.emulation.KernelEmulator} executes the
 * same list on the CPU. Tasks are at most {@link #maxRowsPerTask()} rows so that the GPU spreads a
 * large cluster over several blocks; copies that continue one another are merged up to that limit.
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

  /**
   * Adds a copy of {@code n} rows, split into tasks of at most {@link #maxRowsPerTask()}. A copy
   * that continues the last task (same source, the rows right after its source and destination
   * rows) first fills that task up to the limit, so that e.g. a cluster in consecutive cache blocks
   * is one task, not one per block. Small enough to inline: the usual copies (merged into the last
   * task, or one new task) take no loop.
   */
  public void add(int src, long from, long to, int n) {
    if (src < STEADY || src > CLUSTERS || (from | to | n) < 0) {
      throw badTask(src, from, to, n);
    }
    rowsBySource[src] += n;
    put(src, from, to, n);
  }

  /**
   * {@link #add} for a caller that has checked the copy and counts its rows itself with
   * {@link #countRows} (the {@link ExecutionAssembler}'s loop over a step's clusters).
   */
  void put(int src, long from, long to, int n) {
    int last = count - 1;
    if (last >= 0) {
      int r = rows[last];
      if (source[last] == src && srcRow[last] + r == from && dstRow[last] + r == to) {
        if (n <= maxRowsPerTask - r) {
          rows[last] = r + n;
        } else {
          addSplit(src, from, to, n);
        }
        return;
      }
    }
    if (n > 0 && n <= maxRowsPerTask && count < source.length) {
      source[count] = src;
      srcRow[count] = from;
      dstRow[count] = to;
      rows[count++] = n;
      return;
    }
    addSplit(src, from, to, n);
  }

  /** Counts {@code n} rows copied from {@code src} by {@link #put}s. */
  void countRows(int src, long n) {
    rowsBySource[src] += n;
  }

  /** The rest of {@link #add}: fills the last task, then tasks of the row limit, growing. */
  private void addSplit(int src, long from, long to, int n) {
    int last = count - 1;
    if (last >= 0 && n > 0) {
      int r = rows[last];
      if (r < maxRowsPerTask && source[last] == src && srcRow[last] + r == from
          && dstRow[last] + r == to) {
        int take = Math.min(n, maxRowsPerTask - r);
        rows[last] = r + take;
        from += take;
        to += take;
        n -= take;
      }
    }
    while (n > 0) {
      if (count == source.length) {
        int cap = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(64, 2L * count));
        source = Arrays.copyOf(source, cap);
        srcRow = Arrays.copyOf(srcRow, cap);
        dstRow = Arrays.copyOf(dstRow, cap);
        rows = Arrays.copyOf(rows, cap);
      }
      int r = Math.min(maxRowsPerTask, n);
      source[count] = src;
      srcRow[count] = from;
      dstRow[count] = to;
      rows[count++] = r;
      from += r;
      to += r;
      n -= r;
    }
  }

  private static IllegalArgumentException badTask(int src, long from, long to, int n) {
    return new IllegalArgumentException("bad gather task: source " + src + ", rows " + from + " -> "
        + to + " x " + n);
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

  /**
   * Writes the task columns into native memory, for upload: sources and row counts as ints, source
   * and destination rows as longs, each column starting at its byte offset in {@code dst}.
   */
  public void writeColumns(MemorySegment dst, long sourcesAt, long srcRowsAt, long dstRowsAt,
      long rowCountsAt) {
    MemorySegment.copy(source, 0, dst, ValueLayout.JAVA_INT_UNALIGNED, sourcesAt, count);
    MemorySegment.copy(srcRow, 0, dst, ValueLayout.JAVA_LONG_UNALIGNED, srcRowsAt, count);
    MemorySegment.copy(dstRow, 0, dst, ValueLayout.JAVA_LONG_UNALIGNED, dstRowsAt, count);
    MemorySegment.copy(rows, 0, dst, ValueLayout.JAVA_INT_UNALIGNED, rowCountsAt, count);
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
