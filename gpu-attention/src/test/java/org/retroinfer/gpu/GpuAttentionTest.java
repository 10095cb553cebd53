package org.retroinfer.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.cuda.CudaAvailability;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.cuda.KernelNames;
import org.retroinfer.gpu.emulation.KernelEmulator;
import org.retroinfer.gpu.engine.GpuFullAttentionEngine;
import org.retroinfer.gpu.engine.GpuWaveEngine;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.Reference;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.index.ZonePlan;
import org.retroinfer.wave.kv.KvDType;

/**
 * The CUDA kernels against wave-core on a real GPU: full attention vs the CPU's full attention and a
 * float64 reference, wave attention vs WaveHeadCache (zones, scores, output), the three buffer
 * modes against each other, and the backends end to end. Outputs and intermediates are poisoned
 * (NaN) before every GPU step; inputs are fresh random data (the seed is printed on failure).
 * Skipped, with the reason, where no CUDA GPU can be used.
 */
class GpuAttentionTest {
  private static CudaContext cx;
  private final long seed = System.nanoTime();
  private final Random rnd = new Random(seed);

  @BeforeAll
  static void open() {
    if (CudaAvailability.get().available()) {
      cx = GpuBackends.context();
    }
  }

  /** Per test, so that every GPU test is reported as skipped with the reason. */
  @BeforeEach
  void requireGpu() {
    CudaAvailability a = CudaAvailability.get();
    Assumptions.assumeTrue(a.available(), "no CUDA GPU, GPU test skipped: " + a.reason());
    cx.makeCurrent();
  }

  @AfterAll
  static void close() {
    if (cx != null) {
      cx.synchronize();
    }
  }

  @Test
  void everyKernelResolves() {
    for (String name : KernelNames.all()) {
      cx.function(name);
    }
  }

  @Test
  void fullKernelMatchesCpuFullAttention() {
    int[][] shapes = {{128, 4}, {16, 1}, {48, 3}, {64, 2}, {256, 8}, {96, 5}};
    for (KvDType type : KvDType.values()) {
      for (int[] s : shapes) {
        checkFull(type, s[0], s[1], 2 + rnd.nextInt(3), 500 + rnd.nextInt(4000));
      }
    }
  }

