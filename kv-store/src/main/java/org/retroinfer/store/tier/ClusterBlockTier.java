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
import net.openhft.chronicle.map.ChronicleMapBuilder;
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
 * <p>The tier is a cache: the authoritative copy of every block is the context store's files
 * (checksummed, read in place from their mapped memory); a block missing from the tier is read
 * from there and put here.
 *
 * <p>Guarantees:
 * <ul>
 *   <li>The bytes held ({@link #bytes()}, the blocks' K/V bytes) never exceed {@link
 *       #byteBudget()} (less than the capacity: the file holds keys and bookkeeping too): a put
 *       evicts least recently used blocks (a get or a put is a use) until the
 *       new block fits (also when the map's own slots run out first); a block larger than the whole
 *       capacity is refused.
 *   <li>The file never exceeds the capacity either: the map is sized from it when the file is
 *       created (and a file found larger, made with another capacity, is replaced: it is a cache).
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

  /**
   * Bytes of the header before a block's rows: the put stamp, the key bytes' length, and the
   * owner's tag (e.g. 64 bits of the stored context's id), which a get must present.
   */
  private static final int HEADER = Long.BYTES + Integer.BYTES + Long.BYTES;

  private final Path file;
  private final long capacity;
  /** K/V bytes held at most: what the map was sized for, within the file's capacity. */
  private final long budget;
  private final boolean temporary;
  private final ChronicleMap<BlockKey, byte[]> map;
  /** Access order, eldest first: block -> its K/V bytes. */
  private final LinkedHashMap<BlockKey, Integer> lru = new LinkedHashMap<>(16, 0.75f, true);
  private long bytes;
  private long stamp;
  private long hits;
  private long misses;
  private long evictions;

  private ClusterBlockTier(Path file, long capacity, ChronicleMap<BlockKey, byte[]> map,
      boolean temporary) {
    this.file = file;
    this.capacity = capacity;
    this.budget = budgetOf(capacity);
    this.temporary = temporary;
    this.map = map;
    List<long[]> order = new ArrayList<>();
    List<BlockKey> keys = new ArrayList<>();
    map.forEach((k, v) -> {
      ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
      if (v.length < HEADER || b.getInt(Long.BYTES) < 0 || b.getInt(Long.BYTES) > v.length - HEADER) {
        throw new IllegalStateException("tier file " + file + " holds a block in another format");
      }
      order.add(new long[] {b.getLong(0), keys.size(), v.length - HEADER});
      keys.add(k);
    });
    order.sort((a, b) -> Long.compare(a[0], b[0]));
    for (long[] o : order) {
      lru.put(keys.get((int) o[1]), (int) o[2]);
      bytes += o[2];
      stamp = Math.max(stamp, o[0] + 1);
    }
    while (bytes > budget) { // reopened with less capacity than it was filled with
      evictEldest();
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
    return open(file, capacityBytes, averageBlockBytes, false);
  }

  /**
   * A tier in a new temporary file, deleted when the tier is closed (for a process that does not
   * keep its tier for the next one).
   */
  public static ClusterBlockTier openTemporary(long capacityBytes, int averageBlockBytes)
      throws IOException {
    Path f = Files.createTempFile("retroinfer-tier-", ".cm3");
    Files.delete(f); // Chronicle creates it
    return open(f, capacityBytes, averageBlockBytes, true);
  }

  private static ClusterBlockTier open(Path file, long capacityBytes, int averageBlockBytes,
      boolean temporary) throws IOException {
    if (capacityBytes <= 0 || averageBlockBytes <= 0) {
      throw new IllegalArgumentException("capacity (" + capacityBytes + " bytes) and average block"
          + " size (" + averageBlockBytes + " bytes) must be positive");
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    if (Files.exists(file) && Files.size(file) > capacityBytes) {
      // made for a larger capacity: a cache, so it is replaced rather than let exceed this one
      Files.delete(file);
    }
    if (Files.exists(file)) {
      // An existing file keeps the sizing it was created with; recovery also repairs a file whose
      // process was killed while it held it.
      ChronicleMap<BlockKey, byte[]> map = builder(averageBlockBytes, 1).recoverPersistedTo(
          file.toFile(), false);
      try {
        return new ClusterBlockTier(file, capacityBytes, map, temporary);
      } catch (IllegalStateException other) { // written by another version: a cache, replaced
        map.close();
        Files.delete(file);
        return open(file, capacityBytes, averageBlockBytes, temporary);
      }
    }
    // Entries sized so that the file fits the capacity: each entry costs its value, its key and
    // the map's own bookkeeping, and Chronicle Map may add one more tier of segments as blocks
    // fill it (measured: the file doubles), so a new file takes at most half the capacity; if it
    // still comes out larger, fewer entries.
    long budget = capacityBytes / 2;
    long entries = Math.max(16, budget / (averageBlockBytes + HEADER + 64));
    for (int attempt = 0; ; attempt++) {
      ChronicleMap<BlockKey, byte[]> map = builder(averageBlockBytes, entries)
          .createPersistedTo(file.toFile());
      long size = Files.size(file);
      if (size <= budget) {
        return new ClusterBlockTier(file, capacityBytes, map, temporary);
      }
      map.close();
      Files.delete(file);
      if (attempt == 4 || entries <= 16) {
        throw new IllegalArgumentException("a tier file of " + capacityBytes + " bytes is too small"
            + " for the map's fixed overhead (the smallest map took " + size + " bytes, and may"
            + " double as it fills); give the tier more capacity (--tier-bytes)");
      }
      entries = Math.max(16, (long) (entries * 0.9 * budget / size));
    }
  }

  /**
   * The K/V bytes a tier of this capacity holds: the file takes at most the capacity; half of it
   * is the map's first tier of segments (the other half is left for the tier Chronicle Map may add
   * as it fills), of which about four fifths hold values and the rest keys and bookkeeping.
   */
  static long budgetOf(long capacity) {
    return capacity / 2 * 4 / 5;
  }

  private static ChronicleMapBuilder<BlockKey, byte[]> builder(int averageBlockBytes, long entries) {
    return ChronicleMap.of(BlockKey.class, byte[].class)
        .name("retroinfer-cluster-blocks")
        .keyMarshaller(BlockKey.Marshaller.INSTANCE)
        .constantKeySizeBySample(new BlockKey(0, 0, 0, 0))
        .averageValueSize(averageBlockBytes + HEADER)
        .entries(entries)
        .maxBloatFactor(1.0);
  }

  public Path file() {
    return file;
  }

  public synchronized long capacityBytes() {
    return capacity;
  }

  /** The most K/V bytes held at once (the file itself stays within {@link #capacityBytes()}). */
  public synchronized long byteBudget() {
    return budget;
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
    put(key, 0, keyBytes, valueBytes);
  }

  /** {@link #put(BlockKey, byte[], byte[])} with the owner's {@code tag}, which a get must give. */
  public synchronized void put(BlockKey key, long tag, byte[] keyBytes, byte[] valueBytes) {
    Objects.requireNonNull(key, "key");
    long size = (long) keyBytes.length + valueBytes.length;
    if (size > budget) {
      throw new IllegalArgumentException("block " + key + " of " + size + " bytes is larger than"
          + " what the tier holds (" + budget + " bytes of K/V in a file of at most " + capacity
          + " bytes); give the tier more capacity");
    }
    Integer old = lru.remove(key);
    if (old != null) {
      bytes -= old;
    }
    while (bytes + size > budget) {
      evictEldest();
    }
    ByteBuffer b = ByteBuffer.allocate(HEADER + (int) size).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(stamp++).putInt(keyBytes.length).putLong(tag).put(keyBytes).put(valueBytes);
    while (true) {
      try {
        map.put(key, b.array());
        break;
      } catch (IllegalStateException full) {
        // the map's slots ran out before the byte capacity (blocks smaller than the average):
        // make room the same way, least recently used first
        if (lru.isEmpty()) {
          throw new IllegalStateException("the tier file " + file + " cannot hold a block of "
              + size + " bytes even when empty; give the tier more capacity", full);
        }
        evictEldest();
      }
    }
    lru.put(key, (int) size);
    bytes += size;
  }

  private void evictEldest() {
    Iterator<Map.Entry<BlockKey, Integer>> eldest = lru.entrySet().iterator();
    Map.Entry<BlockKey, Integer> e = eldest.next();
    map.remove(e.getKey());
    bytes -= e.getValue();
    eldest.remove();
    evictions++;
  }

  /** A block's key and value bytes, or null if it is not held (a use on a hit). */
  public synchronized Block get(BlockKey key) {
    return get(key, 0);
  }

  /**
   * A block's key and value bytes, or null if it is not held or was put with another tag (another
   * owner's block under the same key: it is never served).
   */
  public synchronized Block get(BlockKey key, long tag) {
    if (lru.get(key) == null) {
      misses++;
      return null;
    }
    byte[] v = map.get(key);
    if (v == null) {
      throw new IllegalStateException("block " + key + " is in the recency list but not in the map"
          + " file " + file + "; another process changed the file: one process per tier file");
    }
    ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
    if (b.getLong(Long.BYTES + Integer.BYTES) != tag) {
      misses++;
      return null;
    }
    hits++;
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

  /** Closes the map; a temporary tier's file is deleted, any other one is kept for reuse. */
  @Override
  public synchronized void close() {
    map.close();
    if (temporary) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("cannot delete the temporary tier file " + file
            + ": " + e.getMessage() + "; delete it by hand", e);
      }
    }
  }
}
