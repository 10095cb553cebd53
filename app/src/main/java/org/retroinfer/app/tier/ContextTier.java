package org.retroinfer.app.tier;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.LongAdder;
import org.retroinfer.gpu.buffer.ClusterSource;
import org.retroinfer.store.tier.BlockKey;
import org.retroinfer.store.tier.ClusterBlockTier;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The CPU tier on the decode path of one layer of an opened context: the wave buffer's misses (and
 * the block cache's fills) read a cluster from the Chronicle Map tier when it holds it, and
 * otherwise from the context's rows in the store's files (read in place from their mapped memory),
 * putting it into the tier on the way, least recently used blocks making room.
 *
 * <p>Which copy is authoritative: the store's files, checksummed when the context was opened. The
 * tier is a cache of them that outlives the process (a later process reopens the file and finds
 * the blocks); a block is served only to the context that put it (its tag is 64 bits of the
 * context id), and a block larger than the whole tier is read from the files every time.
 *
 * <p>Items are the layer's KV heads, in order, as in the layer's GPU batch.
 */
public final class ContextTier implements ClusterSource {
  private final ClusterBlockTier tier;
  private final int slot;
  private final long tag;
  private final int layer;
  private final HeadLayout[] heads;
  private final LongAdder fromFiles = new LongAdder();
  private final LongAdder fromTier = new LongAdder();

  private ContextTier(ClusterBlockTier tier, String contextId, int layer, HeadLayout[] heads) {
    this.tier = tier;
    byte[] h;
    try {
      h = java.security.MessageDigest.getInstance("SHA-256")
          .digest(contextId.getBytes(StandardCharsets.UTF_8));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM has no SHA-256, which every JVM must have", e);
    }
    this.slot = ((h[0] & 0x7F) << 24) | ((h[1] & 0xFF) << 16) | ((h[2] & 0xFF) << 8) | (h[3] & 0xFF);
    long t = 0;
    for (int i = 4; i < 12; i++) {
      t = (t << 8) | (h[i] & 0xFF);
    }
    this.tag = t;
    this.layer = layer;
    this.heads = heads;
  }

  /** The tier of layer {@code layer} of {@code context} (a wave context, e.g. opened from a store). */
  public static ContextTier forLayer(ClusterBlockTier tier, String contextId, ContextCache context,
      int layer) {
    HeadLayout[] heads = new HeadLayout[context.shape().kvHeads()];
    for (int h = 0; h < heads.length; h++) {
      heads[h] = HeadLayout.of(context.head(layer, h));
    }
    return new ContextTier(tier, contextId, layer, heads);
  }

  @Override
  public void read(int item, int cluster, int rows, MemorySegment keys, long keysAt,
      MemorySegment values, long valuesAt) {
    WaveIndex index = heads[item].index();
    int from = index.clusterStart(cluster);
    int to = index.clusterStart(cluster + 1);
    if (to - from != rows) {
      throw new IllegalStateException("layer " + layer + ", KV head " + item + ", cluster "
          + cluster + " has " + (to - from) + " rows, the wave buffer asked for " + rows
          + ": the batch was built from another state of the context");
    }
    BlockKey key = new BlockKey(slot, layer, item, cluster);
    ClusterBlockTier.Block b = tier.get(key, tag);
    VectorStore k = index.keys();
    VectorStore v = index.values();
    long bytes = rows * k.rowBytes();
    if (b != null && b.keys().length == bytes && b.values().length == bytes) {
      MemorySegment.copy(MemorySegment.ofArray(b.keys()), 0, keys, keysAt, bytes);
      MemorySegment.copy(MemorySegment.ofArray(b.values()), 0, values, valuesAt, bytes);
      fromTier.increment();
      return;
    }
    MemorySegment kr = k.rows(from, to);
    MemorySegment vr = v.rows(from, to);
    MemorySegment.copy(kr, 0, keys, keysAt, bytes);
    MemorySegment.copy(vr, 0, values, valuesAt, bytes);
    fromFiles.increment();
    if (2 * bytes <= tier.capacityBytes()) {
      tier.put(key, tag, kr.toArray(ValueLayout.JAVA_BYTE), vr.toArray(ValueLayout.JAVA_BYTE));
    }
  }

  /** Clusters this source read from the store's files (tier misses). */
  public long readsFromFiles() {
    return fromFiles.sum();
  }

  /** Clusters this source read from the tier (tier hits). */
  public long readsFromTier() {
    return fromTier.sum();
  }
}
