package org.retroinfer.wave;

import org.retroinfer.wave.kv.KvDType;

/**
 * Every knob of the wave index and tripartite attention, validated.
 *
 * <p>Two ways to size the zones ({@link ZoneBudget}):
 *
 * <ul>
 *   <li>{@link ZoneBudget#ADAPTIVE} ({@link #adaptiveDefaults()}, the {@link #defaults()}): per
 *       (layer, KV head, query group, step), clusters are read exactly in the order of the error
 *       their estimate would make per token read (the gap between a cluster's expected mass, from its centroid logit,
 *       size and spread, and the estimate's Jensen lower bound), until the error left is at most
 *       {@code retrievalError} of the head's expected attention mass, at least {@code
 *       retrievalMinClusters} and at most {@code retrievalMaxFraction} of the clusters; the rest
 *       are estimated in the order of their expected mass until steady, retrieved and estimated
 *       parts hold {@code estimationMass}, at most {@code estimationFraction} of the clusters;
 *       whatever is left is skipped. A head whose clusters are tight or whose attention is sharp
 *       reads few tokens, one whose attention falls on wide clusters many. See ALGORITHM.md and
 *       {@link org.retroinfer.wave.index.ClusterRanking#planAdaptive}.
 *   <li>{@link ZoneBudget#FIXED} ({@link #fixed()}): the published
 *       scheme: clusters ranked by their summed softmax of centroid logits (size ignored), the top
 *       {@code r = max(retrievalFraction, retrievalMinClusters)} retrieved and the next {@code e =
 *       estimationFraction} estimated.
 * </ul>
 *
 * <p>Common defaults: S=4 sink tokens, W=64 window tokens, an index update every U=1024 decoded
 * tokens, segments of 8192 tokens, 16 tokens per cluster, 10 k-means iterations, bfloat16 K/V.
 *
 * @param sinkTokens S: the first tokens, always attended exactly
 * @param windowTokens W: the last tokens, always attended exactly
 * @param updateTokens U: decoded tokens beyond the window that are clustered as one new segment
 * @param budget how the zones are sized: by error and mass targets, or by fixed shares
 * @param retrievalFraction FIXED: share of clusters attended exactly (rounded up)
 * @param retrievalMinClusters floor on the number of retrieved clusters (both modes)
 * @param retrievalMaxFraction ADAPTIVE: cap on the retrieved share of clusters (rounded up, never
 *     below the floor)
 * @param estimationFraction FIXED: share of clusters attended from their summaries (rounded up);
 *     ADAPTIVE: the cap on that share
 * @param retrievalError ADAPTIVE: the largest share of the expected attention mass that the
 *     estimate of the clusters not read may miss
 * @param estimationMass ADAPTIVE: the expected share of the attention mass that the steady,
 *     retrieval and estimation zones must hold together
 * @param segmentTokens target tokens per clustering segment at index build
 * @param tokensPerCluster average cluster size: a segment of n tokens gets round(n / this) clusters
 * @param kmeansIterations spherical k-means iterations per segment
 * @param kvType storage type of keys and values
 */
