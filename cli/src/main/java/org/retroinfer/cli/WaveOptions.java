package org.retroinfer.cli;

import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;
import picocli.CommandLine.Option;

/** The wave-attention knobs that commands expose; unset ones keep {@link WaveConfig#defaults()}. */
public final class WaveOptions {
  @Option(names = "--kv-type", paramLabel = "TYPE",
      description = "K/V storage type of the caches: ${COMPLETION-CANDIDATES} (default: BFLOAT16).")
  KvDType kvType;

  @Option(names = "--retrieval", paramLabel = "FRACTION",
      description = "Share of clusters attended exactly by wave attention (default 0.018, with a"
          + " floor of --retrieval-min-clusters).")
  Double retrieval;

  @Option(names = "--retrieval-min-clusters", paramLabel = "N",
      description = "Floor on retrieved clusters (default 64).")
  Integer retrievalMin;

  @Option(names = "--estimation", paramLabel = "FRACTION",
      description = "Share of clusters estimated from their centroids (default 0.232).")
  Double estimation;

  @Option(names = "--sinks", paramLabel = "TOKENS",
      description = "First tokens always attended exactly, S (default 4).")
  Integer sinks;

  @Option(names = "--window", paramLabel = "TOKENS",
      description = "Last tokens always attended exactly, W (default 64).")
  Integer window;

  public WaveConfig config() {
    WaveConfig.Builder b = WaveConfig.builder();
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
    if (sinks != null) {
      b.sinkTokens(sinks);
    }
    if (window != null) {
      b.windowTokens(window);
    }
    return b.build();
  }
}
