package org.retroinfer.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.emulation.KernelEmulator;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.KvDType;

/**
 * The kernels' algorithms (CPU emulation) on K/V produced by the shipped model, all 12 (layer, KV
 * head) caches as one batch, against wave-core's tripartite attention. The GPU half of this check is
 * {@code GpuAttentionTest.waveOnShippedModelKvMatchesWaveCore}.
 */
class ShippedModelKvTest {
  private final long seed = System.nanoTime();

  @Test
  void emulatedKernelsMatchWaveCoreOnModelKv() throws Exception {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    try (ModelKv kv = new ModelKv(config, 2048, new Random(seed));
        WaveBatch batch = WaveBatch.of(kv.heads, config)) {
      KernelEmulator.WaveStep step = KernelEmulator.waveStep(batch, kv.queries, 32, null);
      check(kv, batch.tables, step.selection().retIds(), step.selection().rStride(),
          step.selection().estIds(), step.selection().eStride(), step.out(), seed);
    }
  }

  /** Output of every item vs wave-core (with the given zones, and as is where the zones agree). */
  static void check(ModelKv kv, BatchTables t, int[] retIds, int rStride, int[] estIds, int eStride,
      float[] out, long seed) {
    int g = t.groupSize;
    int d = t.dim;
    int same = 0;
    for (int i = 0; i < t.items; i++) {
      WaveHeadCache h = kv.heads.get(i);
      assertTrue(t.retrieve[i] > 0 && t.estimate[i] > 0, "item " + i + " needs all three zones");
      int[] ret = Arrays.copyOfRange(retIds, i * rStride, i * rStride + t.retrieve[i]);
      int[] est = Arrays.copyOfRange(estIds, i * eStride, i * eStride + t.estimate[i]);
      float[] ref = TestData.tripartite(h, ret, est, kv.queries, i * g * d);
      double err = TestData.relativeError(ref, 0, out, i * g * d, g * d);
      assertTrue(err <= 1e-3, "model K/V, item " + i + ": relative error " + err + " (seed " + seed + ")");
      ZonePlan plan = h.planZones(kv.queries, i * g * d);
      if (Arrays.equals(plan.retrievedClusters(), ret) && Arrays.equals(plan.estimatedClusters(), est)) {
        float[] wave = new float[g * d];
        h.attend(kv.queries, i * g * d, wave, 0);
        double e2 = TestData.relativeError(wave, 0, out, i * g * d, g * d);
        assertTrue(e2 <= 1e-3, "model K/V, item " + i + ": relative error " + e2
            + " vs WaveHeadCache.attend (seed " + seed + ")");
        same++;
      }
    }
    assertTrue(same * 2 >= t.items, same + " of " + t.items + " items had exactly wave-core's zones");
  }
}
