package org.retroinfer.wave.attention;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.IntUnaryOperator;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveConfig.ZoneBudget;

/**
 * An attention method as named on a command line: a backend name ({@code full}, {@code wave},
 * {@code quest}, {@code streaming}, {@code oracle}, any case), then optional {@code :}-separated
 * items that override the wave configuration the command was given:
 *
 * <ul>
 *   <li>{@code fixed} or {@code adaptive}: the zone budget mode. Switching mode also switches the
 *       floor to that mode's default ({@link WaveConfig#fixed()}: 64 clusters, {@link
 *       WaveConfig#adaptiveDefaults()}: 16) unless {@code min=} is given.
 *   <li>{@code r=5%}: FIXED retrieved share (implies {@code fixed}); {@code e=20%}: estimated share
 *       (FIXED) or its cap (ADAPTIVE); {@code min=64}: the floor of retrieved clusters (both modes).
 *   <li>{@code err=5%}, {@code est=0.995}: ADAPTIVE targets: the error the estimate of the clusters
 *       not read may leave, and the mass steady, retrieved and estimated clusters must hold
 *       plus estimated parts; {@code max=15%}: ADAPTIVE cap on the retrieved share (each implies
 *       {@code adaptive}).
 *   <li>{@code tokens=1100}: for the baselines, the tokens read exactly per head and step.
 *   <li>Bare numbers, as in {@code wave:5%} or {@code wave:15%:50%}: {@code r=} then {@code e=}.
 * </ul>
 *
 * Fractions are written as {@code 0.05} or {@code 5%}. The baselines read as many tokens exactly as
 * the wave configuration they get would on average ({@link WaveConfig#exactTokenBudget}), unless
 * {@code tokens=} is given or an evaluation gives them wave's measured budget ({@link #withTokens}).
 */
public final class MethodSpec {
  private final String name;
  private final ZoneBudget mode;
  private final Double retrieval;
  private final Double estimation;
  private final Integer minClusters;
  private final Double maxRetrieval;
  private final Double retrievalError;
  private final Double estimationMass;
  private final Integer tokens;
  /** The name reports use; null for the canonical form. */
  private final String label;

  private MethodSpec(String name, ZoneBudget mode, Double retrieval, Double estimation,
      Integer minClusters, Double maxRetrieval, Double retrievalError, Double estimationMass,
      Integer tokens, String label) {
    this.name = name;
    this.mode = mode;
    this.retrieval = retrieval;
    this.estimation = estimation;
    this.minClusters = minClusters;
    this.maxRetrieval = maxRetrieval;
    this.retrievalError = retrievalError;
    this.estimationMass = estimationMass;
    this.tokens = tokens;
    this.label = label;
  }

  /** Parses a method as described in the class javadoc. */
  public static MethodSpec parse(String spec) {
    String[] parts = spec.strip().split(":", -1);
    String name = parts[0].strip().toLowerCase(Locale.ROOT);
    if (!AttentionBackends.NAMES.contains(name)) {
      throw new IllegalArgumentException("unknown attention method '" + parts[0].strip()
          + "'; expected one of " + AttentionBackends.NAMES + ", optionally with settings, e.g."
          + " wave:fixed, wave:adaptive:err=3% or oracle:tokens=1100");
    }
    ZoneBudget mode = null;
    Double r = null;
    Double e = null;
    Integer min = null;
    Double max = null;
    Double err = null;
    Double est = null;
    Integer tokens = null;
    int bare = 0;
    for (int i = 1; i < parts.length; i++) {
      String item = parts[i].strip().toLowerCase(Locale.ROOT);
      int eq = item.indexOf('=');
      String key = eq < 0 ? item : item.substring(0, eq).strip();
      String value = eq < 0 ? null : item.substring(eq + 1).strip();
      if (eq < 0 && (key.equals("fixed") || key.equals("adaptive"))) {
        mode = key.equals("fixed") ? ZoneBudget.FIXED : ZoneBudget.ADAPTIVE;
        continue;
      }
      if (eq < 0) { // a bare number: r, then e
        if (bare >= 2) {
          throw bad(spec, "more than two bare budgets");
        }
        key = bare++ == 0 ? "r" : "e";
        value = item;
      }
      switch (key) {
        case "r" -> r = fraction(value, spec, "r");
        case "e" -> e = fraction(value, spec, "e");
        case "max" -> max = fraction(value, spec, "max");
        case "err" -> err = fraction(value, spec, "err");
        case "est" -> est = fraction(value, spec, "est");
        case "min" -> min = count(value, spec, "min", 0);
        case "tokens" -> tokens = count(value, spec, "tokens", 1);
        default -> throw bad(spec, "unknown setting '" + key + "'");
      }
    }
    if ((r != null) && (err != null || est != null || max != null)) {
      throw bad(spec, "r= belongs to the fixed budget and err=/est=/max= to the adaptive one");
    }
    ZoneBudget implied = r != null ? ZoneBudget.FIXED
        : err != null || est != null || max != null ? ZoneBudget.ADAPTIVE : null;
    if (mode != null && implied != null && mode != implied) {
      throw bad(spec, "'" + mode.name().toLowerCase(Locale.ROOT) + "' does not go with "
          + (implied == ZoneBudget.FIXED ? "r=" : "err=/est=/max="));
    }
    if (mode == null) {
      mode = implied;
    }
    if (tokens != null && name.equals("wave")) {
      throw bad(spec, "tokens= sets a baseline's budget; wave's comes from its zones");
    }
    if (tokens != null && name.equals("full")) {
      throw bad(spec, "full attention reads every token");
    }
    MethodSpec m = new MethodSpec(name, mode, r, e, min, max, err, est, tokens, null);
    m.configure(WaveConfig.defaults()); // settings that cannot hold fail here, with the spec named
    return m;
  }

