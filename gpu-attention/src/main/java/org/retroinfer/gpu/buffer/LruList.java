package org.retroinfer.gpu.buffer;

import java.util.Arrays;

/**
 * Recency order over integer ids {@code [0, capacity)}: an intrusive doubly-linked list, so that
 * touching, adding, removing and finding the least recently used id are O(1) and allocate nothing.
 * An id's two links share one long ({@code prev} high, {@code next} low), so a touch reads one
 * cache line per id it relinks. Not thread-safe (the {@link BlockCache} that owns it locks).
 */
public final class LruList {
  private static final int NONE = -1;
  /** {@code prev} of an id that is not in the list. */
  private static final int OUT = -2;
  private static final long UNLINKED = pack(OUT, NONE);
  private final long[] link;
  private int head = NONE; // most recent
  private int tail = NONE; // least recent
  private int size;

  public LruList(int capacity) {
    if (capacity < 0) {
      throw new IllegalArgumentException("LRU capacity must be >= 0, got " + capacity);
    }
    link = new long[capacity];
    Arrays.fill(link, UNLINKED);
  }

  public int size() {
    return size;
  }

  public boolean contains(int id) {
    return prev(link[check(id)]) != OUT;
  }

  /** Makes {@code id} the most recently used, adding it if absent. */
  public void touch(int id) {
    long l = link[check(id)];
    if (prev(l) != OUT) {
      if (head == id) {
        return;
      }
      unlink(id, l);
    }
    int h = head;
    link[id] = pack(NONE, h);
    if (h != NONE) {
      link[h] = pack(id, next(link[h]));
    } else {
      tail = id;
    }
    head = id;
    size++;
  }

  /** Removes {@code id} if present. */
  public void remove(int id) {
    long l = link[check(id)];
    if (prev(l) != OUT) {
      unlink(id, l);
    }
  }

  /** The least recently used id, or -1 when empty. */
  public int leastRecent() {
    return tail;
  }

  /** Ids from most to least recent (for tests and inspection). */
  public int[] toArray() {
    int[] out = new int[size];
    int i = 0;
    for (int id = head; id != NONE; id = next(link[id])) {
      out[i++] = id;
    }
    return out;
  }

  private void unlink(int id, long l) {
    int p = prev(l);
    int n = next(l);
    if (p != NONE) {
      link[p] = pack(prev(link[p]), n);
    } else {
      head = n;
    }
    if (n != NONE) {
      link[n] = pack(p, next(link[n]));
    } else {
      tail = p;
    }
    link[id] = UNLINKED;
    size--;
  }

  private static long pack(int prev, int next) {
    return ((long) prev << 32) | (next & 0xffffffffL);
  }

  private static int prev(long l) {
    return (int) (l >> 32);
  }

  private static int next(long l) {
    return (int) l;
  }

  private int check(int id) {
    if (id < 0 || id >= link.length) {
      throw new IndexOutOfBoundsException("id " + id + " outside the LRU's range [0, " + link.length
          + ")");
    }
    return id;
  }
}
