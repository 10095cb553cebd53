package org.retroinfer.wave.attention;

import java.util.List;
import java.util.function.IntUnaryOperator;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.baseline.QuestAttention;
import org.retroinfer.wave.baseline.StreamingLlmAttention;
import org.retroinfer.wave.baseline.TopKOracleAttention;

/**
 * The CPU attention methods by name. Baselines get the same exactly-read token budget as wave
 * attention under {@code config} ({@link WaveConfig#exactTokenBudget}), so that they are compared
 * at equal cost in exact reads.
 */
public final class AttentionBackends {
  /** Names accepted by {@link #create}. */
  public static final List<String> NAMES = List.of("full", "wave", "quest", "streaming", "oracle");

  private AttentionBackends() {}

  /**
   * Answers {@link #create} for some names in place of the CPU methods: the application's choice
   * of device (e.g. GPU methods for "wave" and "full"). Returns null for a name it leaves to the CPU.
   */
  @FunctionalInterface
  public interface Placement {
    AttentionBackend create(String name, WaveConfig config);
  }

  private static volatile Placement placement;

  /**
   * Makes {@link #create} answer through {@code p} first, for the rest of the process (the
   * {@code --device} of a command); null restores the CPU methods.
   */
  public static void place(Placement p) {
    placement = p;
  }

  public static AttentionBackend create(String name, WaveConfig config) {
    return create(name, config, config::exactTokenBudget);
  }

  /**
   * Like {@link #create(String, WaveConfig)}, with the baselines reading {@code exactBudget} of a
   * context's tokens exactly (context length to tokens) instead of wave's expected budget.
   */
  public static AttentionBackend create(String name, WaveConfig config,
      IntUnaryOperator exactBudget) {
    Placement p = placement;
    if (p != null) {
      AttentionBackend placed = p.create(name, config);
      if (placed != null) {
        return placed;
      }
    }
    return switch (name) {
      case "full" -> new FullAttention(config.kvType());
      case "wave" -> new WaveAttention(config);
      case "quest" -> new QuestAttention(config.kvType(), exactBudget);
      case "streaming" -> new StreamingLlmAttention(config.kvType(), config.sinkTokens(),
          exactBudget);
      case "oracle" -> new TopKOracleAttention(config.kvType(), exactBudget);
      default -> throw new IllegalArgumentException("unknown attention method '" + name
          + "'; expected one of " + NAMES);
    };
  }
}
