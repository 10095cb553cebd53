package org.retroinfer.store.rag;

import java.util.List;
import org.retroinfer.model.llama.Rope;
import org.retroinfer.store.HeadSlices;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.HeadwiseContextCache;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Composes one context from documents whose K/V were computed each on its own (from position 0):
 * document {@code k} is placed at offset {@code P_k} (the lengths of the documents before it), its
 * keys are re-rotated by {@code P_k} positions and its values are kept.
 *
 * <p>Why this is exact for RoPE: a key at position {@code p} is {@code R(p) k}, and rotations
 * compose, {@code R(P) R(p) = R(P + p)}, so re-rotating gives the key that the same document
 * computed on its own at offset {@code P} has (attention inside the document depends only on
 * relative positions). It is not the key of a full recompute of the composed prompt: there the
 * document's hidden states would also attend to the documents before it (from layer 1 on); that
 * is the approximation of KV reuse for RAG, measured by {@code RagReuseBenchmark}.
 *
 * <p>What it means for the wave index: every token of a shifted document gets the same rotation,
 * a linear map, so the mean of the rotated keys is the rotation of the mean: the clusters (and the
 * spherical k-means fixed point they are) stay valid and each centroid rotates with its members;
 * sizes and value sums do not change. The stored keys are rounded to the storage type after
 * rotating, so the centroid is recomputed as the plain mean of the stored rotated keys (it differs
 * from the rotated old centroid only by that rounding): the estimation zone's Jensen bound needs
 * the centroid to be the mean of exactly the keys that are attended. Tokens that the documents did
 * not index (each document's sinks and window tail) sit between the documents' segments; they are
 * clustered here as new segments, except for the first document's sinks (the composed context's
 * sinks) and the last document's tail (the composed tail). The prefill stays open: append the
 * question, then {@code endPrefill()}.
 */
public final class DocumentComposer {
  private DocumentComposer() {}

