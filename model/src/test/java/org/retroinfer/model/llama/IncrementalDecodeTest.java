package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.TestModel;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.kv.KvDType;

/**
 * The two paths through the model agree: prefilling a sequence at once, prefilling it in pieces,
 * and decoding its tail token by token through a float32 full-attention cache give the same logits
 * at every position.
 */
class IncrementalDecodeTest {

  int[] text(int n) {
    byte[] b = PythonCorpus.fallback().text(n, new SplittableRandom(new SplittableRandom().nextLong()));
    return new ByteTokenizer().encode(b);
  }

  @Test
  void decodeEqualsFullRecompute() {
    Llama model = TestModel.get();
    int prefix = 300; // crosses a prefill chunk boundary
    int decoded = 24;
    int[] tokens = text(prefix + decoded);
    float[][] all = new float[tokens.length][];
    model.prefill(new PromptState(model.attentionShape()), tokens,
        (pos, logits, off) -> all[pos] = Arrays.copyOfRange(logits, off, off + 256), null);

    PromptState state = model.prefill(Arrays.copyOf(tokens, prefix));
    ConformanceTest.assertMaxAbsDiff(all[prefix - 1], state.lastLogits(), 1e-4, "prefix logits");
    try (ContextCache cache = model.newCache(new FullAttention(KvDType.FLOAT32))) {
      state.copyInto(cache);
      cache.endPrefill();
      Decoder decoder = model.decoder(cache);
      for (int i = prefix; i < tokens.length; i++) {
        float[] logits = decoder.step(tokens[i]);
        ConformanceTest.assertMaxAbsDiff(all[i], logits, 1e-3, "decoded position " + i);
      }
      assertEquals(tokens.length, decoder.position());
    }
  }

  @Test
  void prefillInPiecesEqualsPrefillAtOnce() {
    Llama model = TestModel.get();
    int[] tokens = text(400);
    PromptState once = model.prefill(tokens);
    PromptState pieces = new PromptState(model.attentionShape());
    int[] cuts = {0, 1, 130, 257, 400};
    int[] progress = new int[1];
    for (int i = 0; i + 1 < cuts.length; i++) {
      model.prefill(pieces, Arrays.copyOfRange(tokens, cuts[i], cuts[i + 1]), null,
          (done, total) -> progress[0] = done);
      assertEquals(cuts[i + 1] - cuts[i], progress[0]);
    }
    assertEquals(400, pieces.length());
    ConformanceTest.assertMaxAbsDiff(once.lastLogits(), pieces.lastLogits(), 1e-4, "last logits");
    for (int l = 0; l < model.config().layers(); l++) {
      float[] a = Arrays.copyOf(once.keys(l), 400 * model.config().kvWidth());
      float[] b = Arrays.copyOf(pieces.keys(l), 400 * model.config().kvWidth());
      ConformanceTest.assertMaxAbsDiff(a, b, 1e-4, "keys of layer " + l);
    }
  }

  @Test
  void badTokensAreRejected() {
    Llama model = TestModel.get();
    assertThrows(IllegalArgumentException.class, () -> model.prefill(new int[] {2, 300}));
    assertThrows(IllegalArgumentException.class, () -> model.prefill(new int[0]));
    try (ContextCache cache = model.newCache(new FullAttention(KvDType.FLOAT32))) {
      assertThrows(IllegalArgumentException.class, () -> model.decoder(cache).step(-1));
      assertArrayEquals(new int[0], new int[cache.length(0)]);
    }
  }
}
