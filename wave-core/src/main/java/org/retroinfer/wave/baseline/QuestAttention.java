package org.retroinfer.wave.baseline;

import java.util.Arrays;
import java.util.function.IntUnaryOperator;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.math.KvKernels;
import org.retroinfer.wave.math.TopSelection;

/**
 * Quest (query-aware page selection): pages of 16 consecutive tokens, each summarised by the
 * elementwise min and max of its keys; a page's score for query {@code q} is
 * {@code sum_d max(q_d min_d, q_d max_d)}, an upper bound of {@code q . k} over the page. The top
 * pages up to the token budget are attended exactly; the current (last) page always is. For a query
 * group the per-head bounds are turned into a softmax over pages and summed over the heads, the same
 * aggregation wave attention uses for its clusters, so that the comparison is about the ranking
 * signal itself.
 */
public final class QuestAttention implements AttentionBackend {
  /** Tokens per page. */
  public static final int PAGE = 16;
  private final KvDType type;
  private final IntUnaryOperator budget;

  /** @param budget exactly-read tokens allowed for a context of the given length */
  public QuestAttention(KvDType type, IntUnaryOperator budget) {
    this.type = type;
    this.budget = budget;
  }

  @Override
  public String name() {
    return "quest";
  }

  @Override
  public KvDType kvType() {
    return type;
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return new Head(headDim, groupSize, type, budget);
  }

  /** Quest over one (layer, KV head). */
  public static final class Head extends PositionalHeadCache {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private final IntUnaryOperator budget;
    private float[] mins = new float[0];
    private float[] maxs = new float[0];
    private float[] scores = new float[0];
    private float[] total = new float[0];
    private long[] order = new long[0];
    private long[] scratch = new long[0];
    private final float[] key;

    Head(int dim, int groupSize, KvDType type, IntUnaryOperator budget) {
      super(dim, groupSize, type);
      this.budget = budget;
      this.key = new float[dim];
    }

    @Override
    protected void appended() {
      int t = keys.size() - 1;
      int page = t / PAGE;
      if ((page + 1) * dim > mins.length) {
        int cap = Math.max((page + 1) * dim, mins.length * 2);
        mins = Arrays.copyOf(mins, cap);
        maxs = Arrays.copyOf(maxs, cap);
      }
      keys.read(t, key, 0); // the stored (rounded) key, so the bound holds for what is attended
      int o = page * dim;
      if (t % PAGE == 0) {
        System.arraycopy(key, 0, mins, o, dim);
        System.arraycopy(key, 0, maxs, o, dim);
      } else {
        for (int i = 0; i < dim; i++) {
          mins[o + i] = Math.min(mins[o + i], key[i]);
          maxs[o + i] = Math.max(maxs[o + i], key[i]);
        }
      }
    }

    @Override
    public void attend(float[] queries, int qOff, float[] out, int outOff) {
      int n = keys.size();
      int allowed = budget.applyAsInt(n);
      if (allowed >= n) {
        attendAll(queries, qOff, out, outOff);
        return;
      }
      int pages = (n + PAGE - 1) / PAGE;
      int last = pages - 1;
      int pick = Math.min(last, Math.max(0, (allowed - (n - last * PAGE)) / PAGE));
      if (scores.length < groupSize * pages) {
        int cap = Math.max(pages, total.length * 2);
        scores = new float[groupSize * cap];
        total = new float[cap];
        order = new long[cap];
        scratch = new long[cap];
      }
      int stride = scores.length / groupSize;
      Arrays.fill(total, 0, last, 0f);
      for (int h = 0; h < groupSize; h++) {
        int so = h * stride;
        int qo = qOff + h * dim;
        for (int p = 0; p < last; p++) {
          scores[so + p] = bound(queries, qo, p * dim) * scale;
        }
        float z = KvKernels.expShifted(scores, so, last, KvKernels.max(scores, so, last));
        KvKernels.axpy(1f / z, scores, so, total, 0, last);
      }
      for (int p = 0; p < last; p++) {
        order[p] = TopSelection.pack(total[p], p);
      }
      TopSelection.selectLargest(order, 0, last, pick, scratch);
      state.reset();
      int read = 0;
      for (int i = 0; i < pick; i++) {
        int p = TopSelection.id(order[i]);
        state.absorbRange(keys, values, p * PAGE, p * PAGE + PAGE, queries, qOff, scale);
        read += PAGE;
      }
      state.absorbRange(keys, values, last * PAGE, n, queries, qOff, scale);
      read += n - last * PAGE;
      state.writeOutput(out, outOff);
      lastExact = read;
    }

    private float bound(float[] q, int qo, int po) {
      int i = 0;
      FloatVector acc = FloatVector.zero(F);
      for (int end = F.loopBound(dim); i < end; i += F.length()) {
        FloatVector qv = FloatVector.fromArray(F, q, qo + i);
        acc = acc.add(qv.mul(FloatVector.fromArray(F, mins, po + i))
            .max(qv.mul(FloatVector.fromArray(F, maxs, po + i))));
      }
      float s = acc.reduceLanes(VectorOperators.ADD);
      for (; i < dim; i++) {
        s += Math.max(q[qo + i] * mins[po + i], q[qo + i] * maxs[po + i]);
      }
      return s;
    }
  }
}
