package org.retroinfer.wave.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveConfig.ZoneBudget;

class MethodSpecTest {

  @Test
  void aBareNameKeepsTheCommandsConfiguration() {
    WaveConfig base = WaveConfig.adaptiveDefaults();
    assertEquals(base, MethodSpec.parse("wave").configure(base));
    assertEquals(base, MethodSpec.parse(" WAVE ").configure(base));
    assertEquals("wave", MethodSpec.parse("Wave").toString());
  }

  @Test
  void fixedBudgetsKeepTheFloorUnlessTold() {
    WaveConfig base = WaveConfig.adaptiveDefaults();
    assertEquals(WaveConfig.fixed(), MethodSpec.parse("wave:fixed").configure(base));
    // wave:3.6% reads like twice the published 1.8%: it must not drop the 64-cluster floor
    WaveConfig r = MethodSpec.parse("wave:0.036").configure(base);
    assertEquals(ZoneBudget.FIXED, r.budget());
    assertEquals(0.036, r.retrievalFraction(), 1e-12);
    assertEquals(64, r.retrievalMinClusters());
    assertEquals(64, r.retrievalClusters(1020));
    assertEquals("wave:fixed:r=3.6%", MethodSpec.parse("wave:0.036").toString());
    WaveConfig noFloor = MethodSpec.parse("wave:fixed:r=3.6%:min=0").configure(base);
    assertEquals(37, noFloor.retrievalClusters(1020));
    WaveConfig re = MethodSpec.parse(" wave:0.15:50% ").configure(base);
    assertEquals(0.15, re.retrievalFraction(), 1e-12);
    assertEquals(0.50, re.estimationFraction(), 1e-12);
    // the zones must fit: e is capped at 1 - r
    assertEquals(0.10, MethodSpec.parse("wave:90%:50%").configure(base).estimationFraction(), 1e-9);
    assertEquals("wave:fixed:r=15%:e=50%", MethodSpec.parse("wave:15%:50%").toString());
  }

  @Test
  void adaptiveSettingsReachTheConfiguration() {
    WaveConfig base = WaveConfig.fixed();
    WaveConfig a = MethodSpec.parse("wave:err=3%:est=99%:max=10%:min=8:e=30%").configure(base);
    assertEquals(ZoneBudget.ADAPTIVE, a.budget());
    assertEquals(0.03, a.retrievalError(), 1e-12);
    assertEquals(0.99, a.estimationMass(), 1e-12);
    assertEquals(0.10, a.retrievalMaxFraction(), 1e-12);
    assertEquals(8, a.retrievalMinClusters());
    assertEquals(0.30, a.estimationFraction(), 1e-12);
    // switching to adaptive takes the adaptive floor
    assertEquals(WaveConfig.adaptiveDefaults(), MethodSpec.parse("wave:adaptive").configure(base));
  }

  @Test
  void baselinesTakeATokenBudget() {
    MethodSpec o = MethodSpec.parse("oracle:tokens=1100");
    assertEquals(1100, o.tokens());
    assertEquals("oracle:tokens=1100", o.toString());
    MethodSpec given = MethodSpec.parse("quest").withTokens(900);
    assertEquals(900, given.tokens());
    assertEquals("quest", given.toString());
    assertEquals(1100, o.withTokens(900).tokens()); // an explicit budget stays
    assertEquals("quest:fixed:r=5%", MethodSpec.parse("quest:5%").toString());
    assertEquals(null, MethodSpec.parse("quest:5%").withTokens(900).tokens());
  }

  @Test
  void rejectsMalformedSpecsWithAnExample() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MethodSpec.parse("wave:ten"));
    assertTrue(e.getMessage().contains("wave:fixed:r=5%"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:10%:50%:1"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:10%:150%"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("magic:10%"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:fixed:err=5%"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:r=5%:err=5%"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:tokens=100"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("oracle:tokens=0"));
    e = assertThrows(IllegalArgumentException.class,
        () -> MethodSpec.parse("wave:fixed:r=60%:min=0:e=50%:err=1%"));
    assertTrue(e.getMessage().contains("r= belongs to the fixed budget"), e.getMessage());
  }
}
