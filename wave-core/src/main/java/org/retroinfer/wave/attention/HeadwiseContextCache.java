package org.retroinfer.wave.attention;

import java.util.stream.IntStream;
import org.retroinfer.wave.concurrent.WorkTeam;

/** A {@link ContextCache} made of one independent {@link HeadCache} per (layer, KV head). */
public final class HeadwiseContextCache implements ContextCache {
  private final AttentionBackend backend;
  private final AttentionShape shape;
  private final HeadCache[][] heads;
  private final AutoCloseable afterClose;
  private boolean closed;

  public HeadwiseContextCache(AttentionBackend backend, AttentionShape shape) {
    this.backend = backend;
    this.shape = shape;
    this.heads = new HeadCache[shape.layers()][shape.kvHeads()];
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        heads[l][h] = backend.newHead(shape.headDim(), shape.groupSize());
      }
    }
    this.afterClose = null;
  }

  /** Wraps existing heads (e.g. loaded from a store); {@code heads[layer][kvHead]}. */
  public HeadwiseContextCache(AttentionBackend backend, AttentionShape shape, HeadCache[][] heads) {
    this(backend, shape, heads, null);
  }

  /**
   * Wraps existing heads whose memory depends on {@code afterClose} (e.g. the reader of the files
   * they read in place), which {@link #close()} closes after the heads.
   */
  public HeadwiseContextCache(AttentionBackend backend, AttentionShape shape, HeadCache[][] heads,
      AutoCloseable afterClose) {
    if (heads.length != shape.layers()) {
      throw new IllegalArgumentException(heads.length + " layers of heads for a shape of "
          + shape.layers() + " layers");
    }
    for (HeadCache[] layer : heads) {
      if (layer.length != shape.kvHeads()) {
        throw new IllegalArgumentException(layer.length + " KV heads for a shape of "
            + shape.kvHeads());
      }
    }
    this.backend = backend;
    this.shape = shape;
    this.heads = heads;
    this.afterClose = afterClose;
  }

  @Override
  public AttentionShape shape() {
    return shape;
  }

  @Override
  public AttentionBackend backend() {
    return backend;
  }

  @Override
  public int length(int layer) {
    return heads[checkLayer(layer)][0].size();
  }

  @Override
  public void append(int layer, float[] keys, float[] values) {
    checkLayer(layer);
    int width = shape.kvWidth();
    if (keys.length != width || values.length != width) {
      throw new IllegalArgumentException("layer " + layer + ": keys of length " + keys.length
          + " and values of length " + values.length + " do not match kvHeads " + shape.kvHeads()
          + " x headDim " + shape.headDim() + " = " + width);
    }
    int d = shape.headDim();
    HeadCache[] layerHeads = heads[layer];
    boolean heavy = false;
    for (HeadCache head : layerHeads) {
      heavy |= head.nextAppendIsHeavy();
    }
    WorkTeam.RangeBody body = (from, to) -> {
      for (int h = from; h < to; h++) {
        layerHeads[h].append(keys, h * d, values, h * d);
      }
    };
    if (heavy) {
      // an index update (clustering U tokens per head): the heads' updates in parallel
      WorkTeam.shared().forRange(layerHeads.length, layerHeads.length, body);
    } else {
      body.run(0, layerHeads.length);
    }
  }

  @Override
  public void attend(int layer, float[] queries, float[] out) {
    checkLayer(layer);
    int width = shape.queryWidth();
    if (queries.length != width || out.length != width) {
      throw new IllegalArgumentException("layer " + layer + ": queries of length " + queries.length
          + " and output of length " + out.length + " do not match queryHeads "
          + shape.queryHeads() + " x headDim " + shape.headDim() + " = " + width);
    }
    int groupWidth = shape.groupSize() * shape.headDim();
    HeadCache[] layerHeads = heads[layer];
    if (layerHeads.length == 1) {
      layerHeads[0].attend(queries, 0, out, 0);
    } else {
      WorkTeam.shared().forRange(layerHeads.length, layerHeads.length, (from, to) -> {
        for (int h = from; h < to; h++) {
          layerHeads[h].attend(queries, h * groupWidth, out, h * groupWidth);
        }
      });
    }
  }

  @Override
  public void endPrefill() {
    endPrefill((done, total) -> {});
  }

  @Override
  public void endPrefill(java.util.function.BiConsumer<Integer, Integer> progress) {
    int kv = shape.kvHeads();
    int total = shape.layers() * kv;
    java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
    IntStream.range(0, total).parallel().forEach(i -> {
      heads[i / kv][i % kv].endPrefill();
      progress.accept(done.incrementAndGet(), total);
    });
  }

  @Override
  public HeadCache head(int layer, int kvHead) {
    checkLayer(layer);
    if (kvHead < 0 || kvHead >= shape.kvHeads()) {
      throw new IndexOutOfBoundsException("KV head " + kvHead + " outside [0, " + shape.kvHeads() + ")");
    }
    return heads[layer][kvHead];
  }

  @Override
  public long memoryBytes() {
    long total = 0;
    for (HeadCache[] layer : heads) {
      for (HeadCache h : layer) {
        total += h.memoryBytes();
      }
    }
    return total;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (HeadCache[] layer : heads) {
      for (HeadCache h : layer) {
        h.close();
      }
    }
    if (afterClose != null) {
      try {
        afterClose.close();
      } catch (Exception e) {
        throw new IllegalStateException("cannot release what the context's heads read from: "
            + e.getMessage(), e);
      }
    }
  }

  private int checkLayer(int layer) {
    if (layer < 0 || layer >= shape.layers()) {
      throw new IndexOutOfBoundsException("layer " + layer + " outside [0, " + shape.layers() + ")");
    }
    return layer;
  }
}
