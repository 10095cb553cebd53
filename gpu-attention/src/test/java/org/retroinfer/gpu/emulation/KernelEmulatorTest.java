package org.retroinfer.gpu.emulation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.TestData;
import org.retroinfer.gpu.buffer.BlockCache;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.Reference;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.KvDType;

/**
 * The kernels' algorithms, emulated on the CPU, against wave-core: the same zones as
 * {@code WaveHeadCache.planZones} (up to float near-ties) and the same output as
 * {@code WaveHeadCache.attend} within 1e-3 relative error, on fresh random data.
 */
class KernelEmulatorTest {
  private final long seed = System.nanoTime();
  private final Random rnd = new Random(seed);

  @Test
  void waveStepMatchesWaveCoreBf16() {
    check(KvDType.BFLOAT16, 64, 4, 3);
  }

  @Test
  void waveStepMatchesWaveCoreFloat32OddShapes() {
    check(KvDType.FLOAT32, 48, 3, 2);
    check(KvDType.BFLOAT16, 16, 1, 2);
  }

  @Test
  void waveStepMatchesWaveCoreFloat16Dim128() {
    check(KvDType.FLOAT16, 128, 2, 2);
  }

  /**
   * A context opened from its files reads its indexed rows in place, in one block per segment:
   * the GPU layout of such heads (restored through HeadLayout) is byte for byte that of the heads
   * they were stored from, and the emulated wave step gives the same output.
   */
  @Test
  void theLayoutOfHeadsRestoredInPlaceEqualsTheOriginals() {
    int d = 64;
    int g = 2;
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16)
        .segmentTokens(1024).updateTokens(512).build();
    List<WaveHeadCache> heads = List.of(TestData.head(rnd, config, d, g, 3000, 700),
        TestData.head(rnd, config, d, g, 2600, 600));
    List<org.retroinfer.wave.attention.HeadCache> restored = new java.util.ArrayList<>();
    List<org.retroinfer.wave.kv.VectorStore> blocks = new java.util.ArrayList<>();
    try {
      for (WaveHeadCache h : heads) {
        org.retroinfer.wave.HeadLayout l = org.retroinfer.wave.HeadLayout.of(h);
        assertTrue(l.index().segmentCount() >= 2, "several segments");
        try (org.retroinfer.wave.HeadLayout.Restorer r =
            org.retroinfer.wave.HeadLayout.restoring(config, g, d)) {
          r.keyCentre(l.keyCentre());
          r.sinks(l.sinkKeys(), l.sinkValues(), 0, l.sinks());
          for (int s = 0; s < l.index().segmentCount(); s++) {
            var seg = l.index().segment(s);
            int row0 = l.index().clusterStart(l.index().segmentFirstCluster(s));
            var k = org.retroinfer.wave.kv.VectorStore.allocate(d, l.kvType(), seg.tokens());
            var v = org.retroinfer.wave.kv.VectorStore.allocate(d, l.kvType(), seg.tokens());
            blocks.add(k);
            blocks.add(v);
            k.appendFrom(l.index().keys(), row0, row0 + seg.tokens());
            v.appendFrom(l.index().values(), row0, row0 + seg.tokens());
            r.segmentInPlace(seg,
                org.retroinfer.wave.kv.VectorStore.wrap(k.memory(), d, l.kvType(), seg.tokens()),
                org.retroinfer.wave.kv.VectorStore.wrap(v.memory(), d, l.kvType(), seg.tokens()));
          }
          r.tail(l.tailKeys(), l.tailValues(), 0, l.tailKeys().size());
          restored.add(r.build(l.prefillDone()));
        }
      }
      try (WaveBatch a = WaveBatch.of(heads, config); WaveBatch b = WaveBatch.of(restored, config)) {
        assertEquals(-1L, a.clusterK.mismatch(b.clusterK), "cluster pool keys");
        assertEquals(-1L, a.clusterV.mismatch(b.clusterV), "cluster pool values");
        assertEquals(-1L, a.steadyK.mismatch(b.steadyK), "steady pool keys");
        assertEquals(-1L, a.centroids.mismatch(b.centroids), "centroids");
        assertEquals(-1L, a.valueSums.mismatch(b.valueSums), "value sums");
        float[] q = TestData.queries(rnd, 2 * g * d, 1.5f);
        assertArrayEquals(KernelEmulator.waveStep(a, q, 16, null).out(),
            KernelEmulator.waveStep(b, q, 16, null).out());
      }
    } finally {
      restored.forEach(org.retroinfer.wave.attention.HeadCache::close);
      heads.forEach(WaveHeadCache::close);
      blocks.forEach(org.retroinfer.wave.kv.VectorStore::close);
    }
  }

  private void check(KvDType type, int d, int g, int items) {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(type).retrievalMinClusters(16).build();
    List<WaveHeadCache> heads = TestData.heads(rnd, config, items, d, g, 1500, 3000);
    try (WaveBatch batch = WaveBatch.of(heads, config)) {
      BatchTables t = batch.tables;
      float[] q = TestData.queries(rnd, items * g * d, 1.5f);
      KernelEmulator.WaveStep step = KernelEmulator.waveStep(batch, q, 16, null);
      int samePlans = 0;
      for (int i = 0; i < items; i++) {
        WaveHeadCache h = heads.get(i);
        ZonePlan cpu = h.planZones(q, i * g * d);
        int[] ret = slice(step.selection().retIds(), i * step.selection().rStride(), t.retrieve[i]);
        int[] est = slice(step.selection().estIds(), i * step.selection().eStride(), t.estimate[i]);
        assertTrue(t.retrieve[i] > 0 && t.estimate[i] > 0, "the test needs all three zones");
        assertNearTies(h, q, i * g * d, cpu, ret, est, step.scores(), i * step.cStride());
        // reference with the emulator's own zones: wave-core's primitives, independent code
        float[] ref = TestData.tripartite(h, ret, est, q, i * g * d);
        double err = TestData.relativeError(ref, 0, step.out(), i * g * d, g * d);
        assertTrue(err <= 1e-4, "item " + i + ": relative error " + err + " vs tripartite reference (seed "
            + seed + ")");
        if (Arrays.equals(cpu.retrievedClusters(), ret) && Arrays.equals(cpu.estimatedClusters(), est)) {
          float[] wave = new float[g * d];
          h.attend(q, i * g * d, wave, 0);
          double e2 = TestData.relativeError(wave, 0, step.out(), i * g * d, g * d);
          assertTrue(e2 <= 1e-3, "item " + i + ": relative error " + e2 + " vs WaveHeadCache (seed "
              + seed + ")");
          samePlans++;
        }
      }
      // near-ties are rare: most items must have been compared with WaveHeadCache itself
      assertTrue(samePlans * 2 >= items, samePlans + " of " + items + " items had wave-core's zones");
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  /** The emulator's zones equal wave-core's, except clusters whose scores tie within float noise. */
  private void assertNearTies(WaveHeadCache h, float[] q, int qOff, ZonePlan cpu, int[] ret, int[] est,
      float[] scores, int sOff) {
    int[] cpuRet = cpu.retrievedClusters();
    int[] cpuEst = cpu.estimatedClusters();
    assertEquals(cpuRet.length, ret.length);
    assertEquals(cpuEst.length, est.length);
    float boundaryR = minScore(scores, sOff, ret);
    float boundaryE = minScore(scores, sOff, est);
    for (int c : symmetricDifference(cpuRet, ret)) {
      assertTrue(Math.abs(scores[sOff + c] - boundaryR) <= 1e-5f * Math.max(1e-6f, boundaryR),
          "retrieved cluster " + c + " differs and is not a near-tie (seed " + seed + ")");
    }
    int[] cpuAll = union(cpuRet, cpuEst);
    int[] all = union(ret, est);
    for (int c : symmetricDifference(cpuAll, all)) {
      assertTrue(Math.abs(scores[sOff + c] - boundaryE) <= 1e-5f * Math.max(1e-6f, boundaryE),
          "estimated cluster " + c + " differs and is not a near-tie (seed " + seed + ")");
    }
  }

  @Test
  void cachedAssemblyEqualsUncachedBitForBitAndHits() {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    int d = 32;
    int g = 2;
    List<WaveHeadCache> heads = TestData.heads(rnd, config, 2, d, g, 2000, 2500);
    try (WaveBatch batch = WaveBatch.of(heads, config)) {
      BatchTables t = batch.tables;
      BlockCache cache = new BlockCache(t.totalClusters(),
          BlockCache.blocksFor(t.clusterRows, 0.25, 8), 8);
      try (HostBlockPool pool = new HostBlockPool(cache, t.rowBytes())) {
        float[] q = TestData.queries(rnd, t.items * g * d, 1.5f);
        for (int step = 0; step < 6; step++) {
          for (int i = 0; i < q.length; i++) {
            q[i] += (float) rnd.nextGaussian() * 0.05f; // decode queries drift slowly
          }
          KernelEmulator.WaveStep plain = KernelEmulator.waveStep(batch, q, 8, null);
          KernelEmulator.WaveStep cached = KernelEmulator.waveStep(batch, q, 8, pool);
          assertArrayEquals(plain.out(), cached.out(), "step " + step + ": the block cache changed the"
              + " result (seed " + seed + ")");
        }
        assertTrue(cache.stats().hitClusters() > 0, "no hits with slowly drifting queries: "
            + cache.stats());
        assertTrue(cache.stats().tokenHitRatio() > 0.5, "hit ratio " + cache.stats());
      }
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  @Test
  void executionBufferHoldsSteadyThenRetrievedClusters() {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.FLOAT32).retrievalMinClusters(8).build();
    int d = 16;
    List<WaveHeadCache> heads = TestData.heads(rnd, config, 2, d, 1, 1500, 1800);
    try (WaveBatch batch = WaveBatch.of(heads, config)) {
      BatchTables t = batch.tables;
      float[] q = TestData.queries(rnd, t.items * d, 1f);
      KernelEmulator.WaveStep step = KernelEmulator.waveStep(batch, q, 4, null);
      Selection s = step.selection();
      for (int i = 0; i < t.items; i++) {
        WaveHeadCache h = heads.get(i);
        int expect = h.sinkKeys().size() + h.tailKeys().size();
        for (int k = 0; k < t.retrieve[i]; k++) {
          int c = s.retIds()[i * s.rStride() + k];
          assertEquals(expect, s.retDst()[i * s.rStride() + k], "cluster rows follow in id order");
          expect += h.index().clusterSize(c);
          if (k > 0) {
            assertTrue(c > s.retIds()[i * s.rStride() + k - 1], "ascending ids");
          }
        }
        assertEquals(expect, s.execLen()[i]);
        assertTrue(expect <= t.execCapacity[i]);
      }
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  @Test
  void fullAttentionMatchesFloat64Reference() {
    int d = 80;
    int g = 3;
    int n = 1000;
    float[] k = TestData.queries(rnd, n * d, 1f);
    float[] v = TestData.queries(rnd, n * d, 1f);
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
      java.lang.foreign.MemorySegment ks = arena.allocate((long) n * d * 4, 64);
      java.lang.foreign.MemorySegment vs = arena.allocate((long) n * d * 4, 64);
      ks.copyFrom(java.lang.foreign.MemorySegment.ofArray(k));
      vs.copyFrom(java.lang.foreign.MemorySegment.ofArray(v));
      // two items over overlapping row ranges of one pool
      long[] base = {0, 300};
      int[] len = {1000, 517};
      float[] q = TestData.queries(rnd, 2 * g * d, 2f);
      float[] out = KernelEmulator.fullAttention(d, g, KvDType.FLOAT32, ks, vs, n, base, len, q, 7);
      for (int i = 0; i < 2; i++) {
        int[] rows = new int[len[i]];
        for (int j = 0; j < rows.length; j++) {
          rows[j] = (int) base[i] + j;
        }
        for (int h = 0; h < g; h++) {
          double[] ref = Reference.attention(q, (i * g + h) * d, k, v, d, rows);
          assertTrue(Reference.maxAbsDiff(ref, out, (i * g + h) * d) < 1e-5, "item " + i + " head " + h);
        }
      }
    }
  }

  private static int[] slice(int[] a, int from, int n) {
    return Arrays.copyOfRange(a, from, from + n);
  }

  private static float minScore(float[] scores, int off, int[] ids) {
    float m = Float.POSITIVE_INFINITY;
    for (int c : ids) {
      m = Math.min(m, scores[off + c]);
    }
    return m;
  }

  private static int[] union(int[] a, int[] b) {
    return java.util.stream.IntStream.concat(Arrays.stream(a), Arrays.stream(b)).sorted().toArray();
  }

  private static int[] symmetricDifference(int[] a, int[] b) {
    java.util.Set<Integer> x = new java.util.TreeSet<>();
    java.util.Set<Integer> y = new java.util.TreeSet<>();
    Arrays.stream(a).forEach(x::add);
    Arrays.stream(b).forEach(y::add);
    java.util.Set<Integer> out = new java.util.TreeSet<>(x);
    out.addAll(y);
    java.util.Set<Integer> both = new java.util.TreeSet<>(x);
    both.retainAll(y);
    out.removeAll(both);
    return out.stream().mapToInt(Integer::intValue).toArray();
  }
}
