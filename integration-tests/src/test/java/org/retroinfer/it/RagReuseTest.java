package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.app.PromptCache;
import org.retroinfer.app.rag.DocumentReuse;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * RAG reuse on the shipped model: documents stored on their own, composed by re-rotating their
 * keys, checked against two independent computations: (1) the same document computed alone at its
 * new offset by the token-by-token decoder (the rotation is exact: errors are only bf16 rounding),
 * and (2) a full recompute of the composed prompt, whose layer-0 K/V depend only on token and
 * position and so must agree too (deeper layers differ: there the documents attend to each other).
 */
class RagReuseTest {
  @TempDir Path dir;

  /** A cache that starts at position {@code offset} but attends only over what was appended. */
  static final class OffsetCache implements ContextCache {
    final ContextCache inner;
    final int offset;

    OffsetCache(AttentionShape shape, int offset) {
      this.inner = new FullAttention(KvDType.FLOAT32).newContext(shape);
      this.offset = offset;
    }

    @Override public AttentionShape shape() { return inner.shape(); }
    @Override public AttentionBackend backend() { return inner.backend(); }
    @Override public int length(int layer) { return offset + inner.length(layer); }
    @Override public void append(int layer, float[] k, float[] v) { inner.append(layer, k, v); }
    @Override public void attend(int layer, float[] q, float[] out) { inner.attend(layer, q, out); }
    @Override public void endPrefill() { inner.endPrefill(); }
    @Override public HeadCache head(int layer, int kvHead) { return inner.head(layer, kvHead); }
    @Override public long memoryBytes() { return inner.memoryBytes(); }
    @Override public void close() { inner.close(); }
  }

  static double relativeError(float[] a, int aOff, float[] b, int bOff, int n) {
    double err = 0;
    double norm = 0;
    for (int i = 0; i < n; i++) {
      double e = a[aOff + i] - b[bOff + i];
      err += e * e;
      norm += (double) b[bOff + i] * b[bOff + i];
    }
    return Math.sqrt(err / norm);
  }

  /**
   * The exactness checks, on a fresh composition every run (-Dretroinfer.it.seed=N replays a
   * reported one). Needle recall is printed, not asserted: beyond layer 0 reused documents do not
   * attend to each other, so reuse is not exact and recall is a rate (kv-store/BENCHMARKS.md
   * measures it), not a property of every composition.
   */
  @Test
  void composedDocumentsMatchTheirRecomputation() throws Exception {
    compose(Long.getLong("retroinfer.it.seed", new SplittableRandom().nextLong()), false);
  }

  /** Needle recall with reused K/V on a fixed composition, as a regression check. */
  @Test
  void reusedKvRecallsTheNeedleOfAFixedComposition() throws Exception {
    compose(1, true);
  }

