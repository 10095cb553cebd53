package org.retroinfer.wave;

import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.kv.KvDType;

/** Wave attention on the CPU: a {@link WaveHeadCache} per (layer, KV head). */
public final class WaveAttention implements AttentionBackend {
  private final WaveConfig config;

  public WaveAttention(WaveConfig config) {
    this.config = config;
  }

  public WaveConfig config() {
    return config;
  }

  @Override
  public String name() {
    return "wave";
  }

  @Override
  public KvDType kvType() {
    return config.kvType();
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return new WaveHeadCache(config, headDim, groupSize);
  }
}
