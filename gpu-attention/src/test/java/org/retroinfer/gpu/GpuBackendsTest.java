package org.retroinfer.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.cuda.CudaAvailability;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.FullAttention;

/** The factory picks the GPU where there is one and falls back to wave-core's CPU backends. */
class GpuBackendsTest {
  private final WaveConfig config = WaveConfig.fixed();

  @Test
  void gpuNamesFallBackToTheCpuWithoutADevice() {
    CudaAvailability a = CudaAvailability.get();
    AttentionBackend wave = GpuBackends.create("wave-gpu", config);
    AttentionBackend full = GpuBackends.create("full-gpu", config);
    if (a.available()) {
      assertInstanceOf(GpuWaveAttention.class, wave);
      assertInstanceOf(GpuFullAttention.class, full);
      assertEquals("wave-gpu", wave.name());
    } else {
      assertFalse(a.reason().isBlank(), "an unavailable GPU must say why");
      assertInstanceOf(WaveAttention.class, wave);
      assertInstanceOf(FullAttention.class, full);
      assertEquals("wave", wave.name());
      assertEquals(config.kvType(), wave.kvType());
    }
  }

  @Test
  void otherNamesAreWaveCores() {
    assertEquals("quest", GpuBackends.create("quest", config).name());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GpuBackends.create("wave-tpu", config));
    assertTrue(e.getMessage().contains("wave-tpu"), e.getMessage());
  }

  @Test
  void probeNeverThrowsAndIsStable() {
    CudaAvailability a = CudaAvailability.get();
    assertEquals(a, CudaAvailability.get());
    if (!a.available()) {
      assertEquals(0, a.multiprocessors());
    }
  }
}
