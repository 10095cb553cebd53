package org.retroinfer.gpu.buffer;

/**
 * The fixed-size blocks of the block cache: {@code blocks} slots of {@code blockTokens} tokens
 * each, handed out and taken back through a free stack. Block {@code b} holds tokens
 * {@code [b * blockTokens, (b + 1) * blockTokens)} of the cache's device pool. Not thread-safe.
 */
public final class BlockAllocator {
  private final int blockTokens;
  private final int[] free;
  private final boolean[] used;
  private int freeCount;

  public BlockAllocator(int blocks, int blockTokens) {
    if (blocks < 0 || blockTokens <= 0) {
      throw new IllegalArgumentException("block cache needs blocks >= 0 and blockTokens > 0, got "
          + blocks + " blocks of " + blockTokens + " tokens");
    }
    this.blockTokens = blockTokens;
    this.free = new int[blocks];
    this.used = new boolean[blocks];
    // lowest block ids first, so that a fresh cache fills its pool from the front
    for (int i = 0; i < blocks; i++) {
      free[i] = blocks - 1 - i;
    }
    freeCount = blocks;
  }

  public int blocks() {
    return free.length;
  }

  public int blockTokens() {
    return blockTokens;
  }

  public int freeBlocks() {
    return freeCount;
  }

  /** Blocks needed for {@code tokens} tokens. */
  public int blocksFor(int tokens) {
    return (tokens + blockTokens - 1) / blockTokens;
  }

  /** {@code n} free blocks, or null (nothing taken) when fewer are free. */
  public int[] allocate(int n) {
    if (n > freeCount) {
      return null;
    }
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      int b = free[--freeCount];
      used[b] = true;
      out[i] = b;
    }
    return out;
  }

  /**
   * Returns blocks to the free stack; a block that is not in use is a bug and rejected. They go
   * back last first, so that the next allocation of as many blocks takes them in the same order (a
   * cluster in consecutive blocks leaves them to the next one, whose copy stays one task).
   */
  public void release(int[] blocks) {
    for (int i = blocks.length - 1; i >= 0; i--) {
      int b = blocks[i];
      if (b < 0 || b >= used.length || !used[b]) {
        throw new IllegalStateException("block " + b + " released but not in use (pool of "
            + used.length + " blocks): the mapping table and the allocator disagree");
      }
      used[b] = false;
      free[freeCount++] = b;
    }
  }
}
