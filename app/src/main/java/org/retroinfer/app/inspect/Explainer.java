package org.retroinfer.app.inspect;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.inspect.ExplainReport;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.ClusterRanking;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Explains one decode step over a stored context: the token at {@code position} (by default the one
 * right after the context: the greedy choice of the stored logits) is run through the model over the
 * stored K/V; at every layer and KV head, before wave attention answers, the explainer records which
 * clusters were retrieved and estimated, and what share of the true attention mass (full softmax
 * over every cached token, in float64) each zone holds; after it, how far wave attention's output is
 * from full attention's. It also measures, for retrieval budgets from 0.5% to 25% of the clusters,
 * the mass that the ranking's top clusters capture and the most that any choice of that many
 * clusters could (the true top clusters).
 */
public final class Explainer {
  /** Retrieval budgets of the mass-vs-budget curve, as shares of the clusters. */
  public static final double[] BUDGETS = ExplainReport.BUDGETS;

  private Explainer() {}

  /**
   * @param position the query's position: {@code [1, length]}; -1 for the end of the context
   * @param token the token at that position, or -1 for the stored one (the greedy next token at the
   *     end, which needs stored logits)
   */
  public static ExplainReport explain(Llama model, ContextStore.Scope scope, String contextId,
      int position, int token) throws IOException {
    ContextStore.Stored stored = scope.stored(contextId);
    int length = stored.tokens().length;
    int p = position < 0 ? length : position;
    if (p < 1 || p > length) {
      throw new IllegalArgumentException("query position " + p + " outside [1, " + length
          + "]: explain a position inside the stored context, or its end");
    }
    int t = token;
    if (t < 0) {
      if (p < length) {
        t = stored.tokens()[p];
      } else if (stored.logits() != null) {
        t = Sampler.argmax(stored.logits());
      } else {
        throw new IllegalArgumentException("context " + contextId + " has no stored logits, so the"
            + " token after it is unknown; pass --token ID or a --position below " + length);
      }
    }
    try (ReusedContext reused = scope.load(contextId, stored.tokens(), p, p < length)) {
      ContextCache cache = reused.cache();
      if (p < length) {
        cache.endPrefill(); // the prefix indexed as a prefill of it would have
      }
      Recorder rec = new Recorder(cache);
      model.decoder(rec).step(t);
      return ExplainReport.of(contextId, length, p, t, rec.heads);
    }
  }

  /** Delegates to the cache and records each (layer, KV head) at attention time. */
  static final class Recorder implements ContextCache {
    final ContextCache inner;
    final List<ExplainReport.Head> heads = new ArrayList<>();

    Recorder(ContextCache inner) {
      this.inner = inner;
    }

    @Override
    public void attend(int layer, float[] queries, float[] out) {
      AttentionShape s = inner.shape();
      int gw = s.groupSize() * s.headDim();
      List<double[]> full = new ArrayList<>();
      List<ExplainReport.Head> found = new ArrayList<>();
      for (int h = 0; h < s.kvHeads(); h++) {
        HeadCache head = inner.head(layer, h);
        if (!HeadLayout.isWave(head)) {
          throw new IllegalStateException("layer " + layer + ", KV head " + h + " is not a wave cache");
        }
        double[] ref = new double[gw];
        found.add(explainHead(layer, h, HeadLayout.of(head), queries, h * gw, ref));
        full.add(ref);
      }
      inner.attend(layer, queries, out);
      for (int h = 0; h < s.kvHeads(); h++) {
        double err = 0;
        double norm = 0;
        for (int i = 0; i < gw; i++) {
          double e = out[h * gw + i] - full.get(h)[i];
          err += e * e;
          norm += full.get(h)[i] * full.get(h)[i];
        }
        heads.add(found.get(h).withOutputError(Math.sqrt(err / Math.max(norm, 1e-300))));
      }
    }

    @Override public AttentionShape shape() { return inner.shape(); }
    @Override public AttentionBackend backend() { return inner.backend(); }
    @Override public int length(int layer) { return inner.length(layer); }
    @Override public void append(int layer, float[] k, float[] v) { inner.append(layer, k, v); }
    @Override public void endPrefill() { inner.endPrefill(); }
    @Override public HeadCache head(int layer, int kvHead) { return inner.head(layer, kvHead); }
    @Override public long memoryBytes() { return inner.memoryBytes(); }
    @Override public void close() { inner.close(); }
  }

