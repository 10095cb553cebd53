package org.retroinfer.store.tier;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import net.openhft.chronicle.map.ChronicleMap;
import org.retroinfer.store.ChronicleSettings;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.WaveIndex;

/**
 * The CPU tier: cluster blocks of live contexts in a Chronicle Map (off-heap, memory-mapped from a
 * file), between the store on disk and the compute that reads them (the GPU wave buffer reads its
 * misses from here). A block is one cluster of one (layer, KV head): its key rows then its value
 * rows, cluster-contiguous, in the context's storage type.
 *
 * <p>Guarantees:
 * <ul>
 *   <li>The bytes held ({@link #bytes()}, the blocks' K/V bytes) never exceed {@link
 *       #capacityBytes()}: a put evicts least recently used blocks (a get or a put is a use) until the
 *       new block fits; a block larger than the whole capacity is refused.
 *   <li>{@link #get} returns exactly the bytes that were put, or null.
 *   <li>The file outlives the process: reopening it finds the blocks, in their recency order as of
 *       their last put (reads are not written back, so that a read never writes the file).
 * </ul>
 * One process uses a tier file at a time; its methods are thread-safe.
 */
public final class ClusterBlockTier implements AutoCloseable {
  static {
    ChronicleSettings.apply(); // before the first Chronicle class initialises
  }

  /** Bytes of the header before a block's rows: the put stamp and the key bytes' length. */
  private static final int HEADER = Long.BYTES + Integer.BYTES;

  private final Path file;
  private final long capacity;
  private final ChronicleMap<BlockKey, byte[]> map;
  /** Access order, eldest first: block -> its K/V bytes. */
  private final LinkedHashMap<BlockKey, Integer> lru = new LinkedHashMap<>(16, 0.75f, true);
  private long bytes;
  private long stamp;
  private long hits;
  private long misses;
  private long evictions;

  private ClusterBlockTier(Path file, long capacity, ChronicleMap<BlockKey, byte[]> map) {
    this.file = file;
    this.capacity = capacity;
    this.map = map;
    List<long[]> order = new ArrayList<>();
    List<BlockKey> keys = new ArrayList<>();
    map.forEach((k, v) -> {
      ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
      order.add(new long[] {b.getLong(0), keys.size(), v.length - HEADER});
      keys.add(k);
    });
    order.sort((a, b) -> Long.compare(a[0], b[0]));
    for (long[] o : order) {
      lru.put(keys.get((int) o[1]), (int) o[2]);
      bytes += o[2];
      stamp = Math.max(stamp, o[0] + 1);
    }
  }

