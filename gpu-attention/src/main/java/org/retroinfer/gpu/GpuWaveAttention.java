package org.retroinfer.gpu;

import java.util.ArrayList;
import java.util.List;
import org.retroinfer.gpu.buffer.ClusterSource;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.engine.GpuWaveEngine;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Wave attention with decode attention on the GPU ("wave-gpu"): the same index and the same
 * zones as wave-core's {@link WaveAttention} (the index is built on the CPU), with ranking,
 * selection, estimation, exact attention and merge in CUDA kernels, all K/V of a layer resident in
 * GPU memory. Results equal the CPU backend's within float rounding (see the tests).
 *
 * <p>The GPU runs per layer through {@link #newContext}; {@link #newHead} gives a CPU wave cache
 * (a single head is too little work for a GPU launch). Layers whose contexts
 * are still too short to have an index are attended on the CPU (exactly, as wave-core does).
 */
public final class GpuWaveAttention implements AttentionBackend {
  private static volatile boolean warnedFixed;
  private final WaveConfig config;
  private final CudaContext cx;
  private final WaveAttention cpuBackend;

  /**
   * @param config the wave configuration; an ADAPTIVE budget runs as {@link WaveConfig#asFixed()}
   *     (the kernels select fixed counts; per-step budgets are CPU-only for now), said once in the
   *     log
   */
  public GpuWaveAttention(WaveConfig config, CudaContext cx) {
    if (config.adaptive()) {
      config = config.asFixed();
      if (!warnedFixed) {
        warnedFixed = true;
        java.util.logging.Logger.getLogger(GpuWaveAttention.class.getName()).info("wave-gpu sizes"
            + " its zones by the fixed budget (r = max(" + config.retrievalFraction() * 100
            + "%, " + config.retrievalMinClusters() + " clusters), e = "
            + config.estimationFraction() * 100 + "%); the adaptive budget runs on the CPU only");
      }
    }
    this.config = config;
    this.cx = cx;
    this.cpuBackend = new WaveAttention(config);
  }

  @Override
  public String name() {
    return "wave-gpu";
  }

  @Override
  public KvDType kvType() {
    return config.kvType();
  }

  @Override
  public HeadCache newHead(int headDim, int groupSize) {
    return cpuBackend.newHead(headDim, groupSize);
  }

  @Override
  public ContextCache newContext(AttentionShape shape) {
    org.retroinfer.gpu.layout.Shapes.check(shape.headDim(), shape.groupSize());
    return new Context(shape);
  }

  /**
   * Decode attention on the GPU over an existing wave context (e.g. one opened from a store),
   * which the result now owns: the wave buffer keeps 5% of the clusters in GPU memory (LRU) and
   * reads its misses, and its fills, from {@code tierOfLayer.apply(layer)} (the host tier the
   * application gives, e.g. the CPU tier over the store's files).
   */
  public ContextCache wrap(ContextCache context,
      java.util.function.IntFunction<ClusterSource> tierOfLayer) {
    org.retroinfer.gpu.layout.Shapes.check(context.shape().headDim(), context.shape().groupSize());
    return new Context(context, tierOfLayer);
  }

  private final class Context extends MirroredContextCache {
    private final java.util.function.IntFunction<ClusterSource> tierOfLayer;

    Context(AttentionShape shape) {
      super(GpuWaveAttention.this, cpuBackend, shape);
      this.tierOfLayer = null;
    }

    Context(ContextCache cpu, java.util.function.IntFunction<ClusterSource> tierOfLayer) {
      super(GpuWaveAttention.this, cpu);
      this.tierOfLayer = tierOfLayer;
    }

    private List<HeadLayout> heads(int layer) {
      List<HeadLayout> out = new ArrayList<>();
      for (int h = 0; h < shape().kvHeads(); h++) {
        out.add(HeadLayout.of(cpu.head(layer, h)));
      }
      return out;
    }

    @Override
    protected long[] signature(int layer) {
      List<HeadLayout> hs = heads(layer);
      long[] s = new long[2 * hs.size()];
      for (int i = 0; i < hs.size(); i++) {
        s[2 * i] = hs.get(i).size();
        s[2 * i + 1] = hs.get(i).index().clusterCount();
      }
      return s;
    }

    @Override
    protected AutoCloseable mirror(int layer) {
      List<HeadLayout> hs = heads(layer);
      for (HeadLayout h : hs) {
        if (h.index().clusterCount() == 0) {
          return () -> {}; // no index yet: exact attention on the CPU
        }
      }
      try (WaveBatch batch = WaveBatch.ofLayouts(hs, config)) {
        if (tierOfLayer == null) {
          GpuWaveEngine engine = new GpuWaveEngine(cx, batch.tables, GpuWaveEngine.Mode.RESIDENT,
              0, 8);
          engine.load(batch);
          return engine;
        }
        GpuWaveEngine engine = new GpuWaveEngine(cx, batch.tables,
            GpuWaveEngine.Mode.OFFLOAD_CACHED, 0.05, 8);
        engine.load(batch);
        engine.useClusterSource(tierOfLayer.apply(layer));
        return engine;
      }
    }

    @Override
    protected void attendMirror(AutoCloseable mirror, int layer, float[] queries, float[] out) {
      if (mirror instanceof GpuWaveEngine engine) {
        float[] o = engine.step(queries);
        System.arraycopy(o, 0, out, 0, o.length);
      } else {
        cpu.attend(layer, queries, out);
      }
    }
  }
}
