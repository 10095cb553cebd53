package org.retroinfer.gpu.buffer;

import java.util.Arrays;

/**
 * Recency order over integer ids {@code [0, capacity)}: an intrusive doubly-linked list in two int
 * arrays, so that touching, adding, removing and finding the least recently used id are O(1) and
 * allocate nothing. Not thread-safe (the {@link BlockCache} that owns it locks).
 */
public final class LruList {
  private static final int NONE = -1;
  private final int[] prev;
  private final int[] next;
  private final boolean[] linked;
  private int head = NONE; // most recent
  private int tail = NONE; // least recent
  private int size;

  public LruList(int capacity) {
    if (capacity < 0) {
      throw new IllegalArgumentException("LRU capacity must be >= 0, got " + capacity);
    }
    prev = new int[capacity];
    next = new int[capacity];
    linked = new boolean[capacity];
    Arrays.fill(prev, NONE);
    Arrays.fill(next, NONE);
  }

  public int size() {
    return size;
  }

  public boolean contains(int id) {
    return linked[check(id)];
  }

  /** Makes {@code id} the most recently used, adding it if absent. */
  public void touch(int id) {
    if (linked[check(id)]) {
      if (head == id) {
        return;
      }
      unlink(id);
    }
    prev[id] = NONE;
    next[id] = head;
    if (head != NONE) {
      prev[head] = id;
    }
    head = id;
    if (tail == NONE) {
      tail = id;
    }
    linked[id] = true;
    size++;
  }

  /** Removes {@code id} if present. */
  public void remove(int id) {
    if (linked[check(id)]) {
      unlink(id);
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
    for (int id = head; id != NONE; id = next[id]) {
      out[i++] = id;
    }
    return out;
  }

  private void unlink(int id) {
    int p = prev[id];
    int n = next[id];
    if (p != NONE) {
      next[p] = n;
    } else {
      head = n;
    }
    if (n != NONE) {
      prev[n] = p;
    } else {
      tail = p;
    }
    prev[id] = NONE;
    next[id] = NONE;
    linked[id] = false;
    size--;
  }

  private int check(int id) {
    if (id < 0 || id >= linked.length) {
      throw new IndexOutOfBoundsException("id " + id + " outside the LRU's range [0, " + linked.length
          + ")");
    }
    return id;
  }
}
