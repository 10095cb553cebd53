package org.retroinfer.store;

import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Reading a {@link WaveHeadCache} by token position, and cutting it to a prefix. A wave cache keeps
 * its indexed tokens cluster-contiguous; these helpers map positions back to rows.
 */
public final class HeadSlices {
  private HeadSlices() {}

  /** For every indexed token (position minus the sink count), its row in the index's stores. */
  public static int[] indexRowOfPosition(WaveHeadCache head) {
    WaveIndex index = head.index();
    int base = head.sinkKeys().size();
    int[] rows = new int[index.tokenCount()];
    for (int r = 0; r < rows.length; r++) {
      rows[index.position(r) - base] = r;
    }
    return rows;
  }

  /**
   * Copies the keys and values of positions {@code [from, to)} as float32 into
   * {@code keys/values[off + (p - from) * stride ..]} (one head's {@code dim} floats per token).
   */
  public static void read(WaveHeadCache head, int[] rowOfPosition, int from, int to, float[] keys,
      float[] values, int off, int stride) {
    if (from < 0 || to > head.size() || from > to) {
      throw new IndexOutOfBoundsException("positions [" + from + ", " + to + ") outside [0, "
          + head.size() + ")");
    }
    int sinks = head.sinkKeys().size();
    int tailStart = head.tailStart();
    WaveIndex index = head.index();
    for (int p = from; p < to; p++) {
      int at = off + (p - from) * stride;
      if (p < sinks) {
        head.sinkKeys().read(p, keys, at);
        head.sinkValues().read(p, values, at);
      } else if (p < tailStart) {
        int row = rowOfPosition[p - sinks];
        index.keys().read(row, keys, at);
        index.values().read(row, values, at);
      } else {
        head.tailKeys().read(p - tailStart, keys, at);
        head.tailValues().read(p - tailStart, values, at);
      }
    }
  }

  /**
   * A new cache holding the first {@code tokens} tokens of {@code head}: the sinks, every wave
   * segment that lies wholly inside the prefix (clusters, centroids and value sums kept as they are,
   * no re-clustering), and the rest of the prefix (the cut segment's tokens inside the prefix, then
   * tail tokens) as its tail, in position order. The result has not ended its prefill: appending more
   * prompt tokens and calling {@code endPrefill()} clusters the tail anew (the cut segment is rebuilt).
   * Stored rows are copied as bytes; {@code head} is left unchanged.
   */
  public static WaveHeadCache prefix(WaveHeadCache head, int tokens, WaveConfig config) {
    if (tokens < 0 || tokens > head.size()) {
      throw new IllegalArgumentException("cannot cut a prefix of " + tokens + " tokens from a context"
          + " of " + head.size());
    }
    int dim = head.headDim();
    var type = head.index().kvType();
    int sinks = head.sinkKeys().size();
    int tailStart = head.tailStart();
    WaveIndex src = head.index();
    VectorStore sinkK = VectorStore.allocate(dim, type, Math.max(1, config.sinkTokens()));
    VectorStore sinkV = VectorStore.allocate(dim, type, Math.max(1, config.sinkTokens()));
    WaveIndex index = WaveIndex.empty(dim, type);
    VectorStore tailK = VectorStore.allocate(dim, type, 4096);
    VectorStore tailV = VectorStore.allocate(dim, type, 4096);
    try {
      int keptSinks = Math.min(tokens, sinks);
      if (keptSinks > 0) {
        sinkK.appendFrom(head.sinkKeys(), 0, keptSinks);
        sinkV.appendFrom(head.sinkValues(), 0, keptSinks);
      }
      int next = keptSinks;
      for (int s = 0; s < src.segmentCount(); s++) {
        int end = src.segmentFirstPosition(s) + src.segmentTokens(s);
        if (end > tokens) {
          break;
        }
        int row0 = src.clusterStart(src.segmentFirstCluster(s));
        index.addClusteredSegment(src.segment(s), src.keys(), src.values(), row0);
        next = end;
      }
      if (index.segmentCount() > 0 && src.keyCentre() != null) {
        // kept segments were centred on the stored context's mean key; the rebuilt ones follow it
        index.setKeyCentre(src.keyCentre());
      }
      int[] rowOf = next < Math.min(tokens, tailStart) ? indexRowOfPosition(head) : null;
      for (int p = next; p < tokens; p++) {
        if (p < tailStart) {
          int row = rowOf[p - sinks];
          tailK.appendFrom(src.keys(), row, row + 1);
          tailV.appendFrom(src.values(), row, row + 1);
        } else {
          tailK.appendFrom(head.tailKeys(), p - tailStart, p - tailStart + 1);
          tailV.appendFrom(head.tailValues(), p - tailStart, p - tailStart + 1);
        }
      }
      return WaveHeadCache.restore(config, head.groupSize(), sinkK, sinkV, index, tailK, tailV,
          false);
    } catch (RuntimeException e) {
      sinkK.close();
      sinkV.close();
      index.close();
      tailK.close();
      tailV.close();
      throw e;
    }
  }
}
