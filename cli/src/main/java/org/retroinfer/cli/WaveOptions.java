package org.retroinfer.cli;

import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/** The wave-attention knobs that commands expose; unset ones keep {@link WaveConfig#defaults()}. */
public final class WaveOptions {
  @Option(names = "--kv-type", paramLabel = "TYPE",
      description = "K/V storage type of the caches, in any case: ${COMPLETION-CANDIDATES}"
          + " (default: BFLOAT16).")
  KvDType kvType;

  @Option(names = "--budget", paramLabel = "MODE",
      description = "How wave attention sizes its zones: ADAPTIVE (the default: clusters read"
          + " by the error their estimate would make, per head and step) or FIXED (the published"
          + " shares).")
  WaveConfig.ZoneBudget budget;

  @Option(names = "--retrieval", paramLabel = "FRACTION",
      description = "FIXED: share of clusters attended exactly (default 0.018, with a floor of"
          + " --retrieval-min-clusters).")
  Double retrieval;

  @Option(names = "--retrieval-min-clusters", paramLabel = "N",
      description = "Floor on retrieved clusters (default 62 ADAPTIVE, 64 FIXED).")
  Integer retrievalMin;

  @Option(names = "--retrieval-max", paramLabel = "FRACTION",
      description = "ADAPTIVE: cap on the share of clusters attended exactly (default 0.15).")
  Double retrievalMax;

  @Option(names = "--retrieval-error", paramLabel = "SHARE",
      description = "ADAPTIVE: the largest share of the attention mass that the estimate of the"
          + " clusters not read may miss (default 0.15).")
  Double retrievalError;

  @Option(names = "--estimation-mass", paramLabel = "SHARE",
      description = "ADAPTIVE: the share of the attention mass the exact and estimated parts must"
          + " hold (default 0.995).")
  Double estimationMass;

  @Option(names = "--estimation", paramLabel = "FRACTION",
      description = "Share of clusters estimated from their centroids (FIXED), or its cap"
          + " (ADAPTIVE) (default 0.232).")
  Double estimation;

  @Option(names = "--sinks", paramLabel = "TOKENS",
      description = "First tokens always attended exactly, S (default 4).")
  Integer sinks;

  @Option(names = "--window", paramLabel = "TOKENS",
      description = "Last tokens always attended exactly, W (default 64).")
  Integer window;

  /**
   * The configuration, checked in the options' own words (before anything is loaded).
   *
   * @throws picocli.CommandLine.ParameterException for a value out of range
   */
  public WaveConfig config(CommandSpec spec) {
    if (retrieval != null) {
      Arguments.fraction(spec, "--retrieval", retrieval);
    }
    if (estimation != null) {
      Arguments.fraction(spec, "--estimation", estimation);
    }
    if (retrievalMin != null) {
      Arguments.atLeast(spec, "--retrieval-min-clusters", retrievalMin, 0, "clusters");
    }
    if (retrievalMax != null) {
      Arguments.fraction(spec, "--retrieval-max", retrievalMax);
    }
    if (retrievalError != null) {
      Arguments.fraction(spec, "--retrieval-error", retrievalError);
    }
    if (estimationMass != null) {
      Arguments.fraction(spec, "--estimation-mass", estimationMass);
    }
    if (sinks != null) {
      Arguments.atLeast(spec, "--sinks", sinks, 0, "tokens");
    }
    if (window != null) {
      Arguments.atLeast(spec, "--window", window, 1, "token (the current one)");
    }
    try {
      return config();
    } catch (IllegalArgumentException e) {
      WaveConfig d = base();
      double r = retrieval != null ? retrieval : d.retrievalFraction();
      double est = estimation != null ? estimation : d.estimationFraction();
      throw r + est > 1 ? Arguments.invalid(spec, "--retrieval %s and --estimation %s add up to"
          + " more than all clusters; their sum must be at most 1", r, est)
          : Arguments.invalid(spec, "%s", e.getMessage());
    }
  }

  /** The defaults of the --budget asked for, or the defaults. */
  private WaveConfig base() {
    return budget == null ? WaveConfig.defaults() : budget == WaveConfig.ZoneBudget.FIXED
        ? WaveConfig.fixed() : WaveConfig.adaptiveDefaults();
  }

  /** The configuration, unchecked: {@link WaveConfig} itself rejects values out of range. */
  public WaveConfig config() {
    WaveConfig.Builder b = base().toBuilder();
    if (kvType != null) {
      b.kvType(kvType);
    }
    if (retrieval != null) {
      b.retrievalFraction(retrieval);
    }
    if (retrievalMin != null) {
      b.retrievalMinClusters(retrievalMin);
    }
    if (estimation != null) {
      b.estimationFraction(estimation);
    }
    if (retrievalMax != null) {
      b.retrievalMaxFraction(retrievalMax);
    }
    if (retrievalError != null) {
      b.retrievalError(retrievalError);
    }
    if (estimationMass != null) {
      b.estimationMass(estimationMass);
    }
    if (sinks != null) {
      b.sinkTokens(sinks);
    }
    if (window != null) {
      b.windowTokens(window);
    }
    return b.build();
  }
}
