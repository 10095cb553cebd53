package org.retroinfer.gpu;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.SoftmaxState;
import org.retroinfer.wave.index.WaveIndex;

/** Random wave-core head caches and an independent tripartite reference for the tests. */
public final class TestData {
  private TestData() {}

  /**
   * A head cache with {@code tokens} prompt tokens (endPrefill) and {@code decoded} more: keys drawn
   * around a few random directions (so that attention has structure), values Gaussian.
   */
  public static WaveHeadCache head(Random rnd, WaveConfig config, int d, int g, int tokens, int decoded) {
    WaveHeadCache h = new WaveHeadCache(config, d, g);
    float[][] dirs = new float[8][d];
    for (float[] dir : dirs) {
      for (int c = 0; c < d; c++) {
        dir[c] = (float) rnd.nextGaussian() * 1.5f;
      }
    }
    float[] k = new float[d];
    float[] v = new float[d];
    for (int t = 0; t < tokens + decoded; t++) {
      float[] dir = dirs[rnd.nextInt(dirs.length)];
      for (int c = 0; c < d; c++) {
        k[c] = dir[c] + (float) rnd.nextGaussian();
        v[c] = (float) rnd.nextGaussian();
      }
      h.append(k, 0, v, 0);
      if (t == tokens - 1) {
        h.endPrefill();
      }
    }
    return h;
  }

  public static List<WaveHeadCache> heads(Random rnd, WaveConfig config, int items, int d, int g,
      int minTokens, int maxTokens) {
    List<WaveHeadCache> out = new ArrayList<>();
    for (int i = 0; i < items; i++) {
      out.add(head(rnd, config, d, g, minTokens + rnd.nextInt(maxTokens - minTokens + 1),
          rnd.nextInt(40)));
    }
    return out;
  }

  public static float[] queries(Random rnd, int n, float sigma) {
    float[] q = new float[n];
    for (int i = 0; i < n; i++) {
      q[i] = (float) rnd.nextGaussian() * sigma;
    }
    return q;
  }

  /**
   * Tripartite attention of wave-core's primitives (SoftmaxState, KvKernels) for a given zone
   * choice: exact over sinks, tail and the retrieved clusters, estimated over the estimated ones.
   */
  public static float[] tripartite(WaveHeadCache h, int[] retrieved, int[] estimated, float[] q,
      int qOff) {
    int d = h.headDim();
    int g = h.groupSize();
    float scale = (float) (1.0 / Math.sqrt(d));
    WaveIndex idx = h.index();
    SoftmaxState exact = new SoftmaxState(g, d);
    exact.absorbRange(h.sinkKeys(), h.sinkValues(), 0, h.sinkKeys().size(), q, qOff, scale);
    exact.absorbRange(h.tailKeys(), h.tailValues(), 0, h.tailKeys().size(), q, qOff, scale);
    for (int c : retrieved) {
      exact.absorbRange(idx.keys(), idx.values(), idx.clusterStart(c), idx.clusterStart(c + 1), q,
          qOff, scale);
    }
    if (estimated.length > 0) {
      int e = estimated.length;
      float[] logits = new float[g * e];
      float[] weights = new float[e];
      for (int i = 0; i < e; i++) {
        // the centroids as wave-core ranks with them (rounded to the keys' type)
        for (int hh = 0; hh < g; hh++) {
          double l = 0;
          for (int t = 0; t < d; t++) {
            l += (double) q[qOff + hh * d + t] * idx.rankingCentroid(estimated[i], t);
          }
          logits[hh * e + i] = (float) (l * scale);
        }
        weights[i] = idx.clusterSize(estimated[i]);
      }
      SoftmaxState est = new SoftmaxState(g, d);
      est.absorbRows(idx.valueSums(), estimated.clone(), e, logits, 0, e, weights);
      exact.merge(est);
    }
    float[] out = new float[g * d];
    exact.writeOutput(out, 0);
    return out;
  }

  /** ||a - b|| / ||a|| over {@code n} floats from the given offsets. */
  public static double relativeError(float[] ref, int refOff, float[] got, int gotOff, int n) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < n; i++) {
      double diff = (double) ref[refOff + i] - got[gotOff + i];
      num += diff * diff;
      den += (double) ref[refOff + i] * ref[refOff + i];
    }
    return Math.sqrt(num / den);
  }
}
