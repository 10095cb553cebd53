package org.retroinfer.serve;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;

/**
 * The server's housekeeping of the store: which contexts are pinned (never evicted; kept in
 * {@value #PINS_FILE} beside the index, so that pins outlive a restart), when each context was last
 * used, and eviction: after a put, while the store's files take more than the capacity, the least
 * recently used unpinned context of any tenant is deleted and its bytes reclaimed.
 */
final class StoreKeeper {
  static final String PINS_FILE = "serve-pins.txt";

  private final ContextStore store;
  private final long capacityBytes; // 0: unbounded
  private final Path pinsFile;
  private final Set<String> pins = new TreeSet<>();
  private final Map<String, Long> lastUse = new ConcurrentHashMap<>();
  private final ServerMetrics metrics;

  StoreKeeper(ContextStore store, long capacityBytes, ServerMetrics metrics) throws IOException {
    this.store = store;
    this.capacityBytes = capacityBytes;
    this.metrics = metrics;
    this.pinsFile = store.directory().resolve(PINS_FILE);
    if (Files.isRegularFile(pinsFile)) {
      for (String line : Files.readAllLines(pinsFile, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          pins.add(line.strip());
        }
      }
    }
  }

  long capacityBytes() {
    return capacityBytes;
  }

  /** Notes that a request used (reused or stored) a context now. */
  void used(String id) {
    if (id != null) {
      lastUse.put(id, System.currentTimeMillis());
    }
  }

  synchronized boolean pinned(String id) {
    return pins.contains(id);
  }

  synchronized void pin(String id, boolean pin) throws IOException {
    if (pin ? pins.add(id) : pins.remove(id)) {
      writePins();
    }
  }

  /** Forgets a deleted context. */
  synchronized void forget(String id) throws IOException {
    lastUse.remove(id);
    if (pins.remove(id)) {
      writePins();
    }
  }

  private void writePins() throws IOException {
    // a temporary file renamed over the old one: a crash never leaves half a list
    Path tmp = Files.createTempFile(pinsFile.getParent(), PINS_FILE, ".tmp");
    Files.write(tmp, pins, StandardCharsets.UTF_8);
    try {
      Files.move(tmp, pinsFile, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, pinsFile, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /**
   * Evicts least recently used unpinned contexts until the store is within its capacity (or only
   * pinned contexts are left). Returns the evicted ids.
   */
  synchronized List<String> evictToCapacity() throws IOException {
    List<String> evicted = new ArrayList<>();
    if (capacityBytes <= 0 || store.sizeInBytes() <= capacityBytes) {
      return evicted;
    }
    List<ContextInfo> candidates = new ArrayList<>(store.everyTenantsContexts().stream()
        .filter(c -> !pins.contains(c.id())).toList());
    candidates.sort(Comparator.comparingLong(this::lastUsed));
    for (ContextInfo c : candidates) {
      if (store.sizeInBytes() <= capacityBytes) {
        break;
      }
      if (store.evict(c.id())) {
        evicted.add(c.id());
        lastUse.remove(c.id());
        metrics.evictions.inc();
        store.reclaimDeleted();
      }
    }
    return evicted;
  }

  private long lastUsed(ContextInfo c) {
    return lastUse.getOrDefault(c.id(), c.created().toEpochMilli());
  }
}
