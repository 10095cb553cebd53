package org.retroinfer.gpu.buffer;

import java.lang.foreign.MemorySegment;

/**
 * Where the wave buffer reads a retrieved cluster that its block cache does not hold (a miss), and
 * the rows it admits into the cache: the host tier below the GPU. gpu-attention defines it; the
 * application gives it one (the CPU tier of a stored context, whose authoritative copy is the
 * store's files), so this module never depends on the store.
 *
 * <p>Clusters are named as the batch names them: item (one KV head of the batch) and the item's
 * local cluster id. Called from the decode thread and the cache's fill path; implementations are
 * thread-safe.
 */
public interface ClusterSource {

  /**
   * Copies cluster {@code cluster} of item {@code item} (its {@code rows} rows, cluster-contiguous,
   * in the batch's K/V type) to {@code keys} at byte {@code keysAt} and {@code values} at byte
   * {@code valuesAt}.
   *
   * @throws IllegalStateException if the cluster cannot be read (the message says why)
   */
  void read(int item, int cluster, int rows, MemorySegment keys, long keysAt, MemorySegment values,
      long valuesAt);
}
