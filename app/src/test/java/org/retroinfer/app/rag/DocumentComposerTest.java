package org.retroinfer.app.rag;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.llama.Rope;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;

class DocumentComposerTest {
  static final AttentionShape SHAPE = new AttentionShape(1, 2, 1, 16);
  static final double THETA = 10_000;

  /** Rotate-half RoPE by {@code p} positions in float64: the reference. */
  static double[] rotate(float[] k, int off, int d, double p) {
    double[] out = new double[d];
    int half = d / 2;
    for (int i = 0; i < half; i++) {
      double angle = p * Math.pow(THETA, -2.0 * i / d);
      double a = k[off + i];
      double b = k[off + i + half];
      out[i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[i + half] = b * Math.cos(angle) + a * Math.sin(angle);
    }
    return out;
  }

  @Test
  void composedKeysAreTheDocumentsKeysRotatedAndTheIndexStaysValid() {
    long seed = new SplittableRandom().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    int d = SHAPE.headDim();
    WaveConfig config = WaveConfig.fixed().toBuilder().sinkTokens(4).windowTokens(16).updateTokens(32)
        .segmentTokens(64).tokensPerCluster(8).retrievalFraction(1).estimationFraction(0)
        .kvType(KvDType.BFLOAT16).build();
    int[] lengths = {230, 90, 170};
    List<ContextCache> docs = new ArrayList<>();
    List<float[][]> raw = new ArrayList<>();
    for (int n : lengths) {
      ContextCache c = new WaveAttention(config).newContext(SHAPE);
      float[] k = new float[n * d];
      float[] v = new float[n * d];
      for (int i = 0; i < k.length; i++) {
        k[i] = (float) (r.nextGaussian() * 2);
        v[i] = (float) r.nextGaussian();
      }
      for (int p = 0; p < n; p++) {
        c.append(0, Arrays.copyOfRange(k, p * d, (p + 1) * d), Arrays.copyOfRange(v, p * d, (p + 1) * d));
      }
      c.endPrefill();
      docs.add(c);
      raw.add(new float[][] {k, v});
    }
    Rope rope = new Rope(d, THETA);
    try (ContextCache composed = DocumentComposer.compose(docs, rope, config)) {
      WaveHeadCache head = (WaveHeadCache) composed.head(0, 0);
      int total = Arrays.stream(lengths).sum();
      assertEquals(total, head.size());
      float[] keys = new float[total * d];
      float[] values = new float[total * d];
      HeadLayout.of(head).read(0, total, keys, values, 0, d);
      int offset = 0;
      for (int i = 0; i < lengths.length; i++) {
        for (int p = 0; p < lengths[i]; p++) {
          // the stored key (bf16) rotated by the document's offset, vs the float64 rotation
          float[] stored = new float[d];
          for (int t = 0; t < d; t++) {
            stored[t] = KvDType.BFLOAT16.round(raw.get(i)[0][p * d + t]);
          }
          double[] ref = rotate(stored, 0, d, offset);
          for (int t = 0; t < d; t++) {
            float got = keys[(offset + p) * d + t];
            assertEquals(ref[t], got, 0.01 * (1 + Math.abs(ref[t])), "doc " + i + ", position "
                + p + ", component " + t + ", seed " + seed);
            assertEquals(KvDType.BFLOAT16.round(raw.get(i)[1][p * d + t]),
                values[(offset + p) * d + t]);
          }
        }
        offset += lengths[i];
      }
      // Every centroid is the mean of its stored members, and a moved segment's centroid is the
      // rotation of its old centroid (up to the bf16 rounding of the rotated keys).
      WaveIndex index = head.index();
      assertTrue(index.segmentCount() > ((WaveHeadCache) docs.get(0).head(0, 0)).index()
          .segmentCount(), "the loose tokens between documents are clustered");
      for (int c = 0; c < index.clusterCount(); c++) {
        double[] mean = new double[d];
        int[] members = index.positions(c);
        for (int p : members) {
          for (int t = 0; t < d; t++) {
            mean[t] += keys[p * d + t] / members.length;
          }
        }
        for (int t = 0; t < d; t++) {
          assertEquals(mean[t], index.centroids().get(c, t), 1e-4 * (1 + Math.abs(mean[t])));
        }
      }
      WaveIndex second = ((WaveHeadCache) docs.get(2).head(0, 0)).index();
      int shift = lengths[0] + lengths[1];
      float[] oldCentroid = second.centroids().row(0);
      double[] rotated = rotate(oldCentroid, 0, d, shift);
      int moved = -1;
      for (int c = 0; c < index.clusterCount(); c++) {
        if (index.positions(c)[0] == shift + second.positions(0)[0]
            && index.clusterSize(c) == second.clusterSize(0)) {
          moved = c;
        }
      }
      assertTrue(moved >= 0, "the third document's first cluster is kept as it was");
      for (int t = 0; t < d; t++) {
        assertEquals(rotated[t], index.centroids().get(moved, t), 0.02 * (1 + Math.abs(rotated[t])));
      }
      // attention over the composed cache (every cluster retrieved) equals float64 attention over
      // the rotated keys
      float[] q = new float[SHAPE.queryWidth()];
      for (int i = 0; i < q.length; i++) {
        q[i] = (float) r.nextGaussian();
      }
      float[] out = new float[q.length];
      composed.attend(0, q, out);
      for (int h = 0; h < 2; h++) {
        double max = Double.NEGATIVE_INFINITY;
        double[] l = new double[total];
        for (int p = 0; p < total; p++) {
          double s = 0;
          for (int t = 0; t < d; t++) {
            s += (double) q[h * d + t] * keys[p * d + t];
          }
          l[p] = s / Math.sqrt(d);
          max = Math.max(max, l[p]);
        }
        double z = 0;
        double[] o = new double[d];
        for (int p = 0; p < total; p++) {
          double e = Math.exp(l[p] - max);
          z += e;
          for (int t = 0; t < d; t++) {
            o[t] += e * values[p * d + t];
          }
        }
        for (int t = 0; t < d; t++) {
          assertEquals(o[t] / z, out[h * d + t], 1e-4, "seed " + seed);
        }
      }
    } finally {
      docs.forEach(ContextCache::close);
    }
  }
}
