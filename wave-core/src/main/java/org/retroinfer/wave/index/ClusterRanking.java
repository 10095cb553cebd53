package org.retroinfer.wave.index;

import org.retroinfer.wave.math.KvKernels;
import org.retroinfer.wave.math.TopSelection;

/**
 * Ranks the clusters of a {@link WaveIndex} for one query group and splits the top ones into the
 * retrieval and estimation zones, in one of two ways:
 *
 * <ul>
 *   <li>{@link #plan}, fixed counts (the published scheme): per query head {@code softmax_i(q_h .
 *       C_i / sqrt(d))} over all clusters, summed over the group's heads; the top {@code r} are
 *       retrieved, the next {@code e} estimated. Ranking ignores cluster size.
 *   <li>{@link #planByMass}, mass targets: per query head each cluster's estimated share of the
 *       attention mass, {@code s_i exp(q_h . C_i / sqrt(d))} over the same sum across clusters plus
 *       the steady zone's exact mass, summed over the group's heads (so the shares of the group add
 *       up to g); clusters are taken in that order until the targets are met, within bounds. The
 *       estimate is the one the estimation zone uses, a lower bound of each cluster's true mass.
 * </ul>
 *
 * Ties go to the lower cluster id.
 *
 * <p>Keeps the centroid logits of the last query ({@link #logits()}), which the estimation zone
 * reuses. Holds scratch memory; one instance per thread.
 */
public final class ClusterRanking {
  private final int groupSize;
  private float[] logits = new float[0];
  private float[] probs = new float[0];
  private float[] total = new float[0];
  private long[] keys = new long[0];
  private long[] scratch = new long[0];
  private int stride;

  public ClusterRanking(int groupSize) {
    this.groupSize = groupSize;
  }

  /**
   * Plans the zones of {@code index} for queries {@code q[qOff .. qOff + g * d)} by estimated mass:
   * the retrieval zone is the shortest prefix of the clusters ranked by estimated share whose
   * shares, with the steady zone's, reach {@code retrievalMass} (as a mean over the group's heads),
   * clamped to {@code [rMin, rMax]}; the estimation zone continues the same order until {@code
   * estimationMass} is reached, at most {@code eMax} clusters. The plan records the estimated
   * shares its zones hold.
   *
   * @param steadyLogMass per query head, the natural log of the steady zone's exact mass in units
   *     of scaled logits ({@code m + ln Z}), or negative infinity when the steady zone is empty
   */
  public void planByMass(WaveIndex index, float[] q, int qOff, float scale, double[] steadyLogMass,
      double retrievalMass, double estimationMass, int rMin, int rMax, int eMax, ZonePlan plan) {
    int clusters = index.clusterCount();
    if (rMin < 0 || rMin > rMax || rMax > clusters || eMax < 0 || rMin + eMax > clusters) {
      throw new IllegalArgumentException("zone bounds r in [" + rMin + ", " + rMax + "], e <= "
          + eMax + " do not fit " + clusters + " clusters");
    }
    ensure(clusters);
    KvKernels.blockedScores(index.blockedCentroids(), index.rankingType(), clusters, index.dim(),
        q, qOff, groupSize, scale, logits, 0, stride);
    java.util.Arrays.fill(total, 0, clusters, 0f);
    float[] logSizes = index.logSizes();
    double steadyShare = 0;
    for (int h = 0; h < groupSize; h++) {
      int off = h * stride;
      for (int c = 0; c < clusters; c++) {
        probs[c] = logits[off + c] + logSizes[c];
      }
      double steady = steadyLogMass[h];
      float shift = (float) Math.max(KvKernels.max(probs, 0, clusters), steady);
      double steadyPart = Math.exp(steady - shift); // 0 for an empty steady zone
      double z = KvKernels.expShifted(probs, 0, clusters, shift) + steadyPart;
      KvKernels.axpy((float) (1 / z), probs, 0, total, 0, clusters);
      steadyShare += steadyPart / z;
    }
    for (int c = 0; c < clusters; c++) {
      keys[c] = TopSelection.pack(total[c], c);
    }
    int r = TopSelection.selectMass(keys, 0, clusters, groupSize * retrievalMass - steadyShare,
        scratch);
    if (r < rMin) {
      TopSelection.selectLargest(keys, r, clusters, rMin - r, scratch);
      r = rMin;
    } else if (r > rMax) {
      TopSelection.selectLargest(keys, 0, r, rMax, scratch);
      r = rMax;
    }
    double exact = steadyShare + sumScores(0, r);
    int e = Math.min(eMax, clusters - r);
    int found = TopSelection.selectMass(keys, r, clusters, groupSize * estimationMass - exact,
        scratch);
    if (found > e) {
      TopSelection.selectLargest(keys, r, r + found, e, scratch);
    } else {
      e = found;
    }
    plan.reset(r, e);
    copyIds(r, e, plan);
    plan.setShares(exact / groupSize, (exact + sumScores(r, r + e)) / groupSize);
  }