  private void compose(long seed, boolean assertRecall) throws Exception {
    SplittableRandom r = new SplittableRandom(seed);
    Llama model = ShippedModel.model();
    AttentionShape shape = model.attentionShape();
    int w = shape.kvWidth();
    ByteTokenizer tok = new ByteTokenizer();
    WaveConfig config = WaveConfig.fixed().toBuilder().windowTokens(32).updateTokens(64).segmentTokens(128)
        .tokensPerCluster(8).retrievalMinClusters(16).build();
    String key = "KEY_river" + r.nextInt(100);
    String answer = Integer.toString(10000 + r.nextInt(90000));
    List<int[]> docs = new ArrayList<>();
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (int i = 0; i < 3; i++) {
      String text;
      do { // identical documents would be stored once
        text = new String(PythonCorpus.fallback().text(300, r), StandardCharsets.ISO_8859_1);
      } while (!seen.add(text));
      if (i == 1) {
        int at = text.indexOf('\n', 100) + 1;
        text = text.substring(0, at) + "# " + key + " = " + answer + "\n" + text.substring(at);
      }
      docs.add(tok.encode(text.getBytes(StandardCharsets.ISO_8859_1)));
    }
    int[] question = tok.encode("# recall " + key + ": ");
    int length = docs.stream().mapToInt(d -> d.length).sum();
    int[] prompt = new int[length + question.length];
    int at = 0;
    for (int[] d : docs) {
      System.arraycopy(d, 0, prompt, at, d.length);
      at += d.length;
    }
    System.arraycopy(question, 0, prompt, length, question.length);

    try (ContextStore store = ContextStore.open(dir)) {
      DocumentReuse rag = new DocumentReuse(model,
          store.scope(ShippedModel.fingerprint(), "", config.kvType()), config);
      for (int i = 0; i < docs.size(); i++) {
        rag.storeDocument("doc" + i, docs.get(i));
      }
      assertEquals(3, store.tenant("").list().size());
      PromptCache.Prepared reused = rag.prepare(docs, question);
      try (ContextCache cache = reused.cache()) {
        assertEquals(prompt.length, cache.length(0));
        PromptState composed = PromptCache.positionOrder(cache, prompt.length);

        // (1) document 2 alone at its offset, by the decoder: every layer agrees
        int offset = docs.get(0).length + docs.get(1).length;
        int[] doc = docs.get(2);
        try (OffsetCache alone = new OffsetCache(shape, offset)) {
          Decoder dec = model.decoder(alone);
          for (int t : doc) {
            dec.step(t);
          }
          for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) {
              PositionalHeadCache head = (PositionalHeadCache) alone.head(l, h);
              float[] ref = new float[doc.length * shape.headDim()];
              float[] got = new float[doc.length * shape.headDim()];
              for (int p = 0; p < doc.length; p++) {
                head.keys().read(p, ref, p * shape.headDim());
                System.arraycopy(composed.keys(l), (offset + p) * w + h * shape.headDim(), got,
                    p * shape.headDim(), shape.headDim());
              }
              double e = relativeError(got, 0, ref, 0, ref.length);
              assertTrue(e < 0.01, "layer " + l + ", head " + h + ": re-rotated keys differ from the"
                  + " document computed alone at offset " + offset + " by " + e + "; seed " + seed);
            }
          }
        }

        // (2) the full recompute of the composed prompt: layer 0 agrees everywhere
        PromptState full = model.prefill(prompt);
        assertTrue(relativeError(composed.keys(0), 0, full.keys(0), 0, length * w) < 0.01,
            "layer-0 keys; seed " + seed);
        assertTrue(relativeError(composed.values(0), 0, full.values(0), 0, length * w) < 0.01,
            "layer-0 values; seed " + seed);
        double deep = relativeError(composed.keys(5), docs.get(0).length * w,
            full.keys(5), docs.get(0).length * w, (length - docs.get(0).length) * w);
        System.out.printf("RAG reuse: layer-5 keys of documents 2..3 differ from a full recompute by"
            + " %.3f (cross-document attention is not recomputed)%n", deep);

        // (3) the needle: the reused prompt answers like the full recompute
        String reusedAnswer = decode(model, cache, reused.logits(), 5);
        ContextCache fresh = model.newCache(new org.retroinfer.wave.WaveAttention(config));
        full.copyInto(fresh);
        fresh.endPrefill();
        String fullAnswer;
        try (fresh) {
          fullAnswer = decode(model, fresh, full.lastLogits(), 5);
        }
        System.out.println("RAG reuse: needle " + answer + ", full recompute '" + fullAnswer
            + "', reused KV '" + reusedAnswer + "' (seed " + seed + ")");
        if (assertRecall) {
          assertEquals(answer, fullAnswer, "full recompute; seed " + seed);
          assertEquals(answer, reusedAnswer, "reused K/V; seed " + seed);
        }
      }
    }
  }

  static String decode(Llama model, ContextCache cache, float[] logits, int n) {
    Decoder d = model.decoder(cache);
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < n; i++) {
      int t = org.retroinfer.model.sampling.Sampler.argmax(logits);
      s.append((char) t);
      logits = d.step(t);
    }
    return s.toString();
  }
}
