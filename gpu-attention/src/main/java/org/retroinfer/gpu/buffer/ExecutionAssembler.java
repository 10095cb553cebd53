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
 * <p>On the decode step's critical path, so it allocates nothing once its buffers have grown, and
 * looks the whole step up under one lock of the cache: first every retrieved cluster's mapping
 * slot (one cache line each, independent loads that the CPU overlaps: the table is megabytes),
 * then the copies.
 *
 * <p>Reused from step to step by one thread.
 */
public final class ExecutionAssembler {
  private int[] hits = new int[0];
  private int[] misses = new int[0];
  private int[] missTokens = new int[0];
  private long[] missDst = new long[0];
  private boolean missesAtDestination;
  private int hitCount;
  private int missCount;
  private int[] ids = new int[0];
  private int[] sizes = new int[0];
  private long[] dsts = new long[0];
  private long[] slots = new long[0];

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
    if (ids.length < total) {
      int cap = Math.max(total, 2 * ids.length);
      ids = new int[cap];
      sizes = new int[cap];
      dsts = new long[cap];
      slots = new long[2 * cap];
      hits = new int[cap];
      misses = new int[cap];
      missTokens = new int[cap];
      missDst = new long[cap];
    }
    if (steady) {
      for (int i = 0; i < t.items; i++) {
        if (t.steadyLen[i] > 0) {
          plan.add(GatherPlan.STEADY, t.steadyBase[i], t.execBase[i], t.steadyLen[i]);
        }
      }
    }
    if (cache == null) {
      int n = collect(t, s, null);
      long[] clusterRow = t.clusterRow;
      for (int k = 0; k < n; k++) {
        int c = ids[k];
        misses[k] = c;
        missTokens[k] = sizes[k];
        missDst[k] = dsts[k];
        plan.add(GatherPlan.CLUSTERS, missesAtDestination ? dsts[k] : clusterRow[c], dsts[k],
            sizes[k]);
      }
      missCount = n;
      return;
    }
    synchronized (cache) { // one lock per step, not one per cluster
      ClusterMappingTable table = cache.table();
      int n = collect(t, s, table);
      copies(t, cache, table, n, plan);
    }
  }

  /**
   * Reads the selection into {@code ids}, {@code sizes}, {@code dsts} and (with a table) the
   * clusters' mapping {@code slots}; returns the number of retrieved clusters.
   */
  private int collect(BatchTables t, Selection s, ClusterMappingTable table) {
    int[] retIds = s.retIds();
    int[] retDst = s.retDst();
    int stride = s.rStride();
    int[] clusterSize = t.clusterSize;
    int n = 0;
    for (int i = 0; i < t.items; i++) {
      int nc = t.clusters[i];
      int base = (int) t.centBase[i];
      long exec = t.execBase[i];
      int off = i * stride;
      for (int k = 0, r = t.retrieve[i]; k < r; k++) {
        int local = retIds[off + k];
        int row = retDst[off + k];
        if (local < 0 || local >= nc || row < 0) {
          throw new IllegalStateException("item " + i + " selected cluster " + local + " outside [0, "
              + nc + ") or placed it at row " + row + ": the selection is corrupt");
        }
        int c = base + local;
        ids[n] = c;
        sizes[n] = clusterSize[c];
        dsts[n++] = exec + row;
      }
    }
    if (table != null) {
      long[] sl = slots;
      for (int k = 0; k < n; k++) {
        int c = ids[k];
        sl[2 * k] = table.meta(c);
        sl[2 * k + 1] = table.more(c);
      }
    }
    return n;
  }

  /** The copies of the retrieved clusters, from their slots; the caller holds the cache's lock. */
  private void copies(BatchTables t, BlockCache cache, ClusterMappingTable table, int n,
      GatherPlan plan) {
    long[] clusterRow = t.clusterRow;
    long[] sl = slots;
    // the misses' pool rows first, in a loop of independent loads (word 1 of a miss's slot is free)
    for (int k = 0; k < n; k++) {
      if (ClusterMappingTable.kind(sl[2 * k]) < ClusterMappingTable.RUN) {
        sl[2 * k + 1] = clusterRow[ids[k]];
      }
    }
    int bt = cache.blockTokens();
    int hc = 0;
    int mc = 0;
    long hitTok = 0;
    long missTok = 0;
    for (int k = 0; k < n; k++) {
      long meta = sl[2 * k];
      long more = sl[2 * k + 1];
      int kind = ClusterMappingTable.kind(meta);
      int c = ids[k];
      int size = sizes[k];
      long dst = dsts[k];
      if (kind < ClusterMappingTable.RUN) {
        misses[mc] = c;
        missDst[mc] = dst;
        missTokens[mc++] = size;
        missTok += size;
        plan.put(GatherPlan.CLUSTERS, missesAtDestination ? dst : more, dst, size);
        continue;
      }
      hits[hc++] = c;
      hitTok += size;
      long blocks = ClusterMappingTable.count(meta);
      if (blocks * bt < size || (blocks - 1) * bt >= size) {
        throw new IllegalStateException("cluster " + c + " of " + size + " tokens is resident in "
            + blocks + " blocks of " + bt + " tokens: it was admitted with another size");
      }
      int b = ClusterMappingTable.first(meta);
      if (kind == ClusterMappingTable.RUN) { // consecutive blocks: one copy
        plan.put(GatherPlan.CACHE, (long) b * bt, dst, size);
        continue;
      }
      // block by block (the plan merges consecutive ones): three from the slot, then the chain
      plan.put(GatherPlan.CACHE, (long) b * bt, dst, bt);
      b = ClusterMappingTable.second(more);
      int row = bt;
      if (size > 2 * bt) {
        plan.put(GatherPlan.CACHE, (long) b * bt, dst + row, bt);
        b = ClusterMappingTable.third(more);
        row += bt;
        for (; row + bt < size; row += bt) {
          plan.put(GatherPlan.CACHE, (long) b * bt, dst + row, bt);
          b = table.nextBlock(b);
        }
      }
      plan.put(GatherPlan.CACHE, (long) b * bt, dst + row, size - row);
    }
    plan.countRows(GatherPlan.CACHE, hitTok);
    plan.countRows(GatherPlan.CLUSTERS, missTok);
    cache.countLookups(hc, mc, hitTok, missTok);
    hitCount = hc;
    missCount = mc;
  }

  /**
   * Where the misses' copies read: false (the default), rows of the cluster-contiguous pool that
   * holds every cluster; true, a staging area laid out like the execution buffer, into which the
   * caller copies each miss from a {@link ClusterSource} (see {@link #stageMisses}) before the
   * gather runs: a miss then reads its own destination rows of the staging area.
   */
  public void missesAtDestination(boolean v) {
    missesAtDestination = v;
  }

  /**
   * Copies the last {@link #assemble}'s misses from {@code source} into {@code stageK}/
   * {@code stageV} at their execution-buffer rows (rows of {@code rowBytes} bytes): what the
   * gather then reads when {@link #missesAtDestination} is set.
   */
  public void stageMisses(BatchTables t, ClusterSource source, java.lang.foreign.MemorySegment stageK,
      java.lang.foreign.MemorySegment stageV, long rowBytes) {
    for (int k = 0; k < missCount; k++) {
      int c = misses[k];
      int item = itemOf(t, c);
      long at = missDst[k] * rowBytes;
      source.read(item, c - (int) t.centBase[item], missTokens[k], stageK, at, stageV, at);
    }
  }

  /** The item whose clusters include global cluster id {@code c}. */
  static int itemOf(BatchTables t, int c) {
    int i = java.util.Arrays.binarySearch(t.centBase, c);
    if (i < 0) {
      i = -i - 2;
    }
    while (i + 1 < t.items && t.centBase[i + 1] == c) {
      i++; // items without clusters share a base with the next one
    }
    return i;
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
}
