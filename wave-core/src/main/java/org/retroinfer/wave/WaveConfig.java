package org.retroinfer.wave;

import org.retroinfer.wave.kv.KvDType;

/**
 * Every knob of the wave index and tripartite attention, validated. {@link #defaults()} are the
 * published defaults plus the retrieval floor measured on the shipped byte-level model (see
 * ALGORITHM.md): S=4 sink tokens, W=64 window tokens, an index update every U=1024 decoded tokens,
 * r = max(1.8% of clusters, 64 clusters) retrieved, e = 23.2% of clusters estimated, segments of
 * 8192 tokens, 16 tokens per cluster, 10 k-means iterations, bfloat16 K/V.
 *
 * @param sinkTokens S: the first tokens, always attended exactly
 * @param windowTokens W: the last tokens, always attended exactly
 * @param updateTokens U: decoded tokens beyond the window that are clustered as one new segment
 * @param retrievalFraction share of clusters whose tokens are attended exactly (rounded up)
 * @param retrievalMinClusters floor on the number of retrieved clusters
 * @param estimationFraction share of clusters attended from their summaries (rounded up)
 * @param segmentTokens target tokens per clustering segment at index build
 * @param tokensPerCluster average cluster size: a segment of n tokens gets round(n / this) clusters
 * @param kmeansIterations spherical k-means iterations per segment
 * @param kvType storage type of keys and values
 */
public record WaveConfig(
    int sinkTokens,
    int windowTokens,
    int updateTokens,
    double retrievalFraction,
    int retrievalMinClusters,
    double estimationFraction,
    int segmentTokens,
    int tokensPerCluster,
    int kmeansIterations,
    KvDType kvType) {

  public WaveConfig {
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
    require(segmentTokens >= tokensPerCluster, "segmentTokens (" + segmentTokens
        + ") must be at least tokensPerCluster (" + tokensPerCluster + ")");
    require(kmeansIterations >= 0, "kmeansIterations must be >= 0, got " + kmeansIterations);
    require(kvType != null, "kvType must not be null");
  }

  /** The defaults; see the class javadoc. */
  public static WaveConfig defaults() {
    return new WaveConfig(4, 64, 1024, 0.018, 64, 0.232, 8192, 16, 10, KvDType.BFLOAT16);
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

  /** Retrieved clusters r out of {@code clusters}: max(ceil(fraction), floor), at most all. */
  public int retrievalClusters(int clusters) {
    if (clusters == 0) {
      return 0;
    }
    int r = Math.max(1, (int) Math.ceil(retrievalFraction * clusters - 1e-9));
    return Math.min(clusters, Math.max(r, retrievalMinClusters));
  }

  /** Estimated clusters e out of {@code clusters}, after the r retrieved ones. */
  public int estimationClusters(int clusters) {
    if (clusters == 0 || estimationFraction == 0) {
      return 0;
    }
    int e = Math.max(1, (int) Math.ceil(estimationFraction * clusters - 1e-9));
    return Math.min(clusters - retrievalClusters(clusters), e);
  }

  /** Clusters of a segment of {@code tokens} tokens: round(tokens / tokensPerCluster), at least 1. */
  public int clustersFor(int tokens) {
    return Math.max(1, Math.min(tokens, (int) Math.round((double) tokens / tokensPerCluster)));
  }

  /**
   * The expected number of tokens attended exactly in a context of {@code contextTokens} tokens right
   * after the index is built: sinks, window and r clusters of average size. Baselines compared at
   * "the same budget" get this many tokens.
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
        + Math.round((double) retrievalClusters(clusters) * indexed / clusters);
    return (int) Math.min(contextTokens, exact);
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
    private double retrievalFraction;
    private int retrievalMinClusters;
    private double estimationFraction;
    private int segmentTokens;
    private int tokensPerCluster;
    private int kmeansIterations;
    private KvDType kvType;

    private Builder(WaveConfig c) {
      sinkTokens = c.sinkTokens;
      windowTokens = c.windowTokens;
      updateTokens = c.updateTokens;
      retrievalFraction = c.retrievalFraction;
      retrievalMinClusters = c.retrievalMinClusters;
      estimationFraction = c.estimationFraction;
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
      return new WaveConfig(sinkTokens, windowTokens, updateTokens, retrievalFraction,
          retrievalMinClusters, estimationFraction, segmentTokens, tokensPerCluster, kmeansIterations,
          kvType);
    }
  }
}
