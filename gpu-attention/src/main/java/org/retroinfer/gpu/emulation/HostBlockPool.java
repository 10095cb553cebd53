package org.retroinfer.gpu.emulation;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.retroinfer.gpu.buffer.Admission;
import org.retroinfer.gpu.buffer.BlockCache;
import org.retroinfer.gpu.buffer.CacheUpdater;
import org.retroinfer.gpu.buffer.ExecutionAssembler;
import org.retroinfer.gpu.buffer.GatherPlan;
import org.retroinfer.gpu.layout.BatchTables;

/**
 * The block pool of a {@link BlockCache} in host memory, with its updater: the CPU stand-in for the
 * device block pool, filled by the same fill plans and completed the same way as on the GPU.
 */
public final class HostBlockPool implements AutoCloseable {
  private final Arena arena = Arena.ofShared();
  private final BlockCache cache;
  private final CacheUpdater updater;
  final MemorySegment keys;
  final MemorySegment values;
  private final long rowBytes;

  public HostBlockPool(BlockCache cache, long rowBytes) {
    this.cache = cache;
    this.updater = new CacheUpdater(cache);
    this.rowBytes = rowBytes;
    long bytes = Math.max(16, (long) cache.blocks() * cache.blockTokens() * rowBytes);
    keys = arena.allocate(bytes, 256);
    values = arena.allocate(bytes, 256);
  }

  public BlockCache cache() {
    return cache;
  }

  public CacheUpdater updater() {
    return updater;
  }

  /**
   * Copies admitted clusters' rows from {@code source} (the host tier) into their blocks, then
   * completes them: what the fill does when the wave buffer's misses come from a
   * {@link org.retroinfer.gpu.buffer.ClusterSource}.
   */
  void fill(BatchTables t, List<Admission> admissions, org.retroinfer.gpu.buffer.ClusterSource source) {
    int bt = cache.blockTokens();
    for (Admission a : admissions) {
      int item = itemOf(t, a.cluster());
      long bytes = a.tokens() * rowBytes;
      try (Arena tmp = Arena.ofConfined()) {
        MemorySegment k = tmp.allocate(Math.max(16, bytes), 64);
        MemorySegment v = tmp.allocate(Math.max(16, bytes), 64);
        source.read(item, a.cluster() - (int) t.centBase[item], a.tokens(), k, 0, v, 0);
        int[] blocks = a.blocks();
        for (int b = 0; b < blocks.length; b++) {
          long rows = Math.min(bt, a.tokens() - (long) b * bt);
          MemorySegment.copy(k, (long) b * bt * rowBytes, keys, (long) blocks[b] * bt * rowBytes,
              rows * rowBytes);
          MemorySegment.copy(v, (long) b * bt * rowBytes, values, (long) blocks[b] * bt * rowBytes,
              rows * rowBytes);
        }
      }
      cache.complete(a);
    }
  }

  private static int itemOf(BatchTables t, int c) {
    int i = 0;
    while (i + 1 < t.items && t.centBase[i + 1] <= c) {
      i++;
    }
    return i;
  }

  /** Copies admitted clusters' rows from the pool into their blocks, then completes them. */
  void fill(BatchTables t, List<Admission> admissions, MemorySegment clusterK, MemorySegment clusterV) {
    GatherPlan plan = new GatherPlan(1 << 20);
    ExecutionAssembler.fillPlan(t, admissions, cache.blockTokens(), plan);
    KernelEmulator.gather(plan, new MemorySegment[] {null, null, clusterK},
        new MemorySegment[] {null, null, clusterV}, keys, values, rowBytes);
    for (Admission a : admissions) {
      cache.complete(a);
    }
  }

  @Override
  public void close() {
    updater.close();
    arena.close();
  }
}
