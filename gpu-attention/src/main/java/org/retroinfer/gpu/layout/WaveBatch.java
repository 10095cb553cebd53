package org.retroinfer.gpu.layout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The K/V and summaries of a batch of wave-core head caches (read through their {@link HeadLayout}),
 * flattened into the pools that the GPU
 * reads (host memory here; the engine uploads them or pins them): the steady pool (each item's
 * sinks, then its tail), the cluster-contiguous pool (each item's indexed K/V exactly as its
 * {@link WaveIndex} stores them), and the float32 centroids and value sums. Bytes are copied
 * unchanged, so 16-bit K/V keep wave-core's layout bit for bit; the centroids hold the values that
 * wave-core ranks with ({@link WaveIndex#rankingCentroid}: rounded to the keys' type), so both
 * rank and estimate from the same numbers.
 */
public final class WaveBatch implements AutoCloseable {
  private final Arena arena = Arena.ofShared();
  public final BatchTables tables;
  public final MemorySegment steadyK;
  public final MemorySegment steadyV;
  public final MemorySegment clusterK;
  public final MemorySegment clusterV;
  public final MemorySegment centroids;
  public final MemorySegment valueSums;

  private WaveBatch(List<HeadLayout> heads, WaveConfig config) {
    if (heads.isEmpty()) {
      throw new IllegalArgumentException("a batch needs at least one head cache");
    }
    HeadLayout first = heads.getFirst();
    int d = first.dim();
    int g = first.groupSize();
    KvDType type = first.kvType();
    int[] steady = new int[heads.size()];
    int[][] sizes = new int[heads.size()][];
    for (int i = 0; i < heads.size(); i++) {
      HeadLayout h = heads.get(i);
      if (h.dim() != d || h.groupSize() != g || h.kvType() != type) {
        throw new IllegalArgumentException("head cache " + i + " is " + h.dim() + "-dim, group "
            + h.groupSize() + ", " + h.kvType() + "; the batch is " + d + "-dim, group " + g
            + ", " + type + ": batch only caches of one shape");
      }
      steady[i] = h.steadyTokens();
      WaveIndex idx = h.index();
      sizes[i] = new int[idx.clusterCount()];
      for (int c = 0; c < sizes[i].length; c++) {
        sizes[i][c] = idx.clusterSize(c);
      }
    }
    tables = new BatchTables(d, g, type, steady, sizes, config);
    long rb = tables.rowBytes();
    steadyK = alloc(tables.steadyRows * rb);
    steadyV = alloc(tables.steadyRows * rb);
    clusterK = alloc(tables.clusterRows * rb);
    clusterV = alloc(tables.clusterRows * rb);
    centroids = alloc((long) tables.totalClusters() * d * 4);
    valueSums = alloc((long) tables.totalClusters() * d * 4);
    for (int i = 0; i < heads.size(); i++) {
      HeadLayout h = heads.get(i);
      long at = tables.steadyBase[i] * rb;
      at = copy(h.sinkKeys(), steadyK, at);
      copy(h.tailKeys(), steadyK, at);
      at = tables.steadyBase[i] * rb;
      at = copy(h.sinkValues(), steadyV, at);
      copy(h.tailValues(), steadyV, at);
      WaveIndex idx = h.index();
      if (idx.clusterCount() > 0) {
        long row = tables.clusterRow[(int) tables.centBase[i]];
        copyRows(idx.keys(), clusterK, row * rb);
        copyRows(idx.values(), clusterV, row * rb);
        long c0 = tables.centBase[i] * d;
        for (int c = 0; c < idx.clusterCount(); c++) {
          for (int t = 0; t < d; t++) {
            centroids.setAtIndex(ValueLayout.JAVA_FLOAT, c0 + (long) c * d + t,
                idx.rankingCentroid(c, t));
          }
        }
        copy(idx.valueSums(), valueSums, tables.centBase[i] * d * 4);
      }
    }
  }

  /** Flattens wave caches {@code heads} (one shape); r and e per item follow {@code config}. */
  public static WaveBatch of(List<? extends HeadCache> heads, WaveConfig config) {
    return ofLayouts(heads.stream().map(HeadLayout::of).toList(), config);
  }

  /** Flattens the heads of these layouts (one shape); r and e per item follow {@code config}. */
  public static WaveBatch ofLayouts(List<HeadLayout> heads, WaveConfig config) {
    return new WaveBatch(heads, config);
  }

  private MemorySegment alloc(long bytes) {
    // 256-byte alignment, like cuMemAlloc: 16-byte vector loads need 16
    return arena.allocate(Math.max(16, bytes), 256);
  }

  private static long copy(VectorStore src, MemorySegment dst, long at) {
    if (src.size() == 0) {
      return at;
    }
    MemorySegment m = src.memory();
    MemorySegment.copy(m, 0, dst, at, m.byteSize());
    return at + m.byteSize();
  }

  /** Copies every row of {@code src} region by region (an opened context's rows are in blocks). */
  private static void copyRows(VectorStore src, MemorySegment dst, long at) {
    for (int from = 0; from < src.size(); ) {
      int to = src.oneRegionEnd(from, src.size());
      MemorySegment m = src.rows(from, to);
      MemorySegment.copy(m, 0, dst, at, m.byteSize());
      at += m.byteSize();
      from = to;
    }
  }

  @Override
  public void close() {
    arena.close();
  }
}