  /**
   * Opens (or creates) a tier file.
   *
   * @param capacityBytes the most K/V bytes held at once
   * @param averageBlockBytes the expected size of one block (a cluster's K/V: about tokens per
   *     cluster x 2 x head dim x bytes per element), which sizes the map's slots
   */
  public static ClusterBlockTier open(Path file, long capacityBytes, int averageBlockBytes)
      throws IOException {
    if (capacityBytes <= 0 || averageBlockBytes <= 0) {
      throw new IllegalArgumentException("capacity (" + capacityBytes + " bytes) and average block"
          + " size (" + averageBlockBytes + " bytes) must be positive");
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    // Room for twice the blocks of average size that fit: small clusters must not run out of slots
    // before the byte capacity is reached.
    long entries = Math.max(64, 2 * capacityBytes / averageBlockBytes);
    var builder = ChronicleMap.of(BlockKey.class, byte[].class)
        .name("retroinfer-cluster-blocks")
        .keyMarshaller(BlockKey.Marshaller.INSTANCE)
        .constantKeySizeBySample(new BlockKey(0, 0, 0, 0))
        .averageValueSize(averageBlockBytes + HEADER)
        .entries(entries)
        .maxBloatFactor(4);
    // An existing file keeps the sizing it was created with; recovery also repairs a file whose
    // process was killed while it held it.
    ChronicleMap<BlockKey, byte[]> map = Files.exists(file)
        ? builder.recoverPersistedTo(file.toFile(), false)
        : builder.createPersistedTo(file.toFile());
    return new ClusterBlockTier(file, capacityBytes, map);
  }

  public Path file() {
    return file;
  }

  public synchronized long capacityBytes() {
    return capacity;
  }

  /** K/V bytes held now. */
  public synchronized long bytes() {
    return bytes;
  }

  public synchronized int blocks() {
    return lru.size();
  }

  public synchronized long hits() {
    return hits;
  }

  public synchronized long misses() {
    return misses;
  }

  public synchronized long evictions() {
    return evictions;
  }

  /** Whether the block is held (not a use). */
  public synchronized boolean contains(BlockKey key) {
    return lru.containsKey(key);
  }

  /** Blocks from least to most recently used (a copy). */
  public synchronized List<BlockKey> recencyOrder() {
    return new ArrayList<>(lru.keySet());
  }

  /**
   * Puts a block: {@code keyBytes} then {@code valueBytes}, evicting least recently used blocks
   * until it fits.
   *
   * @throws IllegalArgumentException if the block alone is larger than the capacity
   */
  public synchronized void put(BlockKey key, byte[] keyBytes, byte[] valueBytes) {
    Objects.requireNonNull(key, "key");
    long size = (long) keyBytes.length + valueBytes.length;
    if (size > capacity) {
      throw new IllegalArgumentException("block " + key + " of " + size + " bytes is larger than the"
          + " tier's whole capacity of " + capacity + " bytes; give the tier more capacity");
    }
    Integer old = lru.remove(key);
    if (old != null) {
      bytes -= old;
    }
    Iterator<Map.Entry<BlockKey, Integer>> eldest = lru.entrySet().iterator();
    while (bytes + size > capacity) {
      Map.Entry<BlockKey, Integer> e = eldest.next();
      map.remove(e.getKey());
      bytes -= e.getValue();
      eldest.remove();
      evictions++;
    }
    ByteBuffer b = ByteBuffer.allocate(HEADER + (int) size).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(stamp++).putInt(keyBytes.length).put(keyBytes).put(valueBytes);
    map.put(key, b.array());
    lru.put(key, (int) size);
    bytes += size;
  }

  /** A block's key and value bytes, or null if it is not held (a use on a hit). */
  public synchronized Block get(BlockKey key) {
    if (lru.get(key) == null) {
      misses++;
      return null;
    }
    byte[] v = map.get(key);
    if (v == null) {
      throw new IllegalStateException("block " + key + " is in the recency list but not in the map"
          + " file " + file + "; another process changed the file: one process per tier file");
    }
    hits++;
    ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
    int kLen = b.getInt(Long.BYTES);
    byte[] k = new byte[kLen];
    byte[] val = new byte[v.length - HEADER - kLen];
    System.arraycopy(v, HEADER, k, 0, kLen);
    System.arraycopy(v, HEADER + kLen, val, 0, val.length);
    return new Block(k, val);
  }

  /** A cluster's rows: keys then values, each in the context's storage type, little-endian. */
  public record Block(byte[] keys, byte[] values) {}

  /**
   * Puts every cluster of every (layer, KV head) of a wave context, as block keys
   * {@code (contextSlot, layer, head, cluster)}; heads that are not wave caches are skipped.
   * Returns the blocks put. With less capacity than the context, the last ones put stay.
   */
  public int warm(int contextSlot, ContextCache cache) {
    int put = 0;
    for (int l = 0; l < cache.shape().layers(); l++) {
      for (int h = 0; h < cache.shape().kvHeads(); h++) {
        HeadCache head = cache.head(l, h);
        if (!HeadLayout.isWave(head)) {
          continue;
        }
        WaveIndex index = HeadLayout.of(head).index();
        for (int c = 0; c < index.clusterCount(); c++) {
          int from = index.clusterStart(c);
          int to = index.clusterStart(c + 1);
          put(new BlockKey(contextSlot, l, h, c), bytesOf(index.keys().rows(from, to)),
              bytesOf(index.values().rows(from, to)));
          put++;
        }
      }
    }
    return put;
  }

  private static byte[] bytesOf(MemorySegment s) {
    return s.toArray(ValueLayout.JAVA_BYTE);
  }

  @Override
  public synchronized void close() {
    map.close();
  }
}
