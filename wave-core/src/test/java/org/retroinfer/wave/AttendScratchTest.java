package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.kv.KvDType;

/**
 * Wave attention sizes its scratch memory when the index changes, never inside {@link
 * WaveHeadCache#attend}: a growth branch that only a new cache's first step takes made C2 throw
 * away and recompile the whole compiled step in the middle of decoding.
 */
class AttendScratchTest {

  @Test
  void attendKeepsTheScratchThatTheIndexChangeSized() {
    int d = 64;
    int g = 3;
    int prompt = 9000;
    WaveConfig config = WaveConfig.builder().kvType(KvDType.BFLOAT16).build();
    SyntheticKv kv = new SyntheticKv(5, prompt + config.updateTokens() + 8, d, 6, 16);
    WaveHeadCache cache = new WaveHeadCache(config, d, g);
    for (int j = 0; j < prompt; j++) {
      cache.append(kv.keys, j * d, kv.values, j * d);
    }
    cache.endPrefill();
    assertAttendKeepsScratch(cache, kv, g, d);

    // a decode-time update adds a segment: more clusters, larger zones
    int clusters = cache.index().clusterCount();
    for (int j = prompt; j < prompt + config.updateTokens() + 8; j++) {
      cache.append(kv.keys, j * d, kv.values, j * d);
    }
    assertTrue(cache.index().clusterCount() > clusters, "no index update happened");
    assertAttendKeepsScratch(cache, kv, g, d);
  }

  private static void assertAttendKeepsScratch(WaveHeadCache cache, SyntheticKv kv, int g, int d) {
    Object[] before = cache.scratch();
    float[] out = new float[g * d];
    for (int i = 0; i < 40; i++) {
      cache.attend(kv.query(g), 0, out, 0);
    }
    Object[] after = cache.scratch();
    for (int i = 0; i < before.length; i++) {
      if (before[i] instanceof Integer) {
        assertEquals(before[i], after[i], "attend grew its gather buffer");
      } else {
        assertSame(before[i], after[i], "attend reallocated scratch array " + i);
      }
    }
  }
}
