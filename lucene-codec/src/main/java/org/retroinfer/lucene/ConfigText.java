package org.retroinfer.lucene;

import java.util.HashMap;
import java.util.Map;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * A {@link WaveConfig} as one line of {@code name=value} pairs, as stored in a context's metadata
 * document: readable in Luke, and every knob round-trips exactly (doubles in their shortest
 * decimal form, which {@link Double#parseDouble} reads back to the same bits). Lines written before
 * the zone budget had modes lack its keys: they read as the FIXED budget they were written with.
 */
public final class ConfigText {
  private ConfigText() {}

  /** The line of {@code c}. */
  public static String format(WaveConfig c) {
    return "sinkTokens=" + c.sinkTokens()
        + ",windowTokens=" + c.windowTokens()
        + ",updateTokens=" + c.updateTokens()
        + ",budget=" + c.budget().name()
        + ",retrievalFraction=" + c.retrievalFraction()
        + ",retrievalMinClusters=" + c.retrievalMinClusters()
        + ",retrievalMaxFraction=" + c.retrievalMaxFraction()
        + ",estimationFraction=" + c.estimationFraction()
        + ",retrievalError=" + c.retrievalError()
        + ",estimationMass=" + c.estimationMass()
        + ",segmentTokens=" + c.segmentTokens()
        + ",tokensPerCluster=" + c.tokensPerCluster()
        + ",kmeansIterations=" + c.kmeansIterations()
        + ",kvType=" + c.kvType().name();
  }

  /** The configuration of a line {@link #format} wrote (or an older one). */
  public static WaveConfig parse(String text) {
    Map<String, String> m = new HashMap<>();
    for (String pair : text.split(",")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("stored wave configuration '" + text
            + "' is not a list of name=value pairs");
      }
      m.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    WaveConfig fixed = WaveConfig.fixed();
    if (!m.containsKey("budget")) { // written before budgets had modes: FIXED
      m.put("budget", WaveConfig.ZoneBudget.FIXED.name());
      m.put("retrievalMaxFraction", Double.toString(fixed.retrievalMaxFraction()));
      m.put("retrievalError", Double.toString(fixed.retrievalError()));
      m.put("estimationMass", Double.toString(fixed.estimationMass()));
    }
    m.putIfAbsent("retrievalError", Double.toString(fixed.retrievalError()));
    try {
      return new WaveConfig(
          Integer.parseInt(get(m, "sinkTokens", text)),
          Integer.parseInt(get(m, "windowTokens", text)),
          Integer.parseInt(get(m, "updateTokens", text)),
          budget(get(m, "budget", text), text),
          Double.parseDouble(get(m, "retrievalFraction", text)),
          Integer.parseInt(get(m, "retrievalMinClusters", text)),
          Double.parseDouble(get(m, "retrievalMaxFraction", text)),
          Double.parseDouble(get(m, "estimationFraction", text)),
          Double.parseDouble(get(m, "retrievalError", text)),
          Double.parseDouble(get(m, "estimationMass", text)),
          Integer.parseInt(get(m, "segmentTokens", text)),
          Integer.parseInt(get(m, "tokensPerCluster", text)),
          Integer.parseInt(get(m, "kmeansIterations", text)),
          KvDType.valueOf(get(m, "kvType", text)));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("stored wave configuration '" + text + "' has a value that"
          + " is not a number: " + e.getMessage(), e);
    }
  }

  private static WaveConfig.ZoneBudget budget(String name, String text) {
    try {
      return WaveConfig.ZoneBudget.valueOf(name);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("stored wave configuration '" + text + "' has an unknown"
          + " budget '" + name + "'; expected one of "
          + java.util.Arrays.toString(WaveConfig.ZoneBudget.values()), e);
    }
  }

  private static String get(Map<String, String> m, String key, String text) {
    String v = m.get(key);
    if (v == null) {
      throw new IllegalArgumentException("stored wave configuration '" + text + "' lacks " + key);
    }
    return v;
  }
}