  private static IllegalArgumentException bad(String spec, String why) {
    return new IllegalArgumentException("cannot read the method '" + spec.strip() + "': " + why
        + "; write e.g. wave, wave:fixed, wave:fixed:r=5%:e=20%, wave:adaptive:err=3%:est=0.99,"
        + " oracle:tokens=1100");
  }

  private static double fraction(String text, String spec, String key) {
    double v;
    try {
      v = text.endsWith("%") ? Double.parseDouble(text.substring(0, text.length() - 1)) / 100
          : Double.parseDouble(text);
    } catch (NumberFormatException ex) {
      throw bad(spec, key + "='" + text + "' is not a fraction like 0.05 or 5%");
    }
    if (!(v >= 0 && v <= 1)) {
      throw bad(spec, key + "=" + text + " is outside [0, 1]");
    }
    return v;
  }

  private static int count(String text, String spec, String key, int least) {
    try {
      int v = Integer.parseInt(text);
      if (v >= least) {
        return v;
      }
    } catch (NumberFormatException ex) {
      // below
    }
    throw bad(spec, key + "='" + text + "' is not a whole number >= " + least);
  }

  /** The backend name. */
  public String name() {
    return name;
  }

  /** Whether this is full attention, the reference. */
  public boolean isFull() {
    return name.equals("full");
  }

  /** Whether this is a peer baseline whose budget follows wave's. */
  public boolean isBaseline() {
    return !isFull() && !name.equals("wave");
  }

  /** The exact-read budget given with {@code tokens=}, or null. */
  public Integer tokens() {
    return tokens;
  }

  /**
   * This method with {@code tokens} tokens read exactly per head and step, if it is a baseline
   * without a budget of its own; otherwise this method. Its name ({@link #toString()}) is
   * unchanged, so that reports group it with itself.
   */
  public MethodSpec withTokens(int tokens) {
    if (!isBaseline() || this.tokens != null || retrieval != null || mode != null) {
      return this;
    }
    return new MethodSpec(name, mode, retrieval, estimation, minClusters, maxRetrieval,
        retrievalError, estimationMass, Math.max(1, tokens), toString());
  }

  /** The configuration this method runs with, given the command's {@code base}. */
  public WaveConfig configure(WaveConfig base) {
    WaveConfig.Builder b = base.toBuilder();
    if (mode != null && mode != base.budget()) {
      WaveConfig preset = mode == ZoneBudget.FIXED ? WaveConfig.fixed()
          : WaveConfig.adaptiveDefaults();
      b.budget(mode).retrievalMinClusters(preset.retrievalMinClusters());
    }
    if (retrieval != null) {
      b.retrievalFraction(retrieval);
    }
    if (minClusters != null) {
      b.retrievalMinClusters(minClusters);
    }
    if (maxRetrieval != null) {
      b.retrievalMaxFraction(maxRetrieval);
    }
    if (retrievalError != null) {
      b.retrievalError(retrievalError);
    }
    if (estimationMass != null) {
      b.estimationMass(estimationMass);
    }
    double r = retrieval != null ? retrieval : base.retrievalFraction();
    double e = estimation != null ? estimation : base.estimationFraction();
    b.estimationFraction(Math.min(e, 1 - r)); // both fixed shares must fit
    try {
      return b.build();
    } catch (IllegalArgumentException ex) {
      throw new IllegalArgumentException("the method '" + this + "' has settings that cannot hold: "
          + ex.getMessage(), ex);
    }
  }

  /** The backend, configured from {@code base}. */
  public AttentionBackend backend(WaveConfig base) {
    WaveConfig config = configure(base);
    if (tokens == null) {
      return AttentionBackends.create(name, config);
    }
    int budget = tokens;
    IntUnaryOperator exact = n -> Math.min(n, budget);
    return AttentionBackends.create(name, config, exact);
  }

  /** The canonical form: name, mode, then the settings given, e.g. {@code wave:fixed:r=5%}. */
  @Override
  public String toString() {
    if (label != null) {
      return label;
    }
    List<String> items = new ArrayList<>();
    items.add(name);
    if (mode != null) {
      items.add(mode.name().toLowerCase(Locale.ROOT));
    }
    add(items, "r", retrieval);
    add(items, "e", estimation);
    if (minClusters != null) {
      items.add("min=" + minClusters);
    }
    add(items, "max", maxRetrieval);
    if (retrievalError != null) {
      items.add("err=" + percent(retrievalError));
    }
    if (estimationMass != null) {
      items.add("est=" + estimationMass);
    }
    if (tokens != null) {
      items.add("tokens=" + tokens);
    }
    return String.join(":", items);
  }

  private static void add(List<String> items, String key, Double share) {
    if (share != null) {
      items.add(key + "=" + percent(share));
    }
  }

  private static String percent(double share) {
    String s = String.format(Locale.ROOT, "%.4f", share * 100).replaceAll("0+$", "");
    return (s.endsWith(".") ? s.substring(0, s.length() - 1) : s) + "%";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MethodSpec m && toString().equals(m.toString());
  }

  @Override
  public int hashCode() {
    return Objects.hash(toString());
  }
}
