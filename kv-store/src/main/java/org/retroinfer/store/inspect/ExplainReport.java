package org.retroinfer.store.inspect;

import java.util.List;

/**
 * What {@link Explainer} found for one decode step; serialises to JSON as it is. Masses are shares
 * of the true attention mass (full softmax in float64), averaged over a group's query heads.
 *
 * @param context the stored context
 * @param contextTokens its length
 * @param position the query's position
 * @param token the token at that position
 * @param heads every (layer, KV head)
 * @param meanSteady mean over heads of the steady zone's share
 * @param meanRetrieved mean share of the retrieval zone
 * @param meanEstimated mean true share of the estimation zone's clusters
 * @param meanSkipped mean share of the skipped clusters
 * @param meanOutputError mean relative L2 error of wave attention's output vs full attention's
 * @param budgets retrieval budgets of the curve (shares of the clusters)
 * @param meanRankedMass mean mass captured by steady + the ranking's top clusters, per budget
 * @param meanOracleMass mean mass captured by steady + the true top clusters, per budget
 */
public record ExplainReport(String context, int contextTokens, int position, int token,
    List<Head> heads, double meanSteady, double meanRetrieved, double meanEstimated,
    double meanSkipped, double meanOutputError, double[] budgets, double[] meanRankedMass,
    double[] meanOracleMass) {

  /**
   * One (layer, KV head).
   *
   * @param tokens tokens attended (the context plus the query's own token)
   * @param exactTokens tokens read exactly: the steady zone and the retrieved clusters (the budget)
   * @param plannedExactShare the share of the mass the plan expected the exact part to hold (its
   *     estimate, ADAPTIVE budgets only; NaN for FIXED), next to the true {@code steadyMass +
   *     retrievedMass}
   * @param estimateMass the estimation zone's estimated mass {@code sum s_i exp(q.C_i)} as a share
   *     of the true total: never above {@code estimatedMass} (Jensen)
   * @param budgetCurve per budget: {mass by ranking, mass by the true top clusters}
   * @param outputError relative L2 error of wave attention's output vs full attention's
   */
  /** Retrieval budgets of the mass-vs-budget curve, as shares of the clusters. */
  public static final double[] BUDGETS = {0.005, 0.01, 0.018, 0.05, 0.1, 0.25};

  public record Head(int layer, int kvHead, int tokens, int clusters, int retrievedCount,
      int estimatedCount, int exactTokens, double plannedExactShare, int[] retrieved, int[] estimated, double steadyMass,
      double retrievedMass, double estimatedMass, double skippedMass, double estimateMass,
      double[][] budgetCurve, double outputError) {

    public Head withOutputError(double e) {
      return new Head(layer, kvHead, tokens, clusters, retrievedCount, estimatedCount, exactTokens,
          plannedExactShare, retrieved,
          estimated, steadyMass, retrievedMass, estimatedMass, skippedMass, estimateMass,
          budgetCurve, e);
    }
  }

  /** A report of these heads: their masses averaged. */
  public static ExplainReport of(String context, int length, int position, int token, List<Head> heads) {
    int n = heads.size();
    double s = 0;
    double r = 0;
    double e = 0;
    double k = 0;
    double err = 0;
    double[] ranked = new double[BUDGETS.length];
    double[] oracle = new double[BUDGETS.length];
    for (Head h : heads) {
      s += h.steadyMass / n;
      r += h.retrievedMass / n;
      e += h.estimatedMass / n;
      k += h.skippedMass / n;
      err += h.outputError / n;
      for (int b = 0; b < ranked.length; b++) {
        ranked[b] += h.budgetCurve[b][0] / n;
        oracle[b] += h.budgetCurve[b][1] / n;
      }
    }
    return new ExplainReport(context, length, position, token, heads, s, r, e, k, err,
        BUDGETS.clone(), ranked, oracle);
  }
}
