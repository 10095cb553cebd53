package org.retroinfer.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.engine.GpuFullAttentionEngine;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.PositionalHeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Full attention with decode attention on the GPU ("full-gpu"): the exact reference computed by
 * the split-K baseline kernel over all of a layer's K/V. Storage as wave-core's
 * {@link FullAttention}; per layer through {@link #newContext} (see {@link GpuWaveAttention}).
 */
public final class GpuFullAttention implements AttentionBackend {
  private final KvDType type;
  private final CudaContext cx;
  private final FullAttention cpuBackend;

  public GpuFullAttention(KvDType type, CudaContext cx) {
    this.type = type;
    this.cx = cx;
    this.cpuBackend = new FullAttention(type);
  }

  @Override
  public String name() {
    return "full-gpu";
  }

  @Override
  public KvDType kvType() {
    return type;
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

  private final class Context extends MirroredContextCache {
    Context(AttentionShape shape) {
      super(GpuFullAttention.this, cpuBackend, shape);
    }

    @Override
    protected long[] signature(int layer) {
      return new long[] {cpu.length(layer)};
    }

    @Override
    protected AutoCloseable mirror(int layer) {
      AttentionShape s = shape();
      int n = cpu.length(layer);
      long[] base = new long[s.kvHeads()];
      int[] len = new int[s.kvHeads()];
      long rb = (long) s.headDim() * type.bytes();
      for (int h = 0; h < s.kvHeads(); h++) {
        base[h] = (long) h * n;
        len[h] = n;
      }
      GpuFullAttentionEngine engine = new GpuFullAttentionEngine(cx, s.headDim(), s.groupSize(), type,
          base, len, Math.max(1L, (long) n * s.kvHeads()));
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment k = arena.allocate(Math.max(16, n * rb * s.kvHeads()), 256);
        MemorySegment v = arena.allocate(Math.max(16, n * rb * s.kvHeads()), 256);
        for (int h = 0; h < s.kvHeads() && n > 0; h++) {
          PositionalHeadCache head = (PositionalHeadCache) cpu.head(layer, h);
          MemorySegment.copy(head.keys().memory(), 0, k, h * n * rb, n * rb);
          MemorySegment.copy(head.values().memory(), 0, v, h * n * rb, n * rb);
        }
        engine.upload(k, v);
      } catch (RuntimeException e) {
        engine.close();
        throw e;
      }
      return engine;
    }

    @Override
    protected void attendMirror(AutoCloseable mirror, int layer, float[] queries, float[] out) {
      float[] o = ((GpuFullAttentionEngine) mirror).attend(queries);
      System.arraycopy(o, 0, out, 0, o.length);
    }
  }
}