  /**
   * The composition of {@code documents} (each a context whose every head is a
   * {@link WaveHeadCache}, computed from position 0) for a model with rotary embeddings
   * {@code rope}, as a new wave context with configuration {@code config}. The documents are left
   * unchanged.
   */
  public static ContextCache compose(List<ContextCache> documents, Rope rope, WaveConfig config) {
    if (documents.isEmpty()) {
      throw new IllegalArgumentException("no documents to compose; give at least one");
    }
    AttentionShape shape = documents.get(0).shape();
    for (ContextCache d : documents) {
      if (!d.shape().equals(shape)) {
        throw new IllegalArgumentException("document shape " + d.shape() + " differs from the"
            + " first document's " + shape + ": compose documents of one model");
      }
    }
    HeadCache[][] heads = new HeadCache[shape.layers()][shape.kvHeads()];
    try {
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          WaveHeadCache[] parts = new WaveHeadCache[documents.size()];
          for (int i = 0; i < parts.length; i++) {
            if (!(documents.get(i).head(l, h) instanceof WaveHeadCache w)) {
              throw new IllegalArgumentException("document " + i + " is not a wave context");
            }
            parts[i] = w;
          }
          heads[l][h] = composeHead(parts, rope, config, shape.groupSize());
        }
      }
    } catch (RuntimeException e) {
      for (HeadCache[] layer : heads) {
        for (HeadCache h : layer) {
          if (h != null) {
            h.close();
          }
        }
      }
      throw e;
    }
    return new HeadwiseContextCache(new WaveAttention(config), shape, heads);
  }

  /** Re-rotates {@code key[off .. off + d)} (one head, rotate-half layout) by {@code shift} positions. */
  public static void rotate(Rope rope, float[] key, int off, int shift, float[] cos, float[] sin) {
    rope.angles(shift, cos, sin, 0);
    rope.rotate(key, off, 1, cos, sin, 0);
  }

  static WaveHeadCache composeHead(WaveHeadCache[] docs, Rope rope, WaveConfig config, int group) {
    int d = docs[0].headDim();
    var type = config.kvType();
    int total = 0;
    for (WaveHeadCache doc : docs) {
      if (doc.headDim() != d) {
        throw new IllegalArgumentException("head dims " + doc.headDim() + " and " + d + " differ");
      }
      total += doc.size();
    }
    // 1. Every token's stored key (re-rotated) and value, in composed position order.
    VectorStore keys = VectorStore.allocate(d, type, total);
    VectorStore values = VectorStore.allocate(d, type, total);
    float[] cos = new float[d / 2];
    float[] sin = new float[d / 2];
    int[] offsets = new int[docs.length];
    int at = 0;
    for (int i = 0; i < docs.length; i++) {
      WaveHeadCache doc = docs[i];
      offsets[i] = at;
      int n = doc.size();
      float[] k = new float[n * d];
      float[] v = new float[n * d];
      HeadSlices.read(doc, HeadSlices.indexRowOfPosition(doc), 0, n, k, v, 0, d);
      if (at > 0) {
        rope.angles(at, cos, sin, 0);
        for (int p = 0; p < n; p++) {
          rope.rotate(k, p * d, 1, cos, sin, 0);
        }
      }
      keys.appendAll(k, 0, n);
      values.appendAll(v, 0, n);
      at += n;
    }
    // 2. Sinks, the documents' own segments (moved and re-summarised), new segments for the loose
    //    tokens between them, and the tail.
    int sinks = Math.min(config.sinkTokens(), total);
    VectorStore sinkK = VectorStore.allocate(d, type, Math.max(1, config.sinkTokens()));
    VectorStore sinkV = VectorStore.allocate(d, type, Math.max(1, config.sinkTokens()));
    WaveIndex index = WaveIndex.empty(d, type);
    VectorStore tailK = VectorStore.allocate(d, type, 4096);
    VectorStore tailV = VectorStore.allocate(d, type, 4096);
    try {
      sinkK.appendFrom(keys, 0, sinks);
      sinkV.appendFrom(values, 0, sinks);
      int next = sinks; // first composed position not yet placed
      for (int i = 0; i < docs.length; i++) {
        WaveIndex src = docs[i].index();
        for (int s = 0; s < src.segmentCount(); s++) {
          int first = offsets[i] + src.segmentFirstPosition(s);
          if (first < next) {
            continue; // cannot happen for documents with sinks; kept for documents without
          }
          clusterLoose(keys, values, next, first, config, index);
          ClusteredSegment old = src.segment(s);
          index.addSegment(summarise(old, first, keys, values), keys, values, first);
          next = first + old.tokens();
        }
      }
      tailK.appendFrom(keys, next, total);
      tailV.appendFrom(values, next, total);
      return WaveHeadCache.restore(config, group, sinkK, sinkV, index, tailK, tailV, false);
    } catch (RuntimeException e) {
      sinkK.close();
      sinkV.close();
      index.close();
      tailK.close();
      tailV.close();
      throw e;
    } finally {
      keys.close();
      values.close();
    }
  }

  /** Clusters positions {@code [from, to)} as new segments (nothing if empty). */
  private static void clusterLoose(VectorStore keys, VectorStore values, int from, int to,
      WaveConfig config, WaveIndex index) {
    if (to <= from) {
      return;
    }
    int start = from;
    for (int len : config.segmentLengths(to - from)) {
      ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, start, start + len, start,
          config.clustersFor(len), config.kmeansIterations());
      index.addSegment(seg, keys, values, start);
      start += len;
    }
  }

  /**
   * The segment {@code old} moved to {@code firstPosition}: same members and order, centroids and
   * value sums recomputed (in float64) from the stored rows of {@code keys}/{@code values}, which
   * are in composed position order.
   */
  static ClusteredSegment summarise(ClusteredSegment old, int firstPosition, VectorStore keys,
      VectorStore values) {
    int d = old.dim();
    int k = old.clusters();
    float[] cent = new float[k * d];
    float[] sums = new float[k * d];
    double[] ck = new double[d];
    double[] cv = new double[d];
    float[] row = new float[d];
    int[] order = old.order();
    int[] offs = old.offsets();
    for (int c = 0; c < k; c++) {
      java.util.Arrays.fill(ck, 0);
      java.util.Arrays.fill(cv, 0);
      for (int m = offs[c]; m < offs[c + 1]; m++) {
        int p = firstPosition + order[m];
        keys.read(p, row, 0);
        for (int t = 0; t < d; t++) {
          ck[t] += row[t];
        }
        values.read(p, row, 0);
        for (int t = 0; t < d; t++) {
          cv[t] += row[t];
        }
      }
      int size = offs[c + 1] - offs[c];
      for (int t = 0; t < d; t++) {
        cent[c * d + t] = (float) (ck[t] / size);
        sums[c * d + t] = (float) cv[t];
      }
    }
    return new ClusteredSegment(d, firstPosition, order.clone(), offs.clone(), cent, sums);
  }
}