public record WaveConfig(
    int sinkTokens,
    int windowTokens,
    int updateTokens,
    ZoneBudget budget,
    double retrievalFraction,
    int retrievalMinClusters,
    double retrievalMaxFraction,
    double estimationFraction,
    double retrievalError,
    double estimationMass,
    int segmentTokens,
    int tokensPerCluster,
    int kmeansIterations,
    KvDType kvType) {

  /** How the retrieval and estimation zones are sized; see the class javadoc. */
  public enum ZoneBudget {
    /** By estimated attention mass, per (layer, KV head, query group, step), within bounds. */
    ADAPTIVE,
    /** By fixed shares of the clusters, ranked by summed softmax of centroid logits (published). */
    FIXED
  }

  public WaveConfig {
    require(budget != null, "budget must not be null");
    require(sinkTokens >= 0, "sinkTokens must be >= 0, got " + sinkTokens);
    require(windowTokens >= 1, "windowTokens must be >= 1 (the current token), got " + windowTokens);
    require(tokensPerCluster >= 1, "tokensPerCluster must be >= 1, got " + tokensPerCluster);
    require(updateTokens >= tokensPerCluster, "updateTokens (" + updateTokens
        + ") must be at least tokensPerCluster (" + tokensPerCluster + ")");
    require(retrievalFraction >= 0 && retrievalFraction <= 1,
        "retrievalFraction must be in [0, 1], got " + retrievalFraction);
    require(retrievalMinClusters >= 0, "retrievalMinClusters must be >= 0, got " + retrievalMinClusters);
    require(estimationFraction >= 0 && estimationFraction <= 1,
        "estimationFraction must be in [0, 1], got " + estimationFraction);
    require(retrievalFraction + estimationFraction <= 1, "retrievalFraction + estimationFraction must be"
        + " <= 1, got " + retrievalFraction + " + " + estimationFraction);
    require(retrievalMaxFraction >= 0 && retrievalMaxFraction <= 1,
        "retrievalMaxFraction must be in [0, 1], got " + retrievalMaxFraction);
    require(retrievalError >= 0 && retrievalError <= 1,
        "retrievalError must be in [0, 1], got " + retrievalError);
    require(estimationMass >= 0 && estimationMass <= 1,
        "estimationMass must be in [0, 1], got " + estimationMass);
    require(segmentTokens >= tokensPerCluster, "segmentTokens (" + segmentTokens
        + ") must be at least tokensPerCluster (" + tokensPerCluster + ")");
    require(kmeansIterations >= 0, "kmeansIterations must be >= 0, got " + kmeansIterations);
    require(kvType != null, "kvType must not be null");
  }

  /**
   * The defaults: {@link ZoneBudget#ADAPTIVE} zones ({@link #adaptiveDefaults()}); see the class
   * javadoc, and ALGORITHM.md and BENCHMARKS.md for the measurements behind the targets and bounds.
   */
  public static WaveConfig defaults() {
    return adaptiveDefaults();
  }

  /**
   * {@link ZoneBudget#ADAPTIVE} zones: a floor of 62 clusters, at most 15% of them retrieved while
   * the estimate of the others would miss more than 15% of the attention mass, then estimation up to
   * 99.5% of the mass, at most 23.2% of the clusters; S=4, W=64, U=1024, segments of 8192 tokens, 16
   * tokens per cluster, 10 k-means iterations, bfloat16 K/V.
   */
  public static WaveConfig adaptiveDefaults() {
    return new WaveConfig(4, 64, 1024, ZoneBudget.ADAPTIVE, 0.018, DEFAULT_MIN_CLUSTERS,
        DEFAULT_MAX_FRACTION, 0.232, DEFAULT_RETRIEVAL_ERROR, DEFAULT_ESTIMATION_MASS, 8192, 16, 10,
        KvDType.BFLOAT16);
  }

  /**
   * The published fixed budgets with the floor measured on the shipped model: r = max(1.8% of the
   * clusters, 64 clusters), e = 23.2%.
   */
  public static WaveConfig fixed() {
    return adaptiveDefaults().toBuilder().budget(ZoneBudget.FIXED)
        .retrievalMinClusters(PUBLISHED_FLOOR_CLUSTERS).build();
  }

  /** The FIXED scheme's floor on the shipped model (ALGORITHM.md), and the adaptive defaults' yardstick. */
  static final int PUBLISHED_FLOOR_CLUSTERS = 64;
  static final int DEFAULT_MIN_CLUSTERS = 62;
  static final double DEFAULT_MAX_FRACTION = 0.15;
  static final double DEFAULT_RETRIEVAL_ERROR = 0.15;
  static final double DEFAULT_ESTIMATION_MASS = 0.995;

  /**
   * This configuration with the {@link ZoneBudget#FIXED} budget, for a runtime that sizes zones by
   * fixed counts only (the GPU kernels today): an ADAPTIVE configuration becomes the published
   * shares with the published floor; a FIXED one is returned as it is.
   */
  public WaveConfig asFixed() {
    if (!adaptive()) {
      return this;
    }
    return toBuilder().budget(ZoneBudget.FIXED)
        .retrievalMinClusters(Math.max(retrievalMinClusters, PUBLISHED_FLOOR_CLUSTERS)).build();
  }

  public boolean adaptive() {
    return budget == ZoneBudget.ADAPTIVE;
  }

  /** A builder starting from {@link #defaults()}. */
  public static Builder builder() {
    return new Builder(defaults());
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** Contexts shorter than this have no index and are attended exactly: S + W + U. */
  public int minIndexedContext() {
    return sinkTokens + windowTokens + updateTokens;
  }

  /**
   * Retrieved clusters out of {@code clusters}: FIXED, r = max(ceil(fraction), floor); ADAPTIVE, the
   * most a step may retrieve, max(ceil(max fraction), floor). At most all of them.
   */
  public int retrievalClusters(int clusters) {
    if (clusters == 0) {
      return 0;
    }
    double share = adaptive() ? retrievalMaxFraction : retrievalFraction;
    int r = Math.max(1, (int) Math.ceil(share * clusters - 1e-9));
    return Math.min(clusters, Math.max(r, retrievalMinClusters));
  }

  /** The fewest clusters a step retrieves: the floor, at most all of them. */
  public int minRetrievalClusters(int clusters) {
    return adaptive() ? Math.min(clusters, retrievalMinClusters) : retrievalClusters(clusters);
  }

  /**
   * Estimated clusters out of {@code clusters}: FIXED, e after the r retrieved ones; ADAPTIVE, the
   * most a step may estimate, after the fewest it may retrieve.
   */
  public int estimationClusters(int clusters) {
    if (clusters == 0 || estimationFraction == 0) {
      return 0;
    }
    int e = Math.max(1, (int) Math.ceil(estimationFraction * clusters - 1e-9));
    return Math.min(clusters - minRetrievalClusters(clusters), e);
  }

  /** Clusters of a segment of {@code tokens} tokens: round(tokens / tokensPerCluster), at least 1. */
  public int clustersFor(int tokens) {
    return Math.max(1, Math.min(tokens, (int) Math.round((double) tokens / tokensPerCluster)));
  }

  /**
   * The expected number of tokens attended exactly in a context of {@code contextTokens} tokens right
   * after the index is built: sinks, window and r clusters of average size (ADAPTIVE: the fixed
   * scheme's r, since the adaptive budget is only known per step). Baselines compared at "the same
   * budget" get this many tokens unless the evaluation gives them wave's measured budget.
   */
  public int exactTokenBudget(int contextTokens) {
    if (contextTokens < minIndexedContext()) {
      return contextTokens;
    }
    int indexed = contextTokens - sinkTokens - windowTokens;
    int clusters = 0;
    for (int len : segmentLengths(indexed)) {
      clusters += clustersFor(len);
    }
    long exact = sinkTokens + windowTokens
        + Math.round((double) fixedRetrieval(clusters) * indexed / clusters);
    return (int) Math.min(contextTokens, exact);
  }

  private int fixedRetrieval(int clusters) {
    int r = Math.max(1, (int) Math.ceil(retrievalFraction * clusters - 1e-9));
    return Math.min(clusters,
        Math.max(r, adaptive() ? PUBLISHED_FLOOR_CLUSTERS : retrievalMinClusters));
  }

  /** How {@code tokens} indexed tokens split into segments at index build: near-equal lengths. */
  public int[] segmentLengths(int tokens) {
    int count = Math.max(1, (int) Math.round((double) tokens / segmentTokens));
    int[] lengths = new int[count];
    for (int i = 0; i < count; i++) {
      lengths[i] = (int) ((long) tokens * (i + 1) / count - (long) tokens * i / count);
    }
    return lengths;
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException("invalid wave configuration: " + message);
    }
  }

  /** Fluent construction; {@link #build()} validates. */
  public static final class Builder {
    private int sinkTokens;
    private int windowTokens;
    private int updateTokens;
    private ZoneBudget budget;
    private double retrievalFraction;
    private int retrievalMinClusters;
    private double retrievalMaxFraction;
    private double estimationFraction;
    private double retrievalError;
    private double estimationMass;
    private int segmentTokens;
    private int tokensPerCluster;
    private int kmeansIterations;
    private KvDType kvType;

    private Builder(WaveConfig c) {
      sinkTokens = c.sinkTokens;
      windowTokens = c.windowTokens;
      updateTokens = c.updateTokens;
      budget = c.budget;
      retrievalFraction = c.retrievalFraction;
      retrievalMinClusters = c.retrievalMinClusters;
      retrievalMaxFraction = c.retrievalMaxFraction;
      estimationFraction = c.estimationFraction;
      retrievalError = c.retrievalError;
      estimationMass = c.estimationMass;
      segmentTokens = c.segmentTokens;
      tokensPerCluster = c.tokensPerCluster;
      kmeansIterations = c.kmeansIterations;
      kvType = c.kvType;
    }

    public Builder sinkTokens(int v) {
      sinkTokens = v;
      return this;
    }

    public Builder windowTokens(int v) {
      windowTokens = v;
      return this;
    }

    public Builder updateTokens(int v) {
      updateTokens = v;
      return this;
    }

    public Builder budget(ZoneBudget v) {
      budget = v;
      return this;
    }

    public Builder retrievalMaxFraction(double v) {
      retrievalMaxFraction = v;
      return this;
    }

    public Builder retrievalError(double v) {
      retrievalError = v;
      return this;
    }

    public Builder estimationMass(double v) {
      estimationMass = v;
      return this;
    }

    public Builder retrievalFraction(double v) {
      retrievalFraction = v;
      return this;
    }

    public Builder retrievalMinClusters(int v) {
      retrievalMinClusters = v;
      return this;
    }

    public Builder estimationFraction(double v) {
      estimationFraction = v;
      return this;
    }

    public Builder segmentTokens(int v) {
      segmentTokens = v;
      return this;
    }

    public Builder tokensPerCluster(int v) {
      tokensPerCluster = v;
      return this;
    }

    public Builder kmeansIterations(int v) {
      kmeansIterations = v;
      return this;
    }

    public Builder kvType(KvDType v) {
      kvType = v;
      return this;
    }

    public WaveConfig build() {
      return new WaveConfig(sinkTokens, windowTokens, updateTokens, budget, retrievalFraction,
          retrievalMinClusters, retrievalMaxFraction, estimationFraction, retrievalError,
          estimationMass, segmentTokens, tokensPerCluster, kmeansIterations, kvType);
    }
  }
}
