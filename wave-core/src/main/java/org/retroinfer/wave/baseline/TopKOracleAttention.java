package org.retroinfer.wave.baseline;

import java.util.Arrays;
import java.util.function.IntUnaryOperator;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.math.KvKernels;
import org.retroinfer.wave.math.TopSelection;

/**
 * The exact top-k oracle: scores every key, keeps the budget's worth of tokens with the largest
 * attention weight (softmax per head, summed over the group) and attends them exactly. It reads all
 * keys, so it is not a practical method: it is the upper bound of any retrieval at that budget.
 */
public final class TopKOracleAttention implements AttentionBackend {
  private final KvDType type;
  private final IntUnaryOperator budget;

  public TopKOracleAttention(KvDType type, IntUnaryOperator budget) {
    this.type = type;
    this.budget = budget;
  }

  @Override
  public String name() {
    return "oracle";
  }

  @Override
  public KvDType kvType() {
    return type;
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return new Head(headDim, groupSize, type, budget);
  }

  /** The oracle over one (layer, KV head). */
  public static final class Head extends PositionalHeadCache {
    private final IntUnaryOperator budget;
    private float[] logits = new float[0];
    private float[] probs = new float[0];
    private float[] total = new float[0];
    private float[] picked = new float[0];
    private long[] order = new long[0];
    private long[] scratch = new long[0];
    private int[] rows = new int[0];

    Head(int dim, int groupSize, KvDType type, IntUnaryOperator budget) {
      super(dim, groupSize, type);
      this.budget = budget;
    }

    @Override
    public void attend(float[] queries, int qOff, float[] out, int outOff) {
      int n = keys.size();
      int k = budget.applyAsInt(n);
      if (k >= n) {
        attendAll(queries, qOff, out, outOff);
        return;
      }
      if (total.length < n) {
        int cap = Math.max(n, total.length * 2);
        logits = new float[groupSize * cap];
        probs = new float[cap];
        total = new float[cap];
        order = new long[cap];
        scratch = new long[cap];
        rows = new int[cap];
        picked = new float[groupSize * cap];
      }
      int stride = total.length;
      KvKernels.scores(keys, 0, n, queries, qOff, groupSize, scale, logits, 0, stride);
      Arrays.fill(total, 0, n, 0f);
      for (int h = 0; h < groupSize; h++) {
        System.arraycopy(logits, h * stride, probs, 0, n);
        float z = KvKernels.expShifted(probs, 0, n, KvKernels.max(probs, 0, n));
        KvKernels.axpy(1f / z, probs, 0, total, 0, n);
      }
      for (int j = 0; j < n; j++) {
        order[j] = TopSelection.pack(total[j], j);
      }
      TopSelection.selectLargest(order, 0, n, k, scratch);
      for (int i = 0; i < k; i++) {
        rows[i] = TopSelection.id(order[i]);
        for (int h = 0; h < groupSize; h++) {
          picked[h * stride + i] = logits[h * stride + rows[i]];
        }
      }
      state.reset();
      state.absorbRows(values, rows, k, picked, 0, stride, null);
      state.writeOutput(out, outOff);
      lastExact = k;
    }
  }
}