  /**
   * One (layer, KV head): zones, true mass per zone (averaged over the group's query heads), the
   * estimate's mass, and the budget curve; writes full attention's output (float64) into {@code ref}.
   */
  static ExplainReport.Head explainHead(int layer, int kvHead, HeadLayout w, float[] q, int qOff,
      double[] ref) {
    int d = w.dim();
    int g = w.groupSize();
    double scale = 1.0 / Math.sqrt(d);
    WaveIndex index = w.index();
    int clusters = index.clusterCount();
    ZonePlan plan = clusters > 0 ? w.planZones(q, qOff) : null;
    int r = plan == null ? 0 : plan.retrievedCount();
    int e = plan == null ? 0 : plan.estimatedCount();
    double steady = 0;
    double retrieved = 0;
    double estimated = 0;
    double estimate = 0;
    double[][] curve = new double[BUDGETS.length][2];
    float[] row = new float[d];
    double[] steadyLog = new double[g];
    double[][] clusterMassByHead = new double[g][];
    double[] steadyByHead = new double[g];
    for (int h = 0; h < g; h++) {
      int qo = qOff + h * d;
      // logits of every token: sinks, index rows, tail
      double[] sink = logits(w.sinkKeys(), q, qo, scale, row);
      double[] indexed = logits(index.keys(), q, qo, scale, row);
      double[] tail = logits(w.tailKeys(), q, qo, scale, row);
      double max = Math.max(max(sink), Math.max(max(indexed), max(tail)));
      double z = 0;
      double[] out = new double[d];
      z += absorb(sink, max, w.sinkValues(), out, row);
      z += absorb(indexed, max, index.values(), out, row);
      z += absorb(tail, max, w.tailValues(), out, row);
      for (int i = 0; i < d; i++) {
        ref[h * d + i] = out[i] / z;
      }
      double steadyMass = (sumExp(sink, max) + sumExp(tail, max)) / z;
      double[] clusterMass = new double[clusters];
      for (int c = 0; c < clusters; c++) {
        double m = 0;
        for (int rr = index.clusterStart(c); rr < index.clusterStart(c + 1); rr++) {
          m += Math.exp(indexed[rr] - max);
        }
        clusterMass[c] = m / z;
      }
      steady += steadyMass / g;
      steadyLog[h] = max + Math.log(sumExp(sink, max) + sumExp(tail, max));
      clusterMassByHead[h] = clusterMass;
      steadyByHead[h] = steadyMass;
      if (plan != null) {
        for (int i = 0; i < r; i++) {
          retrieved += clusterMass[plan.retrieved(i)] / g;
        }
        for (int i = 0; i < e; i++) {
          int c = plan.estimated(i);
          estimated += clusterMass[c] / g;
          double l = 0;
          for (int t = 0; t < d; t++) {
            l += (double) q[qo + t] * index.rankingCentroid(c, t); // what attend estimates from
          }
          estimate += index.clusterSize(c) * Math.exp(l * scale - max) / z / g;
        }
        double[] sorted = clusterMass.clone();
        Arrays.sort(sorted);
        for (int b = 0; b < BUDGETS.length; b++) {
          int k = Math.min(clusters, Math.max(1, (int) Math.ceil(BUDGETS[b] * clusters - 1e-9)));
          double oracle = steadyMass;
          for (int i = 0; i < k; i++) {
            oracle += sorted[clusters - 1 - i];
          }
          curve[b][1] += oracle / g;
        }
      }
    }
    if (plan != null) {
      // the ranking's top clusters at each budget: the order attend ranks by (fixed: summed
      // softmax of centroid logits; adaptive: estimated mass, with the steady zone's exact mass)
      ClusterRanking ranking = new ClusterRanking(g);
      ZonePlan p = new ZonePlan();
      for (int b = 0; b < BUDGETS.length; b++) {
        int k = Math.min(clusters, Math.max(1, (int) Math.ceil(BUDGETS[b] * clusters - 1e-9)));
        if (w.config().adaptive()) {
          ranking.planAdaptive(index, q, qOff, (float) scale, steadyLog, 1, 1, k, k, 0, p);
        } else {
          ranking.plan(index, q, qOff, (float) scale, k, 0, p);
        }
        for (int h = 0; h < g; h++) {
          double ranked = steadyByHead[h];
          for (int i = 0; i < k; i++) {
            ranked += clusterMassByHead[h][p.retrieved(i)];
          }
          curve[b][0] += ranked / g;
        }
      }
    }
    int exactTokens = w.sinkKeys().size() + w.tailKeys().size();
    for (int i = 0; i < r; i++) {
      exactTokens += index.clusterSize(plan.retrieved(i));
    }
    return new ExplainReport.Head(layer, kvHead, w.size(), clusters, r, e, exactTokens,
        plan == null ? Double.NaN : plan.exactShare(),
        plan == null ? new int[0] : plan.retrievedClusters(),
        plan == null ? new int[0] : plan.estimatedClusters(), steady, retrieved, estimated,
        Math.max(0, 1 - steady - retrieved - estimated), estimate, curve, Double.NaN);
  }

  private static double[] logits(VectorStore keys, float[] q, int qo, double scale, float[] row) {
    int d = row.length;
    double[] l = new double[keys.size()];
    for (int i = 0; i < l.length; i++) {
      keys.read(i, row, 0);
      double s = 0;
      for (int t = 0; t < d; t++) {
        s += (double) q[qo + t] * row[t];
      }
      l[i] = s * scale;
    }
    return l;
  }

  private static double max(double[] a) {
    double m = Double.NEGATIVE_INFINITY;
    for (double x : a) {
      m = Math.max(m, x);
    }
    return m;
  }

  private static double sumExp(double[] l, double max) {
    double z = 0;
    for (double x : l) {
      z += Math.exp(x - max);
    }
    return z;
  }

  private static double absorb(double[] l, double max, VectorStore values, double[] out,
      float[] row) {
    double z = 0;
    for (int i = 0; i < l.length; i++) {
      double p = Math.exp(l[i] - max);
      z += p;
      values.read(i, row, 0);
      for (int t = 0; t < row.length; t++) {
        out[t] += p * row[t];
      }
    }
    return z;
  }
}
