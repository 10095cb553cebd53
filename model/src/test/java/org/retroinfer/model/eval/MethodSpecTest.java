package org.retroinfer.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.WaveConfig;

class MethodSpecTest {

  @Test
  void parsesRetrievalAndEstimationBudgets() {
    WaveConfig base = WaveConfig.defaults();
    assertEquals(base, MethodSpec.parse("wave").configure(base));
    WaveConfig r = MethodSpec.parse("wave:10%").configure(base);
    assertEquals(0.10, r.retrievalFraction(), 1e-12);
    assertEquals(0, r.retrievalMinClusters());
    assertEquals(base.estimationFraction(), r.estimationFraction(), 1e-12);
    WaveConfig re = MethodSpec.parse(" wave:0.15:50% ").configure(base);
    assertEquals(0.15, re.retrievalFraction(), 1e-12);
    assertEquals(0.50, re.estimationFraction(), 1e-12);
    // the zones must fit: e is capped at 1 - r
    assertEquals(0.10, MethodSpec.parse("wave:90%:50%").configure(base).estimationFraction(), 1e-9);
    assertEquals("wave:15.0%:50.0%", MethodSpec.parse("wave:15%:50%").toString());
    assertEquals("quest:5.0%", MethodSpec.parse("quest:5%").toString());
  }

  @Test
  void rejectsMalformedSpecsWithAnExample() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MethodSpec.parse("wave:ten"));
    assertTrue(e.getMessage().contains("wave:15%:50%"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:10%:50%:1"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("wave:10%:150%"));
    assertThrows(IllegalArgumentException.class, () -> MethodSpec.parse("magic:10%"));
  }
}
