package org.retroinfer.wave.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;

class ContextCacheTest {

  @Test
  void layerAttentionRunsEachKvHeadOnItsQueryGroup() {
    AttentionShape shape = new AttentionShape(2, 6, 2, 16);
    Random rnd = new Random(4);
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.FLOAT32).build();
    for (String name : AttentionBackends.NAMES) {
      AttentionBackend backend = AttentionBackends.create(name, config);
      try (ContextCache cache = backend.newContext(shape)) {
        float[] k = new float[shape.kvWidth()];
        float[] v = new float[shape.kvWidth()];
        for (int t = 0; t < 40; t++) {
          for (int l = 0; l < 2; l++) {
            for (int i = 0; i < k.length; i++) {
              k[i] = (float) rnd.nextGaussian();
              v[i] = (float) rnd.nextGaussian();
            }
            cache.append(l, k, v);
          }
        }
        cache.endPrefill();
        assertEquals(40, cache.length(1));
        float[] q = new float[shape.queryWidth()];
        for (int i = 0; i < q.length; i++) {
          q[i] = (float) rnd.nextGaussian();
        }
        float[] out = new float[q.length];
        cache.attend(1, q, out);
        int gw = shape.groupSize() * shape.headDim();
        for (int h = 0; h < shape.kvHeads(); h++) {
          float[] one = new float[gw];
          cache.head(1, h).attend(q, h * gw, one, 0);
          float[] part = java.util.Arrays.copyOfRange(out, h * gw, (h + 1) * gw);
          assertArrayEquals(one, part, 0f, name);
        }
        assertTrue(cache.memoryBytes() > 0);
      }
    }
  }

  /**
   * Decode-time index updates run the KV heads of a layer in parallel: the result equals heads fed
   * the same rows one by one, bit for bit, and every head got its update.
   */
  @Test
  void parallelIndexUpdatesEqualSequentialOnes() {
    AttentionShape shape = new AttentionShape(1, 6, 3, 16);
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).windowTokens(8)
        .updateTokens(64).segmentTokens(128).retrievalMinClusters(2).build();
    Random rnd = new Random(11);
    AttentionBackend backend = AttentionBackends.create("wave", config);
    HeadCache[] alone = new HeadCache[shape.kvHeads()];
    for (int h = 0; h < alone.length; h++) {
      alone[h] = backend.newHead(shape.headDim(), shape.groupSize());
    }
    try (ContextCache cache = backend.newContext(shape)) {
      float[] k = new float[shape.kvWidth()];
      float[] v = new float[shape.kvWidth()];
      int d = shape.headDim();
      for (int t = 0; t < 600; t++) {
        if (t == 300) {
          cache.endPrefill();
          for (HeadCache h : alone) {
            h.endPrefill();
          }
        }
        for (int i = 0; i < k.length; i++) {
          k[i] = (float) rnd.nextGaussian();
          v[i] = (float) rnd.nextGaussian();
        }
        cache.append(0, k, v);
        for (int h = 0; h < alone.length; h++) {
          alone[h].append(k, h * d, v, h * d);
        }
      }
      float[] q = new float[shape.queryWidth()];
      for (int i = 0; i < q.length; i++) {
        q[i] = (float) rnd.nextGaussian();
      }
      float[] out = new float[q.length];
      cache.attend(0, q, out);
      int gw = shape.groupSize() * d;
      for (int h = 0; h < alone.length; h++) {
        float[] one = new float[gw];
        alone[h].attend(q, h * gw, one, 0);
        assertArrayEquals(one, java.util.Arrays.copyOfRange(out, h * gw, (h + 1) * gw), 0f);
        int segments = ((org.retroinfer.wave.WaveHeadCache) cache.head(0, h)).index()
            .segmentCount();
        assertTrue(segments >= 5, "head " + h + " has " + segments + " segments");
        assertEquals(segments,
            ((org.retroinfer.wave.WaveHeadCache) alone[h]).index().segmentCount());
      }
    } finally {
      for (HeadCache h : alone) {
        h.close();
      }
    }
  }

  @Test
  void mismatchedDimensionsAreRejectedWithTheExpectedShape() {
    AttentionShape shape = new AttentionShape(1, 4, 2, 8);
    try (ContextCache cache = new FullAttention(KvDType.FLOAT32).newContext(shape)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> cache.append(0, new float[15], new float[16]));
      assertTrue(e.getMessage().contains("kvHeads 2 x headDim 8 = 16"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> cache.attend(0, new float[16], new float[16]));
      assertTrue(e.getMessage().contains("queryHeads 4 x headDim 8 = 32"), e.getMessage());
      assertThrows(IndexOutOfBoundsException.class, () -> cache.append(1, new float[16], new float[16]));
      assertEquals(0, cache.length(0), "a rejected append leaves nothing behind");
    }
    assertThrows(IllegalArgumentException.class, () -> new AttentionShape(1, 6, 4, 8));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AttentionBackends.create("magic", WaveConfig.defaults()));
    assertTrue(e.getMessage().contains("expected one of [full, wave, quest, streaming, oracle]"));
  }
}
