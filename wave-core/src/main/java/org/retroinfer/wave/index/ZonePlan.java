package org.retroinfer.wave.index;

import java.util.Arrays;

/**
 * Which clusters a query group reads exactly (the retrieval zone) and which it estimates from their
 * summaries (the estimation zone); everything else in the index is skipped. The steady zone (sinks,
 * window, recent tokens) is not part of the plan: it is always read.
 *
 * <p>A plan is reused from query to query by its owner; {@link #copy()} keeps one.
 */
public final class ZonePlan {
  private int[] retrieved = new int[0];
  private int[] estimated = new int[0];
  private int retrievedCount;
  private int estimatedCount;
  private double exactShare = Double.NaN;
  private double coveredShare = Double.NaN;

  /** Sizes the plan for up to {@code r} retrieved and {@code e} estimated clusters. */
  public void reserve(int r, int e) {
    if (retrieved.length < r) {
      retrieved = new int[r];
    }
    if (estimated.length < e) {
      estimated = new int[e];
    }
  }

  void reset(int r, int e) {
    reserve(r, e);
    retrievedCount = r;
    estimatedCount = e;
    exactShare = Double.NaN;
    coveredShare = Double.NaN;
  }

  void setShares(double exact, double covered) {
    exactShare = exact;
    coveredShare = covered;
  }

  /**
   * The estimated share of the group's attention mass that the exact part (steady zone and
   * retrieved clusters) holds, as the plan saw it (mean over the group's query heads); NaN for a
   * plan by fixed counts, which does not estimate it.
   */
  public double exactShare() {
    return exactShare;
  }

  /** Like {@link #exactShare()}, with the estimated clusters added. */
  public double coveredShare() {
    return coveredShare;
  }

  int[] retrievedArray() {
    return retrieved;
  }

  int[] estimatedArray() {
    return estimated;
  }

  public int retrievedCount() {
    return retrievedCount;
  }

  public int estimatedCount() {
    return estimatedCount;
  }

  /** The i-th retrieved cluster id (no particular order). */
  public int retrieved(int i) {
    return retrieved[i];
  }

  /** The i-th estimated cluster id (no particular order). */
  public int estimated(int i) {
    return estimated[i];
  }

  /** Retrieved cluster ids, ascending. */
  public int[] retrievedClusters() {
    int[] a = Arrays.copyOf(retrieved, retrievedCount);
    Arrays.sort(a);
    return a;
  }

  /** Estimated cluster ids, ascending. */
  public int[] estimatedClusters() {
    int[] a = Arrays.copyOf(estimated, estimatedCount);
    Arrays.sort(a);
    return a;
  }

  /** An independent copy. */
  public ZonePlan copy() {
    ZonePlan p = new ZonePlan();
    p.retrieved = Arrays.copyOf(retrieved, retrievedCount);
    p.estimated = Arrays.copyOf(estimated, estimatedCount);
    p.retrievedCount = retrievedCount;
    p.estimatedCount = estimatedCount;
    p.exactShare = exactShare;
    p.coveredShare = coveredShare;
    return p;
  }
}
