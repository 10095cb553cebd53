package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.TestModel;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.kv.KvDType;

/**
 * The shipped model against reference.json, which an independent PyTorch implementation computed in
 * float32 from the same F16 weights: first and last prompt logits within 1e-3, the 32 greedy ids
 * identical (float32 K/V).
 */
class ConformanceTest {

  @Test
  void promptLogitsMatchTheReference() {
    Llama model = TestModel.get();
    JsonNode ref = TestModel.reference();
    int[] prompt = TestModel.ints(ref.get("prompt_ids"));
    float[] first = TestModel.floats(ref.get("first_logits"));
    float[] last = TestModel.floats(ref.get("last_logits"));
    float[][] seen = new float[prompt.length][];
    PromptState state = new PromptState(model.attentionShape());
    model.prefill(state, prompt, (pos, logits, off) ->
        seen[pos] = java.util.Arrays.copyOfRange(logits, off, off + 256), null);
    assertMaxAbsDiff(first, seen[0], 1e-3, "first-position logits");
    assertMaxAbsDiff(last, seen[prompt.length - 1], 1e-3, "last-position logits (with sink)");
    assertMaxAbsDiff(last, state.lastLogits(), 1e-3, "last-position logits");
    // without a sink only the last position's head product runs: same numbers
    assertMaxAbsDiff(last, model.prefill(prompt).lastLogits(), 1e-3, "last logits, no sink");
  }

  @Test
  void greedyContinuationMatchesTheReference() {
    Llama model = TestModel.get();
    JsonNode ref = TestModel.reference();
    int[] prompt = TestModel.ints(ref.get("prompt_ids"));
    int[] expected = TestModel.ints(ref.get("greedy_ids"));
    PromptState state = model.prefill(prompt);
    try (ContextCache cache = model.newCache(new FullAttention(KvDType.FLOAT32))) {
      state.copyInto(cache);
      cache.endPrefill();
      Decoder decoder = model.decoder(cache);
      int[] got = new int[expected.length];
      float[] logits = state.lastLogits();
      for (int i = 0; i < got.length; i++) {
        got[i] = Sampler.argmax(logits);
        logits = decoder.step(got[i]);
      }
      assertArrayEquals(expected, got, () -> "greedy ids differ: got '"
          + new String(toBytes(got)) + "', expected '" + new String(toBytes(expected)) + "'");
      assertEquals(prompt.length + expected.length, decoder.position());
    }
  }

  static void assertMaxAbsDiff(float[] expected, float[] actual, double tol, String what) {
    assertEquals(expected.length, actual.length, what + ": length");
    double max = 0;
    int at = -1;
    for (int i = 0; i < expected.length; i++) {
      double d = Math.abs(expected[i] - actual[i]);
      if (d > max || Double.isNaN(d)) {
        max = d;
        at = i;
      }
    }
    final double m = max;
    final int a = at;
    assertTrue(m <= tol, () -> what + ": max |diff| " + m + " at " + a + " exceeds " + tol);
  }

  private static byte[] toBytes(int[] ids) {
    byte[] b = new byte[ids.length];
    for (int i = 0; i < ids.length; i++) {
      b[i] = (byte) ids[i];
    }
    return b;
  }
}
