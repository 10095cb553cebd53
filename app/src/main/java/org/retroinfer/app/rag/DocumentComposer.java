package org.retroinfer.app.rag;

import java.util.ArrayList;
import java.util.List;
import org.retroinfer.model.llama.Rope;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.HeadwiseContextCache;

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
 * clustered as new segments, except for the first document's sinks (the composed context's
 * sinks) and the last document's tail (the composed tail). The prefill stays open: append the
 * question, then {@code endPrefill()}. The layout work is wave-core's {@link HeadLayout#compose};
 * this class supplies the model's rotation.
 */
public final class DocumentComposer {
  private DocumentComposer() {}

  /**
   * The composition of {@code documents} (each a wave context computed from position 0) for a model with rotary embeddings
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
    float[] cos = new float[shape.headDim() / 2];
    float[] sin = new float[shape.headDim() / 2];
    HeadLayout.KeyShift shift = (key, off, by) -> rotate(rope, key, off, by, cos, sin);
    HeadCache[][] heads = new HeadCache[shape.layers()][shape.kvHeads()];
    try {
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          List<HeadLayout> parts = new ArrayList<>();
          for (int i = 0; i < documents.size(); i++) {
            HeadCache head = documents.get(i).head(l, h);
            if (!HeadLayout.isWave(head)) {
              throw new IllegalArgumentException("document " + i + " is not a wave context");
            }
            parts.add(HeadLayout.of(head));
          }
          heads[l][h] = HeadLayout.compose(parts, shift, config);
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
}
