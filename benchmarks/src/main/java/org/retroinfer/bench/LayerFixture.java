package org.retroinfer.bench;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.PositionalHeadCache;

/**
 * One layer of decode attention for a given model shape and context length: synthetic K/V per KV
 * head (needles, recurring topics, RoPE; see {@code SyntheticKv}) loaded into a cache of each
 * requested method, and fresh queries. Shared by the JMH benchmarks and {@link AttentionBench}.
 */
public final class LayerFixture implements AutoCloseable {
  /** Llama-3-8B: 32 query heads, 8 KV heads, head dim 128. */
  public static final AttentionShape LLAMA3_8B_LAYER = new AttentionShape(1, 32, 8, 128);

  public final AttentionShape shape;
  public final int context;
  private final SyntheticKv[] heads;
  private final List<ContextCache> caches = new ArrayList<>();

  public LayerFixture(AttentionShape shape, int context, long seed) {
    this.shape = shape;
    this.context = context;
    this.heads = new SyntheticKv[shape.kvHeads()];
    java.util.stream.IntStream.range(0, heads.length).parallel()
        .forEach(h -> heads[h] = new SyntheticKv(seed + h, context, shape.headDim(),
            Math.max(4, context / 4096), 16));
  }

  /** A cache of {@code method} holding the fixture's context; prefill ended (index built). */
  public ContextCache load(String method, WaveConfig config) {
    AttentionBackend backend = MethodSpec.parse(method).backend(config);
    ContextCache cache = backend.newContext(shape);
    int d = shape.headDim();
    float[] k = new float[shape.kvWidth()];
    float[] v = new float[shape.kvWidth()];
    for (int j = 0; j < context; j++) {
      for (int h = 0; h < heads.length; h++) {
        System.arraycopy(heads[h].keys, j * d, k, h * d, d);
        System.arraycopy(heads[h].values, j * d, v, h * d, d);
      }
      cache.append(0, k, v);
    }
    cache.endPrefill();
    caches.add(cache);
    return cache;
  }

  /** Queries for every query head of the layer, looking for each KV head's needles. */
  public float[] query() {
    int g = shape.groupSize();
    int d = shape.headDim();
    float[] q = new float[shape.queryWidth()];
    for (int h = 0; h < heads.length; h++) {
      System.arraycopy(heads[h].query(g), 0, q, h * g * d, g * d);
    }
    return q;
  }

  /** The K and V memory of a positional (full / Quest) cache: what full attention streams. */
  public static List<MemorySegment> kvMemory(ContextCache cache) {
    List<MemorySegment> segments = new ArrayList<>();
    for (int h = 0; h < cache.shape().kvHeads(); h++) {
      PositionalHeadCache head = (PositionalHeadCache) cache.head(0, h);
      segments.add(head.keys().memory());
      segments.add(head.values().memory());
    }
    return segments;
  }

  @Override
  public void close() {
    caches.forEach(ContextCache::close);
    caches.clear();
  }
}
