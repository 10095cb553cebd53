package org.retroinfer.gpu.buffer;

import java.util.List;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;

/**
 * Decides where each row of the execution buffer comes from: each item's steady zone, then its
 * retrieved clusters in the rows the selection gave them, each cluster read from the block cache
 * when it is a hit and from the cluster-contiguous pool (pinned host tier) when it is a miss, or
 * always from that pool when there is no cache. Records the step's hits and misses for the
 * {@link CacheUpdater}. Cluster ids in the cache are global ({@code centBase[item] + local id}).
 *
 * <p>Reused from step to step by one thread.
 */
public final class ExecutionAssembler {
  private int[] hits = new int[64];
  private int[] misses = new int[64];
  private int[] missTokens = new int[64];
  private int hitCount;
  private int missCount;
  private int[] ids = new int[64];
  private int[] sizes = new int[64];
  private long[] dsts = new long[64];
  private int[][] blocksOf = new int[64][];

  /**
   * Fills {@code plan} with the copies that assemble the execution buffers of every item.
   *
   * @param cache the block cache, or null to read every retrieved cluster from the pool
   * @param steady whether to copy the steady zones too (false when they are already in place)
   */
  public void assemble(BatchTables t, Selection s, BlockCache cache, boolean steady, GatherPlan plan) {
    plan.clear();
    hitCount = 0;
    missCount = 0;
    int total = 0;
    for (int i = 0; i < t.items; i++) {
      total += t.retrieve[i];
    }
    ids = grow(ids, total);
    sizes = grow(sizes, total);
    dsts = growLong(dsts, total);
    if (blocksOf.length < total) {
      blocksOf = new int[Math.max(total, 2 * blocksOf.length)][];
    }
    int n = 0;
    for (int i = 0; i < t.items; i++) {
      if (steady && t.steadyLen[i] > 0) {
        plan.add(GatherPlan.STEADY, t.steadyBase[i], t.execBase[i], t.steadyLen[i]);
      }
      for (int k = 0; k < t.retrieve[i]; k++) {
        int local = s.retIds()[i * s.rStride() + k];
        if (local < 0 || local >= t.clusters[i]) {
          throw new IllegalStateException("item " + i + " selected cluster " + local + " outside [0, "
              + t.clusters[i] + "): the selection is corrupt");
        }
        int c = (int) (t.centBase[i] + local);
        ids[n] = c;
        sizes[n] = t.clusterSize[c];
        dsts[n++] = t.execBase[i] + s.retDst()[i * s.rStride() + k];
      }
    }
    if (cache != null) {
      cache.lookupAll(ids, sizes, n, blocksOf); // one lock per step, not one per cluster
    }
    for (int k = 0; k < n; k++) {
      int c = ids[k];
      int size = sizes[k];
      long dst = dsts[k];
      int[] blocks = cache == null ? null : blocksOf[k];
      if (blocks != null) {
        hits = grow(hits, hitCount + 1);
        hits[hitCount++] = c;
        int bt = cache.blockTokens();
        for (int b = 0; b < blocks.length; b++) {
          plan.add(GatherPlan.CACHE, (long) blocks[b] * bt, dst + (long) b * bt,
              Math.min(bt, size - b * bt));
        }
      } else {
        misses = grow(misses, missCount + 1);
        missTokens = grow(missTokens, missCount + 1);
        misses[missCount] = c;
        missTokens[missCount++] = size;
        plan.add(GatherPlan.CLUSTERS, t.clusterRow[c], dst, size);
      }
    }
  }

  /** Hands this step's accesses to the updater (returns at once). */
  public void submitTo(CacheUpdater updater) {
    updater.submit(hits, hitCount, misses, missTokens, missCount);
  }

  public int hitCount() {
    return hitCount;
  }

  public int missCount() {
    return missCount;
  }

  /**
   * The copies that fill admitted clusters' blocks from the cluster-contiguous pool: destination
   * rows are rows of the cache's block pool.
   */
  public static void fillPlan(BatchTables t, List<Admission> admissions, int blockTokens,
      GatherPlan plan) {
    plan.clear();
    for (Admission a : admissions) {
      long src = t.clusterRow[a.cluster()];
      int[] blocks = a.blocks();
      for (int b = 0; b < blocks.length; b++) {
        plan.add(GatherPlan.CLUSTERS, src + (long) b * blockTokens, (long) blocks[b] * blockTokens,
            Math.min(blockTokens, a.tokens() - b * blockTokens));
      }
    }
  }

  /** {@code a}, or a copy with room for at least {@code n} elements. */
  private static int[] grow(int[] a, int n) {
    return n <= a.length ? a : java.util.Arrays.copyOf(a, Math.max(n, a.length * 2));
  }

  private static long[] growLong(long[] a, int n) {
    return n <= a.length ? a : java.util.Arrays.copyOf(a, Math.max(n, a.length * 2));
  }
}
