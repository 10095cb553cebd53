package org.retroinfer.model.eval;

import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionBackends;

/**
 * An attention method as named on a command line: {@code full}, {@code wave}, {@code quest},
 * {@code streaming}, {@code oracle}, optionally with a retrieval budget, {@code wave:0.05}: retrieve
 * 5% of the clusters (no floor of {@link WaveConfig#retrievalMinClusters}); the baselines then read
 * the same number of tokens exactly. A second number sets the estimation zone:
 * {@code wave:15%:50%} retrieves 15% and estimates 50% of the clusters.
 *
 * @param name the backend name
 * @param retrievalFraction the budget, or NaN for the configuration's own
 * @param estimationFraction the estimated share, or NaN for the configuration's own (capped so that
 *     both zones fit)
 */
public record MethodSpec(String name, double retrievalFraction, double estimationFraction) {

  public MethodSpec(String name, double retrievalFraction) {
    this(name, retrievalFraction, Double.NaN);
  }

  public MethodSpec {
    if (!Double.isNaN(estimationFraction)
        && (Double.isNaN(retrievalFraction) || !(estimationFraction >= 0 && estimationFraction <= 1))) {
      throw new IllegalArgumentException("estimation fraction of '" + name + "' must be in [0, 1] and"
          + " follow a retrieval fraction, e.g. wave:15%:50%; got " + estimationFraction);
    }
    if (!AttentionBackends.NAMES.contains(name)) {
      throw new IllegalArgumentException("unknown attention method '" + name + "'; expected one of "
          + AttentionBackends.NAMES + ", optionally with a retrieval fraction, e.g. wave:0.05");
    }
    if (!Double.isNaN(retrievalFraction) && !(retrievalFraction > 0 && retrievalFraction <= 1)) {
      throw new IllegalArgumentException("retrieval fraction of '" + name + "' must be in (0, 1], got "
          + retrievalFraction);
    }
  }

  /**
   * Parses {@code name}, {@code name:r} or {@code name:r:e} (fractions like 0.05 or percentages like
   * 5%).
   */
  public static MethodSpec parse(String spec) {
    String[] parts = spec.strip().split(":", -1);
    if (parts.length > 3) {
      throw new IllegalArgumentException("cannot read '" + spec + "'; write e.g. wave, wave:5% or"
          + " wave:15%:50%");
    }
    double r = parts.length > 1 ? fraction(parts[1], spec) : Double.NaN;
    double e = parts.length > 2 ? fraction(parts[2], spec) : Double.NaN;
    return new MethodSpec(parts[0].strip(), r, e);
  }

  private static double fraction(String text, String spec) {
    String t = text.strip();
    try {
      return t.endsWith("%") ? Double.parseDouble(t.substring(0, t.length() - 1)) / 100
          : Double.parseDouble(t);
    } catch (NumberFormatException ex) {
      throw new IllegalArgumentException("cannot read the budget '" + t + "' of '" + spec
          + "'; write e.g. wave:0.05, wave:5% or wave:15%:50%");
    }
  }

  /** The configuration this method runs with. */
  public WaveConfig configure(WaveConfig base) {
    if (Double.isNaN(retrievalFraction)) {
      return base;
    }
    double e = Math.min(Double.isNaN(estimationFraction) ? base.estimationFraction()
        : estimationFraction, 1 - retrievalFraction);
    return base.toBuilder().retrievalFraction(retrievalFraction).retrievalMinClusters(0)
        .estimationFraction(e).build();
  }

  public AttentionBackend backend(WaveConfig base) {
    return AttentionBackends.create(name, configure(base));
  }

  @Override
  public String toString() {
    return Double.isNaN(retrievalFraction) ? name
        : name + ":" + (float) (retrievalFraction * 100) + "%"
            + (Double.isNaN(estimationFraction) ? "" : ":" + (float) (estimationFraction * 100) + "%");
  }
}
