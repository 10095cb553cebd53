package org.retroinfer.gpu;

import java.util.Arrays;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.HeadwiseContextCache;

/**
 * A context whose K/V (and wave index) live in wave-core's CPU head caches, the source of truth,
 * and whose decode attention runs on the GPU over a mirror of one layer at a time (all KV heads of
 * the layer as one batch). The mirror is rebuilt when the layer's caches changed since it was made.
 *
 * <p>Rebuilding copies the layer to the GPU, so this adapter is correct but not fast for
 * token-by-token decoding; the engines it drives are what the benchmark measures.
 */
abstract class MirroredContextCache implements ContextCache {
  private final AttentionBackend backend;
  protected final ContextCache cpu;
  private final AutoCloseable[] mirrors;
  private final long[][] signatures;

  MirroredContextCache(AttentionBackend backend, AttentionBackend cpuBackend, AttentionShape shape) {
    this(backend, new HeadwiseContextCache(cpuBackend, shape));
  }

  /** A mirror over an existing CPU context (e.g. one opened from a store), which it now owns. */
  MirroredContextCache(AttentionBackend backend, ContextCache cpu) {
    AttentionShape shape = cpu.shape();
    this.backend = backend;
    this.cpu = cpu;
    this.mirrors = new AutoCloseable[shape.layers()];
    this.signatures = new long[shape.layers()][];
  }

  /** What identifies the layer's contents (sizes and index state per head). */
  protected abstract long[] signature(int layer);

  /** A GPU mirror of the layer's heads. */
  protected abstract AutoCloseable mirror(int layer);

  /** Attention over the mirror. */
  protected abstract void attendMirror(AutoCloseable mirror, int layer, float[] queries, float[] out);

  @Override
  public AttentionShape shape() {
    return cpu.shape();
  }

  @Override
  public AttentionBackend backend() {
    return backend;
  }

  @Override
  public int length(int layer) {
    return cpu.length(layer);
  }

  @Override
  public void append(int layer, float[] keys, float[] values) {
    cpu.append(layer, keys, values);
  }

  @Override
  public void attend(int layer, float[] queries, float[] out) {
    AttentionShape s = shape();
    if (queries.length != s.queryWidth() || out.length != s.queryWidth()) {
      throw new IllegalArgumentException("layer " + layer + ": queries of length " + queries.length
          + " and output of length " + out.length + " do not match queryHeads " + s.queryHeads()
          + " x headDim " + s.headDim() + " = " + s.queryWidth());
    }
    long[] sig = signature(layer);
    if (mirrors[layer] == null || !Arrays.equals(sig, signatures[layer])) {
      closeMirror(layer);
      mirrors[layer] = mirror(layer);
      signatures[layer] = sig;
    }
    attendMirror(mirrors[layer], layer, queries, out);
  }

  @Override
  public void endPrefill() {
    cpu.endPrefill();
  }

  @Override
  public HeadCache head(int layer, int kvHead) {
    return cpu.head(layer, kvHead);
  }

  @Override
  public long memoryBytes() {
    return cpu.memoryBytes();
  }

  private void closeMirror(int layer) {
    if (mirrors[layer] != null) {
      try {
        mirrors[layer].close();
      } catch (Exception e) {
        throw new IllegalStateException("cannot free the GPU mirror of layer " + layer + ": "
            + e.getMessage(), e);
      }
      mirrors[layer] = null;
    }
  }

  @Override
  public void close() {
    for (int l = 0; l < mirrors.length; l++) {
      closeMirror(l);
    }
    cpu.close();
  }
}