  private double sumScores(int from, int to) {
    double s = 0;
    for (int i = from; i < to; i++) {
      s += TopSelection.score(keys[i]);
    }
    return s;
  }

  private void copyIds(int r, int e, ZonePlan plan) {
    int[] ret = plan.retrievedArray();
    int[] est = plan.estimatedArray();
    for (int i = 0; i < r; i++) {
      ret[i] = TopSelection.id(keys[i]);
    }
    for (int i = 0; i < e; i++) {
      est[i] = TopSelection.id(keys[r + i]);
    }
  }

  /**
   * Plans the zones of {@code index} for queries {@code q[qOff .. qOff + g * d)} with {@code r}
   * retrieved and {@code e} estimated clusters, into {@code plan}.
   */
  public void plan(WaveIndex index, float[] q, int qOff, float scale, int r, int e, ZonePlan plan) {
    int clusters = index.clusterCount();
    if (r < 0 || e < 0 || r + e > clusters) {
      throw new IllegalArgumentException("zone sizes r=" + r + ", e=" + e + " do not fit "
          + clusters + " clusters");
    }
    ensure(clusters);
    KvKernels.blockedScores(index.blockedCentroids(), index.rankingType(), clusters, index.dim(),
        q, qOff, groupSize, scale, logits, 0, stride);
    java.util.Arrays.fill(total, 0, clusters, 0f);
    for (int h = 0; h < groupSize; h++) {
      int off = h * stride;
      System.arraycopy(logits, off, probs, 0, clusters);
      float z = KvKernels.expShifted(probs, 0, clusters, KvKernels.max(probs, 0, clusters));
      KvKernels.axpy(1f / z, probs, 0, total, 0, clusters);
    }
    for (int c = 0; c < clusters; c++) {
      keys[c] = TopSelection.pack(total[c], c);
    }
    TopSelection.selectLargest(keys, 0, clusters, r + e, scratch);
    TopSelection.selectLargest(keys, 0, r + e, r, scratch);
    plan.reset(r, e);
    copyIds(r, e, plan);
  }

  /** Centroid logits of the last query: head {@code h}, cluster {@code c} at {@code h * logitStride() + c}. */
  public float[] logits() {
    return logits;
  }

  public int logitStride() {
    return stride;
  }

  /**
   * The ranking score of cluster {@code c} for the last query: its summed softmax ({@link #plan}) or
   * its estimated share of the mass summed over the group ({@link #planByMass}).
   */
  public float score(int c) {
    return total[c];
  }

  /**
   * Sizes the scratch memory for an index of up to {@code clusters} clusters ahead of the first
   * {@link #plan} on it.
   */
  public void reserve(int clusters) {
    ensure(clusters);
  }

  private void ensure(int clusters) {
    if (total.length < clusters) {
      // whole lane blocks: blockedScores writes the padding of the last one
      int lanes = KvKernels.lanes();
      int cap = (Math.max(clusters, total.length * 2) + lanes - 1) / lanes * lanes;
      stride = cap;
      logits = new float[groupSize * cap];
      probs = new float[cap];
      total = new float[cap];
      keys = new long[cap];
      scratch = new long[cap];
    }
  }
}
