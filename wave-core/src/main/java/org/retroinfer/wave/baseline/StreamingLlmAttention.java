package org.retroinfer.wave.baseline;

import java.util.function.IntUnaryOperator;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * StreamingLLM: the first {@code sinks} tokens (attention sinks) and the most recent tokens up to
 * the budget; nothing else. What wave attention's steady zone alone would give.
 */
public final class StreamingLlmAttention implements AttentionBackend {
  private final KvDType type;
  private final int sinks;
  private final IntUnaryOperator budget;

  public StreamingLlmAttention(KvDType type, int sinks, IntUnaryOperator budget) {
    if (sinks < 0) {
      throw new IllegalArgumentException("sink tokens must be >= 0, got " + sinks);
    }
    this.type = type;
    this.sinks = sinks;
    this.budget = budget;
  }

  @Override
  public String name() {
    return "streaming";
  }

  @Override
  public KvDType kvType() {
    return type;
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return new Head(headDim, groupSize, type, sinks, budget);
  }

  /** StreamingLLM over one (layer, KV head). */
  public static final class Head extends PositionalHeadCache {
    private final int sinks;
    private final IntUnaryOperator budget;

    Head(int dim, int groupSize, KvDType type, int sinks, IntUnaryOperator budget) {
      super(dim, groupSize, type);
      this.sinks = sinks;
      this.budget = budget;
    }

    @Override
    public void attend(float[] queries, int qOff, float[] out, int outOff) {
      int n = keys.size();
      int allowed = budget.applyAsInt(n);
      if (allowed >= n) {
        attendAll(queries, qOff, out, outOff);
        return;
      }
      int s = Math.min(sinks, allowed);
      int window = Math.max(1, allowed - s);
      state.reset();
      state.absorbRange(keys, values, 0, s, queries, qOff, scale);
      state.absorbRange(keys, values, n - window, n, queries, qOff, scale);
      state.writeOutput(out, outOff);
      lastExact = s + window;
    }
  }
}
