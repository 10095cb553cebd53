package org.retroinfer.lucene;

import java.util.HashMap;
import java.util.Map;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

/**
 * A {@link WaveConfig} as one line of {@code name=value} pairs, as stored in a context's metadata
 * document: readable in Luke, and every knob round-trips exactly (doubles in their shortest
 * decimal form, which {@link Double#parseDouble} reads back to the same bits).
 */
final class ConfigText {
  private ConfigText() {}

  static String format(WaveConfig c) {
    return "sinkTokens=" + c.sinkTokens()
        + ",windowTokens=" + c.windowTokens()
        + ",updateTokens=" + c.updateTokens()
        + ",retrievalFraction=" + c.retrievalFraction()
        + ",retrievalMinClusters=" + c.retrievalMinClusters()
        + ",estimationFraction=" + c.estimationFraction()
        + ",segmentTokens=" + c.segmentTokens()
        + ",tokensPerCluster=" + c.tokensPerCluster()
        + ",kmeansIterations=" + c.kmeansIterations()
        + ",kvType=" + c.kvType().name();
  }

  static WaveConfig parse(String text) {
    Map<String, String> m = new HashMap<>();
    for (String pair : text.split(",")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("stored wave configuration '" + text
            + "' is not a list of name=value pairs");
      }
      m.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    try {
      return new WaveConfig(
          Integer.parseInt(get(m, "sinkTokens", text)),
          Integer.parseInt(get(m, "windowTokens", text)),
          Integer.parseInt(get(m, "updateTokens", text)),
          Double.parseDouble(get(m, "retrievalFraction", text)),
          Integer.parseInt(get(m, "retrievalMinClusters", text)),
          Double.parseDouble(get(m, "estimationFraction", text)),
          Integer.parseInt(get(m, "segmentTokens", text)),
          Integer.parseInt(get(m, "tokensPerCluster", text)),
          Integer.parseInt(get(m, "kmeansIterations", text)),
          KvDType.valueOf(get(m, "kvType", text)));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("stored wave configuration '" + text + "' has a value that"
          + " is not a number: " + e.getMessage(), e);
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