  private void checkFull(KvDType type, int d, int g, int items, int n) {
    FullAttention cpu = new FullAttention(type);
    HeadCache[] heads = new HeadCache[items];
    long rb = (long) d * type.bytes();
    long[] base = new long[items];
    int[] len = new int[items];
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
      java.lang.foreign.MemorySegment k = arena.allocate((long) items * n * rb, 256);
      java.lang.foreign.MemorySegment v = arena.allocate((long) items * n * rb, 256);
      for (int i = 0; i < items; i++) {
        heads[i] = cpu.newHead(d, g);
        float[] key = new float[d];
        float[] val = new float[d];
        len[i] = n - rnd.nextInt(n / 2);
        base[i] = (long) i * n;
        for (int t = 0; t < len[i]; t++) {
          for (int c = 0; c < d; c++) {
            key[c] = (float) rnd.nextGaussian();
            val[c] = (float) rnd.nextGaussian();
          }
          heads[i].append(key, 0, val, 0);
        }
        PositionalHeadCache p = (PositionalHeadCache) heads[i];
        java.lang.foreign.MemorySegment.copy(p.keys().memory(), 0, k, base[i] * rb, len[i] * rb);
        java.lang.foreign.MemorySegment.copy(p.values().memory(), 0, v, base[i] * rb, len[i] * rb);
      }
      float[] q = TestData.queries(rnd, items * g * d, 2f);
      try (GpuFullAttentionEngine e = new GpuFullAttentionEngine(cx, d, g, type, base, len,
          (long) items * n)) {
        e.upload(k, v);
        float[] gpu = e.attend(q);
        e.useGraph();
        float[] replayed = e.attend(q);
        assertTrue(TestData.relativeError(gpu, 0, replayed, 0, gpu.length) <= 1e-5,
            type + " d=" + d + ": graph replay vs launched kernels (seed " + seed + ")");
        for (int i = 0; i < items; i++) {
          float[] ref = new float[g * d];
          heads[i].attend(q, i * g * d, ref, 0);
          double err = TestData.relativeError(ref, 0, gpu, i * g * d, g * d);
          assertTrue(err <= 1e-3, type + " d=" + d + " g=" + g + " item " + i + ": relative error "
              + err + " (seed " + seed + ")");
          // float64 over the stored (rounded) K/V
          PositionalHeadCache p = (PositionalHeadCache) heads[i];
          float[] kk = new float[len[i] * d];
          float[] vv = new float[len[i] * d];
          for (int t = 0; t < len[i]; t++) {
            p.keys().read(t, kk, t * d);
            p.values().read(t, vv, t * d);
          }
          for (int h = 0; h < g; h++) {
            double[] r64 = Reference.attention(q, (i * g + h) * d, kk, vv, d, len[i]);
            assertTrue(Reference.maxAbsDiff(r64, gpu, (i * g + h) * d) < 1e-4, "float64 reference, "
                + type + " d=" + d + " item " + i + " head " + h + " (seed " + seed + ")");
          }
        }
      }
    } finally {
      for (HeadCache h : heads) {
        if (h != null) {
          h.close();
        }
      }
    }
  }

  @Test
  void waveResidentMatchesWaveCore() {
    checkWave(KvDType.BFLOAT16, 128, 4, 4);
    checkWave(KvDType.BFLOAT16, 64, 3, 3);
    checkWave(KvDType.FLOAT32, 48, 1, 2);
    checkWave(KvDType.FLOAT16, 256, 8, 2);
  }

  private void checkWave(KvDType type, int d, int g, int items) {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(type).retrievalMinClusters(16).build();
    List<WaveHeadCache> heads = TestData.heads(rnd, config, items, d, g, 1500, 5000);
    try (WaveBatch batch = WaveBatch.of(heads, config);
        GpuWaveEngine engine = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.RESIDENT, 0, 8)) {
      engine.load(batch);
      BatchTables t = batch.tables;
      float[] q = TestData.queries(rnd, items * g * d, 1.5f);
      engine.poison();
      float[] out = engine.step(q);
      Selection sel = engine.readSelection();
      float[] scores = engine.readScores();
      int cs = engine.scoreStride();
      // the select kernel on the GPU's own scores must equal the emulated algorithm exactly
      Selection emulated = Selection.allocate(t);
      KernelEmulator.select(t, scores, cs, emulated);
      KernelEmulator.WaveStep cpuStep = KernelEmulator.waveStep(batch, q, 64, null);
      int same = 0;
      for (int i = 0; i < items; i++) {
        int[] ret = Arrays.copyOfRange(sel.retIds(), i * sel.rStride(), i * sel.rStride() + t.retrieve[i]);
        int[] est = Arrays.copyOfRange(sel.estIds(), i * sel.eStride(), i * sel.eStride() + t.estimate[i]);
        assertArrayEquals(Arrays.copyOfRange(emulated.retIds(), i * sel.rStride(),
            i * sel.rStride() + t.retrieve[i]), ret, "select_top vs its emulation, item " + i);
        assertArrayEquals(Arrays.copyOfRange(emulated.estIds(), i * sel.eStride(),
            i * sel.eStride() + t.estimate[i]), est, "select_top estimated vs emulation, item " + i);
        assertEquals(emulated.execLen()[i], sel.execLen()[i], "exec length, item " + i);
        for (int c = 0; c < t.clusters[i]; c++) {
          float a = cpuStep.scores()[i * cpuStep.cStride() + c];
          float b = scores[i * cs + c];
          assertTrue(Math.abs(a - b) <= 1e-4f * Math.max(a, 1e-3f), "score of cluster " + c
              + ", item " + i + ": GPU " + b + " vs emulated " + a + " (seed " + seed + ")");
        }
        WaveHeadCache h = heads.get(i);
        float[] ref = TestData.tripartite(h, ret, est, q, i * g * d);
        double err = TestData.relativeError(ref, 0, out, i * g * d, g * d);
        assertTrue(err <= 1e-3, type + " d=" + d + " item " + i + ": relative error " + err
            + " vs wave-core with the GPU's zones (seed " + seed + ")");
        ZonePlan plan = h.planZones(q, i * g * d);
        if (Arrays.equals(plan.retrievedClusters(), ret) && Arrays.equals(plan.estimatedClusters(), est)) {
          float[] wave = new float[g * d];
          h.attend(q, i * g * d, wave, 0);
          double e2 = TestData.relativeError(wave, 0, out, i * g * d, g * d);
          assertTrue(e2 <= 1e-3, "item " + i + ": relative error " + e2 + " vs WaveHeadCache.attend"
              + " (seed " + seed + ")");
          same++;
        }
      }
      assertTrue(same * 2 >= items, same + " of " + items + " items had exactly wave-core's zones");
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  @Test
  void graphReplayEqualsLaunchedKernels() {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    int d = 128;
    int g = 4;
    List<WaveHeadCache> heads = TestData.heads(rnd, config, 3, d, g, 2000, 4000);
    try (WaveBatch batch = WaveBatch.of(heads, config);
        GpuWaveEngine engine = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.RESIDENT, 0, 8)) {
      engine.load(batch);
      float[] q1 = TestData.queries(rnd, 3 * g * d, 1.5f);
      float[] q2 = TestData.queries(rnd, 3 * g * d, 1.5f);
      engine.poison();
      float[] a1 = engine.step(q1);
      float[] a2 = engine.step(q2);
      engine.useGraph();
      engine.poison();
      float[] b1 = engine.step(q1);
      engine.poison();
      float[] b2 = engine.step(q2); // the replay reads the new queries, not the captured ones
      assertTrue(TestData.relativeError(a1, 0, b1, 0, a1.length) <= 1e-5, "graph vs launches, first"
          + " queries (seed " + seed + ")");
      assertTrue(TestData.relativeError(a2, 0, b2, 0, a2.length) <= 1e-5,
          "graph vs launches, second queries (seed " + seed + ")");
      assertTrue(TestData.relativeError(a1, 0, a2, 0, a1.length) > 1e-3,
          "different queries must give different outputs");
      // the device-only replay recomputes the last queries' output where it stays, on the device
      engine.poison();
      engine.replayOnDevice();
      float[] c2 = engine.readOutput();
      assertTrue(TestData.relativeError(a2, 0, c2, 0, a2.length) <= 1e-5, "device-only replay"
          + " (seed " + seed + ")");
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  @Test
  void waveOnShippedModelKvMatchesWaveCore() throws Exception {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    try (ModelKv kv = new ModelKv(config, 2048, rnd);
        WaveBatch batch = WaveBatch.of(kv.heads, config);
        GpuWaveEngine engine = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.RESIDENT, 0, 8)) {
      engine.load(batch);
      engine.poison();
      float[] out = engine.step(kv.queries);
      Selection s = engine.readSelection();
      ShippedModelKvTest.check(kv, batch.tables, s.retIds(), s.rStride(), s.estIds(), s.eStride(), out,
          seed);
    }
  }

  @Test
  void offloadModesEqualResidentAndTheCacheHits() {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    int d = 128;
    int g = 4;
    List<WaveHeadCache> heads = TestData.heads(rnd, config, 4, d, g, 3000, 6000);
    try (WaveBatch batch = WaveBatch.of(heads, config);
        GpuWaveEngine resident = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.RESIDENT, 0, 8);
        GpuWaveEngine cached = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.OFFLOAD_CACHED,
            0.25, 8);
        GpuWaveEngine uncached = new GpuWaveEngine(cx, batch.tables,
            GpuWaveEngine.Mode.OFFLOAD_UNCACHED, 0, 8)) {
      resident.load(batch);
      cached.load(batch);
      uncached.load(batch);
      float[] q = TestData.queries(rnd, 4 * g * d, 1.5f);
      for (int step = 0; step < 8; step++) {
        for (int i = 0; i < q.length; i++) {
          q[i] += (float) rnd.nextGaussian() * 0.05f;
        }
        resident.poison();
        cached.poison();
        uncached.poison();
        float[] a = resident.step(q);
        float[] b = cached.step(q);
        float[] c = uncached.step(q);
        cached.settleCache();
        assertTrue(TestData.relativeError(a, 0, b, 0, a.length) <= 1e-5, "cached vs resident, step "
            + step + " (seed " + seed + ")");
        assertTrue(TestData.relativeError(a, 0, c, 0, a.length) <= 1e-5, "uncached vs resident, step "
            + step + " (seed " + seed + ")");
        assertEquals(0, uncached.lastStep().hits());
      }
      assertTrue(cached.cache().stats().tokenHitRatio() > 0.3, "block cache hit ratio with slowly"
          + " drifting queries: " + cached.cache().stats());
    } finally {
      heads.forEach(WaveHeadCache::close);
    }
  }

  @Test
  void gpuBackendsMatchCpuBackendsEndToEnd() {
    WaveConfig config = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).retrievalMinClusters(16).build();
    AttentionShape shape = new AttentionShape(2, 8, 2, 64);
    for (String name : new String[] {"wave", "full"}) {
      AttentionBackend gpu = GpuBackends.create(name + "-gpu", config);
      AttentionBackend cpu = org.retroinfer.wave.attention.AttentionBackends.create(name, config);
      try (ContextCache a = gpu.newContext(shape); ContextCache b = cpu.newContext(shape)) {
        float[] k = new float[shape.kvWidth()];
        float[] v = new float[shape.kvWidth()];
        for (int t = 0; t < 2500; t++) {
          for (int i = 0; i < k.length; i++) {
            k[i] = (float) rnd.nextGaussian();
            v[i] = (float) rnd.nextGaussian();
          }
          for (int l = 0; l < shape.layers(); l++) {
            a.append(l, k, v);
            b.append(l, k, v);
          }
        }
        a.endPrefill();
        b.endPrefill();
        float[] q = TestData.queries(rnd, shape.queryWidth(), 1f);
        float[] x = new float[shape.queryWidth()];
        float[] y = new float[shape.queryWidth()];
        for (int l = 0; l < shape.layers(); l++) {
          a.attend(l, q, x);
          b.attend(l, q, y);
          double err = TestData.relativeError(y, 0, x, 0, x.length);
          // wave: zones may differ on float near-ties; 1e-2 still catches any real mistake
          assertTrue(err <= (name.equals("full") ? 1e-3 : 1e-2), name + " layer " + l
              + ": relative error " + err + " (seed " + seed + ")");
        }
      }
    }
  }
}
