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
 *   <li>{@link #planAdaptive}, error and mass targets: clusters are read exactly in the order of
 *       the error their estimate would make per token read, until the error left is small enough,
 *       then estimated in the order of their expected mass until enough of it is covered; every
 *       count within bounds. See the method.
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
  private float[] headGaps = new float[0];
  private float[] gaps = new float[0];
  private int stride;

  public ClusterRanking(int groupSize) {
    this.groupSize = groupSize;
  }

  /**
   * Plans the zones of {@code index} for queries {@code q[qOff .. qOff + g * d)} by the error the
   * estimate would make (the ADAPTIVE budget). Per query head and cluster, from the centroid logit
   * {@code l = q.C * scale}, the size {@code s} and the spread ({@link WaveIndex#spreads()},
   * {@link WaveIndex#spreadShape()}): the logits over the cluster's keys are modelled as spread
   * around {@code l} with variance {@code v}, so its expected mass is {@code s exp(l + v / 2)}; the
   * estimate, {@code s exp(l)}, is never more (Jensen), and the difference, the gap, is what
   * estimating the cluster instead of reading it would miss. Masses and gaps are shares of the
   * head's expected total (the steady zone's exact mass and every cluster's), summed over the group.
   *
   * <p>The retrieval zone takes clusters by gap per token (the most error removed per token read)
   * until the gaps left add up to at most {@code retrievalError} (as a mean over the group's heads),
   * clamped to {@code [rMin, rMax]}; the estimation zone takes the rest by expected mass until
   * steady, retrieved and estimated clusters hold {@code estimationMass}, at most {@code eMax}
   * clusters. The plan records the expected shares its zones hold.
   *
   * @param steadyLogMass per query head, the natural log of the steady zone's exact mass in units
   *     of scaled logits ({@code m + ln Z}), or negative infinity when the steady zone is empty
   */
  public void planAdaptive(WaveIndex index, float[] q, int qOff, float scale,
      double[] steadyLogMass, double retrievalError, double estimationMass, int rMin, int rMax,
      int eMax, ZonePlan plan) {
    int clusters = index.clusterCount();
    if (rMin < 0 || rMin > rMax || rMax > clusters || eMax < 0 || rMin + eMax > clusters) {
      throw new IllegalArgumentException("zone bounds r in [" + rMin + ", " + rMax + "], e <= "
          + eMax + " do not fit " + clusters + " clusters");
    }
    ensure(clusters);
    int d = index.dim();
    KvKernels.blockedScores(index.blockedCentroids(), index.rankingType(), clusters, d, q, qOff,
        groupSize, scale, logits, 0, stride);
    java.util.Arrays.fill(total, 0, clusters, 0f);
    java.util.Arrays.fill(gaps, 0, clusters, 0f);
    float[] sizes = index.sizes();
    float[] spreads = index.spreads();
    float[] shape = index.spreadShape();
    double steadyShare = 0;
    for (int h = 0; h < groupSize; h++) {
      int off = h * stride;
      float spread = 0; // v / 2 per unit of a cluster's spread
      for (int t = 0; t < d; t++) {
        float x = q[qOff + h * d + t];
        spread += shape[t] * x * x;
      }
      spread *= 0.5f * scale * scale;
      double steady = steadyLogMass[h];
      // the steady zone may dwarf every cluster: a shift that keeps the exponentials finite
      float shift = (float) Math.max(
          KvKernels.maxScaled(logits, off, spread, spreads, clusters), steady - 60);
      double steadyPart = Math.exp(steady - shift); // 0 for an empty steady zone
      // per token: the expected mass exp(l + v / 2) and its gap over the estimate's exp(l)
      double z = KvKernels.expectedAndGap(logits, off, spread, spreads, shift, sizes, probs,
          headGaps, clusters) + steadyPart;
      KvKernels.addShares(probs, headGaps, sizes, (float) (1 / z), total, gaps, clusters);
      steadyShare += steadyPart / z;
    }
    double gapSum = 0;
    for (int c = 0; c < clusters; c++) {
      keys[c] = TopSelection.pack(gaps[c], c); // gap per token
      gaps[c] *= sizes[c]; // the cluster's whole gap
      gapSum += gaps[c];
    }
    // the floor first (one pass, as the fixed plan's); past it only while the gaps left are
    // more than the target: the same clusters as the smallest prefix, clamped to the bounds
    TopSelection.selectLargest(keys, 0, clusters, rMin, scratch);
    double left = gapSum;
    for (int i = 0; i < rMin; i++) {
      left -= gaps[TopSelection.id(keys[i])];
    }
    int r = rMin + TopSelection.selectMass(keys, rMin, clusters,
        left - groupSize * retrievalError, gaps, scratch);
    if (r > rMax) {
      TopSelection.selectLargest(keys, rMin, r, rMax - rMin, scratch);
      r = rMax;
    }
    plan.reserve(r, 0);
    int[] retrieved = plan.retrievedArray();
    copyIds(keys, 0, r, retrieved);
    double exact = steadyShare;
    for (int i = 0; i < r; i++) {
      exact += total[retrieved[i]];
    }
    // the rest by expected mass: the cap first (one pass, as the fixed plan's), then the target
    for (int c = 0; c < clusters; c++) {
      keys[c] = TopSelection.pack(total[c], c);
    }
    for (int i = 0; i < r; i++) {
      keys[retrieved[i]] = RETRIEVED; // below every other key: never estimated
    }
    int e = Math.min(eMax, clusters - r);
    TopSelection.selectLargest(keys, 0, clusters, e, scratch);
    double need = groupSize * estimationMass - exact;
    double estimated = sumScores(0, e);
    if (estimated > need) { // fewer than the cap hold the target: the smallest prefix of them
      e = TopSelection.selectMass(keys, 0, e, need, scratch);
      estimated = sumScores(0, e);
    }
    plan.reset(r, e);
    copyIds(keys, 0, e, plan.estimatedArray());
    plan.setShares(exact / groupSize, (exact + estimated) / groupSize);
  }

  private double sumScores(int from, int to) {
    double sum = 0;
    for (int i = from; i < to; i++) {
      sum += TopSelection.score(keys[i]);
    }
    return sum;
  }

  /** A key below every {@link TopSelection#pack}ed one. */
  private static final long RETRIEVED = -1L;

  private static void copyIds(long[] from, int at, int n, int[] to) {
    for (int i = 0; i < n; i++) {
      to[i] = TopSelection.id(from[at + i]);
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
    copyIds(keys, 0, r, plan.retrievedArray());
    copyIds(keys, r, e, plan.estimatedArray());
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
   * its expected share of the mass summed over the group ({@link #planAdaptive}).
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
      headGaps = new float[cap];
      gaps = new float[cap];
    }
  }
}
