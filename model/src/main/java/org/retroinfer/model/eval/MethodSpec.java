package org.retroinfer.model.eval;

import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionBackends;

/**
 * An attention method as named on a command line: {@code full}, {@code wave}, {@code quest},
 * {@code streaming}, {@code oracle}, optionally with a retrieval budget, {@code wave:0.05}: retrieve
 * 5% of the clusters (no floor of {@link WaveConfig#retrievalMinClusters}); the baselines then read
 * the same number of tokens exactly.
 *
 * @param name the backend name
 * @param retrievalFraction the budget, or NaN for the configuration's own
 */
public record MethodSpec(String name, double retrievalFraction) {

  public MethodSpec {
    if (!AttentionBackends.NAMES.contains(name)) {
      throw new IllegalArgumentException("unknown attention method '" + name + "'; expected one of "
          + AttentionBackends.NAMES + ", optionally with a retrieval fraction, e.g. wave:0.05");
    }
    if (!Double.isNaN(retrievalFraction) && !(retrievalFraction > 0 && retrievalFraction <= 1)) {
      throw new IllegalArgumentException("retrieval fraction of '" + name + "' must be in (0, 1], got "
          + retrievalFraction);
    }
  }

  /** Parses {@code name} or {@code name:fraction} (a fraction like 0.05 or a percentage like 5%). */
  public static MethodSpec parse(String spec) {
    String s = spec.strip();
    int colon = s.indexOf(':');
    if (colon < 0) {
      return new MethodSpec(s, Double.NaN);
    }
    String budget = s.substring(colon + 1).strip();
    double f;
    try {
      f = budget.endsWith("%") ? Double.parseDouble(budget.substring(0, budget.length() - 1)) / 100
          : Double.parseDouble(budget);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("cannot read the retrieval budget '" + budget + "' of '" + spec
          + "'; write e.g. wave:0.05 or wave:5%");
    }
    return new MethodSpec(s.substring(0, colon).strip(), f);
  }

  /** The configuration this method runs with. */
  public WaveConfig configure(WaveConfig base) {
    if (Double.isNaN(retrievalFraction)) {
      return base;
    }
    double e = Math.min(base.estimationFraction(), 1 - retrievalFraction);
    return base.toBuilder().retrievalFraction(retrievalFraction).retrievalMinClusters(0)
        .estimationFraction(e).build();
  }

  public AttentionBackend backend(WaveConfig base) {
    return AttentionBackends.create(name, configure(base));
  }

  @Override
  public String toString() {
    return Double.isNaN(retrievalFraction) ? name
        : name + ":" + (float) (retrievalFraction * 100) + "%";
  }
}
