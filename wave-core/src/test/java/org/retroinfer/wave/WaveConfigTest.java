package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.kv.KvDType;

class WaveConfigTest {

  @Test
  void fixedIsThePublishedSchemeWithTheMeasuredFloor() {
    WaveConfig c = WaveConfig.fixed();
    assertEquals(WaveConfig.ZoneBudget.FIXED, c.budget());
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
  void adaptiveBoundsRoundUpAndRespectTheFloor() {
    WaveConfig c = WaveConfig.adaptiveDefaults();
    assertEquals(WaveConfig.ZoneBudget.ADAPTIVE, c.budget());
    int cap = (int) Math.ceil(c.retrievalMaxFraction() * 1020 - 1e-9);
    assertEquals(cap, c.retrievalClusters(1020)); // the most a step may retrieve
    assertEquals(c.retrievalMinClusters(), c.minRetrievalClusters(1020));
    assertEquals(5, c.minRetrievalClusters(5)); // never more than exist
    assertEquals(Math.min(1020 - c.retrievalMinClusters(), 237), c.estimationClusters(1020));
    // baselines compared "at the same budget" get the fixed scheme's expected budget
    assertEquals(WaveConfig.fixed().exactTokenBudget(16384), c.exactTokenBudget(16384));
    assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().estimationMass(1.5).build());
    assertThrows(IllegalArgumentException.class,
        () -> WaveConfig.builder().retrievalMaxFraction(1.5).build());
    assertThrows(IllegalArgumentException.class, () -> WaveConfig.builder().budget(null).build());
    assertEquals(WaveConfig.adaptiveDefaults(), WaveConfig.defaults());
  }

  @Test
  void budgetsRoundUpAndRespectTheFloor() {
    WaveConfig c = WaveConfig.fixed();
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
