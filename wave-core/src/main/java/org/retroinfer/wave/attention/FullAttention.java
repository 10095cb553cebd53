package org.retroinfer.wave.attention;

import org.retroinfer.wave.kv.KvDType;

/** Exact attention over every cached token: the accuracy reference and the speed baseline. */
public final class FullAttention implements AttentionBackend {
  private final KvDType type;

  public FullAttention(KvDType type) {
    this.type = type;
  }

  @Override
  public String name() {
    return "full";
  }

  @Override
  public KvDType kvType() {
    return type;
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return new Head(headDim, groupSize, type);
  }

  /** Full attention over one (layer, KV head). */
  public static final class Head extends PositionalHeadCache {
    Head(int dim, int groupSize, KvDType type) {
      super(dim, groupSize, type);
    }

    @Override
    public void attend(float[] queries, int qOff, float[] out, int outOff) {
      attendAll(queries, qOff, out, outOff);
    }
  }
}
