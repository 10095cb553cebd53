package org.retroinfer.gpu.buffer;

/**
 * The block cache of the wave buffer, as plain Java: which clusters are in GPU memory and where
 * (a {@link ClusterMappingTable}), which blocks are free (a {@link BlockAllocator}), and the
 * recency order that picks victims (an {@link LruList}), with hit/miss accounting.
 *
 * <p>Protocol, per decode step: the engine thread {@link #lookup}s every retrieved cluster (hits
 * read their blocks, misses read the pinned host tier); the {@link CacheUpdater}'s thread then
 * {@link #touch}es the hits and {@link #admit}s the misses, evicting least-recently-used clusters
 * for room; whoever copies an admitted cluster's rows into its blocks calls {@link #complete}, and
 * only then is the cluster a hit. So a lookup never returns blocks whose copy may be unfinished,
 * and a cluster evicted while its copy was in flight never becomes resident. The caller must order
 * a copy into blocks after every gather that may still read those blocks (the GPU engine waits on
 * the last gather's event).
 *
 * <p>Thread-safe: every method locks this cache, for O(cluster blocks) work but in the batched
 * call {@link #touchAll} and the {@link ExecutionAssembler}'s lookup of a whole step, which reads
 * the mapping table under the same lock.
 */
public final class BlockCache {
  private final ClusterMappingTable table;
  private final BlockAllocator allocator;
  private final LruList lru;
  private long nextGeneration = 1;
  private long hitClusters;
  private long missClusters;
  private long hitTokens;
  private long missTokens;
  private long admitted;
  private long evicted;
  private long rejected;

  /**
   * A cache for cluster ids {@code [0, clusters)} with {@code blocks} blocks of {@code blockTokens}
   * tokens.
   */
  public BlockCache(int clusters, int blocks, int blockTokens) {
    this.table = new ClusterMappingTable(clusters, blocks);
    this.allocator = new BlockAllocator(blocks, blockTokens);
    this.lru = new LruList(clusters);
  }

  /**
   * Blocks for a cache holding {@code fraction} of {@code totalTokens} tokens (the published default
   * is 5%), at least one block when the fraction is positive.
   */
  public static int blocksFor(long totalTokens, double fraction, int blockTokens) {
    if (!(fraction >= 0 && fraction <= 1)) {
      throw new IllegalArgumentException("cache fraction must be in [0, 1], got " + fraction);
    }
    if (blockTokens <= 0 || totalTokens < 0) {
      throw new IllegalArgumentException("need blockTokens > 0 and totalTokens >= 0, got "
          + blockTokens + " and " + totalTokens);
    }
    long tokens = (long) Math.ceil(totalTokens * fraction);
    long blocks = (tokens + blockTokens - 1) / blockTokens;
    if (blocks > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(blocks + " blocks do not fit an int index; use larger blocks");
    }
    return (int) Math.max(fraction > 0 ? 1 : 0, blocks);
  }

  public int blockTokens() {
    return allocator.blockTokens();
  }

  public int blocks() {
    return allocator.blocks();
  }

  public int clusters() {
    return table.clusters();
  }

  /**
   * The blocks of {@code cluster} if it is resident (a hit; a fresh array), else null (a miss);
   * counts it either way. Does not change the recency order: that is the updater's job, off the
   * critical path.
   */
  public synchronized int[] lookup(int cluster, int tokens) {
    int[] b = table.residentBlocks(cluster);
    if (b != null) {
      hitClusters++;
      hitTokens += tokens;
    } else {
      missClusters++;
      missTokens += tokens;
    }
    return b;
  }

  /**
   * The mapping table, for the {@link ExecutionAssembler}'s lookups of a whole step: it reads the
   * table holding this cache's lock ({@code synchronized (cache)}) and counts what it found with
   * {@link #countLookups}.
   */
  ClusterMappingTable table() {
    return table;
  }

  /** Counts lookups made through {@link #table()}; the caller holds this cache's lock. */
  void countLookups(int hits, int misses, long hitTok, long missTok) {
    hitClusters += hits;
    missClusters += misses;
    hitTokens += hitTok;
    missTokens += missTok;
  }

  /** Marks a resident or pending cluster as just used. */
  public synchronized void touch(int cluster) {
    if (table.state(cluster) != ClusterMappingTable.State.ABSENT) {
      lru.touch(cluster);
    }
  }

  /** {@link #touch} of {@code clusters[from..to)} in order, under one lock. */
  public synchronized void touchAll(int[] clusters, int from, int to) {
    for (int i = from; i < to; i++) {
      int c = clusters[i];
      if (table.state(c) != ClusterMappingTable.State.ABSENT) {
        lru.touch(c);
      }
    }
  }

  /**
   * Decides to cache {@code cluster} of {@code tokens} tokens: assigns it blocks, evicting the
   * least recently used clusters until enough are free. Returns null (nothing changed) when the
   * cluster is already assigned or needs more blocks than the whole cache has.
   */
  public synchronized Admission admit(int cluster, int tokens) {
    if (tokens <= 0) {
      throw new IllegalArgumentException("cluster " + cluster + " has " + tokens
          + " tokens; clusters are never empty");
    }
    if (table.state(cluster) != ClusterMappingTable.State.ABSENT) {
      lru.touch(cluster);
      return null;
    }
    int need = allocator.blocksFor(tokens);
    if (need > allocator.blocks()) {
      rejected++;
      return null;
    }
    while (allocator.freeBlocks() < need) {
      evict(lru.leastRecent());
    }
    int[] blocks = allocator.allocate(need);
    long gen = nextGeneration++;
    table.assign(cluster, blocks, gen);
    lru.touch(cluster);
    admitted++;
    return new Admission(cluster, tokens, blocks, gen);
  }

  /**
   * Called once an admission's rows are in its blocks: the cluster becomes a hit, unless it was
   * evicted (and possibly re-admitted) since; returns whether it became resident.
   */
  public synchronized boolean complete(Admission a) {
    if (table.state(a.cluster()) != ClusterMappingTable.State.PENDING
        || table.generation(a.cluster()) != a.generation()) {
      return false;
    }
    table.markResident(a.cluster());
    return true;
  }

  /** Removes a cluster from the cache (e.g. its rows changed); no-op when absent. */
  public synchronized void invalidate(int cluster) {
    if (table.state(cluster) != ClusterMappingTable.State.ABSENT) {
      evict(cluster);
      evicted--; // not a replacement decision
    }
  }

  private void evict(int victim) {
    if (victim < 0) {
      throw new IllegalStateException("no cluster left to evict but the allocator has only "
          + allocator.freeBlocks() + " free blocks: the mapping table and the allocator disagree");
    }
    lru.remove(victim);
    allocator.release(table.clear(victim));
    evicted++;
  }

  public synchronized ClusterMappingTable.State state(int cluster) {
    return table.state(cluster);
  }

  /** Resident clusters, most recently used first (pending ones excluded). */
  public synchronized int[] residentByRecency() {
    int[] all = lru.toArray();
    int n = 0;
    for (int c : all) {
      if (table.state(c) == ClusterMappingTable.State.RESIDENT) {
        all[n++] = c;
      }
    }
    return java.util.Arrays.copyOf(all, n);
  }

  public synchronized int freeBlocks() {
    return allocator.freeBlocks();
  }

  public synchronized CacheStats stats() {
    return new CacheStats(hitClusters, missClusters, hitTokens, missTokens, admitted, evicted, rejected);
  }

  /** Zeroes the counters (not the contents). */
  public synchronized void resetStats() {
    hitClusters = missClusters = hitTokens = missTokens = admitted = evicted = rejected = 0;
  }
}
