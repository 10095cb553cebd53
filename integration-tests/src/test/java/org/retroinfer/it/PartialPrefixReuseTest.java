package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.app.PromptCache;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;

/**
 * A prompt that shares only a prefix with a stored one, on the shipped model: the stored prefix is
 * reused, the rest is prefilled over it, and the result is checked against a full recompute of the
 * new prompt (its logits and every K/V row).
 */
class PartialPrefixReuseTest {
  @TempDir Path dir;

  @Test
  void reusingAStoredPrefixMatchesAFullRecompute() throws Exception {
    long seed = new SplittableRandom().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    Llama model = ShippedModel.model();
    WaveConfig config = WaveConfig.builder().updateTokens(256).segmentTokens(512).build();
    int[] a = new ByteTokenizer().encode(PythonCorpus.fallback().text(1400, r));
    int shared = 1100 + r.nextInt(100);
    int[] b = Arrays.copyOf(a, 1300);
    int[] other = new ByteTokenizer().encode(PythonCorpus.fallback().text(1300, r));
    System.arraycopy(other, shared, b, shared, 1300 - shared);
    b[shared] = a[shared] == 'x' ? 'y' : 'x';
    try (ContextStore store = ContextStore.open(dir)) {
      PromptCache cache = new PromptCache(model,
          store.scope(ShippedModel.fingerprint(), "", config.kvType()), config);
      PromptCache.Prepared pa = cache.prepare(a, null);
      assertEquals(0, pa.reusedTokens());
      cache.save("a", a, pa);
      pa.cache().close();

      PromptCache.Prepared pb = cache.prepare(b, null);
      try {
        assertEquals(shared, pb.reusedTokens(), "seed " + seed);
        assertEquals(b.length, pb.cache().length(0));
        WaveHeadCache head = (WaveHeadCache) pb.cache().head(3, 1);
        assertTrue(head.prefillDone() && head.index().segmentCount() >= 2);
        // the reference: the new prompt prefilled from scratch, exactly, in float32
        PromptState full = model.prefill(b);
        float[] ref = full.lastLogits();
        assertEquals(Sampler.argmax(ref), Sampler.argmax(pb.logits()), "seed " + seed);
        double maxDiff = 0;
        double scale = 0;
        for (int i = 0; i < ref.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ref[i] - pb.logits()[i]));
          scale = Math.max(scale, Math.abs(ref[i]));
        }
        assertTrue(maxDiff < 0.02 * scale, "logits differ by " + maxDiff + " (largest " + scale
            + "); the stored prefix is bf16, the rest float32 over it; seed " + seed);
        // every K/V row, stored or recomputed, against the full recompute (bf16 rounding apart)
        PromptState reused = PromptCache.positionOrder(pb.cache(), b.length);
        for (int l = 0; l < model.config().layers(); l++) {
          double err = 0;
          double norm = 0;
          for (int i = 0; i < b.length * model.config().kvWidth(); i++) {
            double e = reused.keys(l)[i] - full.keys(l)[i];
            err += e * e;
            norm += (double) full.keys(l)[i] * full.keys(l)[i];
          }
          assertTrue(Math.sqrt(err / norm) < 0.01, "layer " + l + " keys: relative error "
              + Math.sqrt(err / norm) + ", seed " + seed);
        }
      } finally {
        pb.cache().close();
      }
      // the fallback corpus is small: a random text may start like a; its first byte makes sure
      // that it does not
      int[] unrelated = new ByteTokenizer().encode(PythonCorpus.fallback().text(300, r));
      unrelated[0] = a[0] == '#' ? '!' : '#';
      assertNull(cache.prepare(unrelated, null).contextId(),
          "an unrelated prompt reuses nothing; seed " + seed);
    }
  }
}
