package org.retroinfer.gpu.buffer;

/**
 * Counters of a {@link BlockCache} since it was made or last reset. Hits and misses are counted at
 * lookup (one per retrieved cluster per step); admissions and evictions as the cache updater
 * decides them.
 */
public record CacheStats(long hitClusters, long missClusters, long hitTokens, long missTokens,
    long admitted, long evicted, long rejected) {

  /** Share of looked-up clusters that were hits; 0 when nothing was looked up. */
  public double clusterHitRatio() {
    long n = hitClusters + missClusters;
    return n == 0 ? 0 : (double) hitClusters / n;
  }

  /** Share of looked-up tokens that were hits (the share of retrieval bytes not crossing PCIe). */
  public double tokenHitRatio() {
    long n = hitTokens + missTokens;
    return n == 0 ? 0 : (double) hitTokens / n;
  }
}
