package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.kv.KvDType;

class WaveConfigTest {

  @Test
  void defaultsAreThePublishedOnesWithTheMeasuredFloor() {
    WaveConfig c = WaveConfig.defaults();
    assertEquals(4, c.sinkTokens());
    assertEquals(64, c.windowTokens());
    assertEquals(1024, c.updateTokens());
    assertEquals(0.018, c.retrievalFraction());
    assertEquals(64, c.retrievalMinClusters());
    assertEquals(0.232, c.estimationFraction());
    assertEquals(8192, c.segmentTokens());
    assertEquals(16, c.tokensPerCluster());
    assertEquals(10, c.kmeansIterations());
    assertEquals(KvDType.BFLOAT16, c.kvType());
    assertEquals(c, c.toBuilder().build());
  }

  @Test
  void budgetsRoundUpAndRespectTheFloor() {
    WaveConfig c = WaveConfig.defaults();
    assertEquals(64, c.retrievalClusters(1020)); // 1.8% = 18.4 -> floor 64
    assertEquals(148, c.retrievalClusters(8192)); // 147.5 -> 148
    assertEquals(30, c.retrievalClusters(30)); // never more than exist
    assertEquals(237, c.estimationClusters(1020)); // 23.2% = 236.6 -> 237
    assertEquals(0, c.estimationClusters(64));
    assertEquals(0, c.retrievalClusters(0));
    assertArrayEquals(new int[] {10000}, c.segmentLengths(10000)); // round(1.22) = 1 segment
    assertArrayEquals(new int[] {6144, 6144}, c.segmentLengths(12288)); // round(1.5) = 2
    assertEquals(16, c.segmentLengths(131_000).length);
    assertEquals(512, c.clustersFor(8192));
    assertEquals(100, c.exactTokenBudget(100));
    int b = c.exactTokenBudget(16384);
    assertTrue(b > 64 * 16 && b < 64 * 16 + 200, "budget " + b);
  }

  @Test
  void invalidSettingsSayWhatWasExpected() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().retrievalFraction(1.5).build());
    assertTrue(e.getMessage().contains("retrievalFraction must be in [0, 1], got 1.5"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().retrievalFraction(0.5).estimationFraction(0.6).build());
    assertTrue(e.getMessage().contains("<= 1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().updateTokens(8).build());
    assertTrue(e.getMessage().contains("updateTokens (8) must be at least tokensPerCluster (16)"),
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> WaveConfig.builder().windowTokens(0).build());
    assertThrows(IllegalArgumentException.class, () -> WaveConfig.builder().sinkTokens(-1).build());
    assertThrows(IllegalArgumentException.class, () -> WaveConfig.builder().kvType(null).build());
    assertThrows(IllegalArgumentException.class, () -> WaveConfig.builder().segmentTokens(4).build());
    assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().kmeansIterations(-1).build());
  }
}
