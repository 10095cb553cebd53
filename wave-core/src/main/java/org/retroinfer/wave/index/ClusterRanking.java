package org.retroinfer.wave.index;

import org.retroinfer.wave.math.KvKernels;
import org.retroinfer.wave.math.TopSelection;

/**
 * Ranks the clusters of a {@link WaveIndex} for one query group and splits the top ones into the
 * retrieval and estimation zones: per query head {@code softmax_i(q_h . C_i / sqrt(d))} over all
 * clusters, summed over the group's heads; the top {@code r} are retrieved, the next {@code e}
 * estimated. Ranking ignores cluster size. Ties go to the lower cluster id.
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
    int[] ret = plan.retrievedArray();
    int[] est = plan.estimatedArray();
    for (int i = 0; i < r; i++) {
      ret[i] = TopSelection.id(keys[i]);
    }
    for (int i = 0; i < e; i++) {
      est[i] = TopSelection.id(keys[r + i]);
    }
  }

  /** Centroid logits of the last query: head {@code h}, cluster {@code c} at {@code h * logitStride() + c}. */
  public float[] logits() {
    return logits;
  }

  public int logitStride() {
    return stride;
  }

  /** The ranking score (summed softmax) of cluster {@code c} for the last query. */
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
