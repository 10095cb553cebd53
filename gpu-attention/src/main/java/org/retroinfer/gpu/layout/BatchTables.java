package org.retroinfer.gpu.layout;

import java.util.Arrays;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * Where everything of a batch lives, as flat tables: the argument arrays of the GPU kernels.
 *
 * <p>An item is one (request, KV head) with its group of {@code g} query heads; items are numbered
 * request-major ({@code item = request * kvHeads + kvHead}), so queries laid out as
 * {@code [request][queryHead][d]} are exactly {@code [item][g][d]}. Per item: its steady zone is rows
 * {@code [steadyBase, steadyBase + steadyLen)} of the steady pool; its clusters are global cluster
 * ids {@code [centBase, centBase + clusters)} (centroid and value-sum rows of the same ids), cluster
 * {@code c} being rows {@code [clusterRow[c], clusterRow[c] + clusterSize[c])} of the
 * cluster-contiguous pool; it retrieves {@code r} and estimates {@code e} clusters; its execution
 * buffer is rows {@code [execBase, execBase + execCapacity)}, large enough for the steady zone and
 * the {@code r} largest clusters.
 */
public final class BatchTables {
  public final int items;
  public final int dim;
  public final int groupSize;
  public final KvDType kvType;
  public final long[] steadyBase;
  public final int[] steadyLen;
  public final long[] centBase;
  public final int[] clusters;
  public final int[] retrieve;
  public final int[] estimate;
  public final long[] clusterRow;
  public final int[] clusterSize;
  public final long[] execBase;
  public final int[] execCapacity;
  public final long steadyRows;
  public final long clusterRows;
  public final long execRows;

  /**
   * Tables for items with the given steady lengths and cluster sizes ({@code sizes[item][c]}); the
   * items' clusters are laid out one item after the other. r and e follow {@code config}.
   */
  public BatchTables(int dim, int groupSize, KvDType kvType, int[] steadyLen, int[][] sizes,
      WaveConfig config) {
    checkShape(dim, groupSize);
    if (steadyLen.length != sizes.length) {
      throw new IllegalArgumentException(steadyLen.length + " steady lengths for " + sizes.length
          + " items");
    }
    this.items = sizes.length;
    this.dim = dim;
    this.groupSize = groupSize;
    this.kvType = kvType;
    this.steadyLen = steadyLen.clone();
    this.steadyBase = new long[items];
    this.centBase = new long[items];
    this.clusters = new int[items];
    this.retrieve = new int[items];
    this.estimate = new int[items];
    this.execBase = new long[items];
    this.execCapacity = new int[items];
    long totalClusters = 0;
    for (int[] s : sizes) {
      totalClusters += s.length;
    }
    if (totalClusters > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(totalClusters + " clusters in one batch exceed an int index;"
          + " split the batch");
    }
    this.clusterRow = new long[(int) totalClusters];
    this.clusterSize = new int[(int) totalClusters];
    long steady = 0;
    long rows = 0;
    long exec = 0;
    int cg = 0;
    for (int i = 0; i < items; i++) {
      if (steadyLen[i] < 0) {
        throw new IllegalArgumentException("item " + i + " has a negative steady length");
      }
      steadyBase[i] = steady;
      steady += steadyLen[i];
      centBase[i] = cg;
      int nc = sizes[i].length;
      clusters[i] = nc;
      retrieve[i] = config.retrievalClusters(nc);
      estimate[i] = config.estimationClusters(nc);
      for (int c = 0; c < nc; c++) {
        if (sizes[i][c] <= 0) {
          throw new IllegalArgumentException("item " + i + ", cluster " + c + " has size "
              + sizes[i][c] + "; clusters are never empty");
        }
        clusterRow[cg] = rows;
        clusterSize[cg] = sizes[i][c];
        rows += sizes[i][c];
        cg++;
      }
      int[] sorted = sizes[i].clone();
      Arrays.sort(sorted);
      long cap = steadyLen[i];
      for (int k = 0; k < retrieve[i]; k++) {
        cap += sorted[nc - 1 - k];
      }
      execBase[i] = exec;
      execCapacity[i] = Math.toIntExact(cap);
      exec += cap;
    }
    this.steadyRows = steady;
    this.clusterRows = rows;
    this.execRows = exec;
  }

  static void checkShape(int dim, int groupSize) {
    if (dim <= 0 || dim % 16 != 0 || dim > 256) {
      throw new IllegalArgumentException("head dim " + dim + " is not supported by the GPU kernels:"
          + " expected a multiple of 16 in [16, 256]");
    }
    if (groupSize < 1 || groupSize > 8) {
      throw new IllegalArgumentException("query group size " + groupSize + " is not supported by the"
          + " GPU kernels: expected 1..8 query heads per KV head");
    }
  }

  /** Total clusters over all items. */
  public int totalClusters() {
    return clusterSize.length;
  }

  /** The largest cluster count of an item: the row stride of logits and scores. */
  public int maxClusters() {
    int m = 0;
    for (int c : clusters) {
      m = Math.max(m, c);
    }
    return m;
  }

  public int maxRetrieve() {
    int m = 0;
    for (int v : retrieve) {
      m = Math.max(m, v);
    }
    return m;
  }

  public int maxEstimate() {
    int m = 0;
    for (int v : estimate) {
      m = Math.max(m, v);
    }
    return m;
  }

  /** Bytes of one K (or V) row. */
  public long rowBytes() {
    return (long) dim * kvType.bytes();
  }
}
