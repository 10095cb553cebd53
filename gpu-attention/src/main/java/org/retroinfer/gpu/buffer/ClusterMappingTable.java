package org.retroinfer.gpu.buffer;

import java.util.Arrays;

/**
 * Cluster id -> where the cluster is in the block cache: absent, pending (blocks assigned, the copy
 * into them not yet known to be complete) or resident (its rows are in its blocks, in order: row
 * {@code i} of the cluster is token {@code i % blockTokens} of block {@code blocks[i / blockTokens]}).
 * Only resident clusters are hits. Not thread-safe (the {@link BlockCache} that owns it locks).
 *
 * <p>Flat arrays, so that the per-step lookup of every retrieved cluster reads one cache line per
 * cluster and allocates nothing: a cluster's two-long slot holds its state, its block count, its
 * first three blocks, and whether all its blocks are consecutive ids (then the first locates them
 * all). Every assigned cluster's blocks also form a chain through {@code next[block]} (a block
 * belongs to at most one cluster), which a lookup follows only past the third block.
 */
public final class ClusterMappingTable {
  /** State of a cluster. */
  public enum State {
    ABSENT,
    PENDING,
    RESIDENT
  }

  /** {@code next} of a cluster's last block, and the missing blocks of a slot. */
  static final int NONE = -1;

  // slot word 0 ("meta"): bits 0-31 first block, 32-33 kind, 34-63 block count;
  // slot word 1 ("more"): bits 32-63 the second block, 0-31 the third (NONE when fewer)
  private static final int ABSENT = 0;
  private static final int PENDING = 1;
  /** Resident in consecutive blocks {@code first, first + 1, ...}. */
  static final int RUN = 2;
  /** Resident in blocks that are not consecutive. */
  static final int SCATTERED = 3;
  private static final int MAX_BLOCKS_PER_CLUSTER = (1 << 29) - 1;

  private final int clusters;
  private final long[] slots;
  private final long[] generation;
  private int[] next;
  private int resident;

  /** A table for clusters {@code [0, clusters)} and blocks that it learns as they are assigned. */
  public ClusterMappingTable(int clusters) {
    this(clusters, 0);
  }

  /** A table for clusters {@code [0, clusters)} and blocks {@code [0, blocks)}. */
  public ClusterMappingTable(int clusters, int blocks) {
    if (clusters < 0 || blocks < 0) {
      throw new IllegalArgumentException("cluster and block counts must be >= 0, got " + clusters
          + " and " + blocks);
    }
    if (clusters > (Integer.MAX_VALUE - 8) / 2) {
      throw new IllegalArgumentException(clusters + " clusters exceed the mapping table's "
          + (Integer.MAX_VALUE - 8) / 2 + "; split the batch");
    }
    this.clusters = clusters;
    slots = new long[2 * clusters];
    generation = new long[clusters];
    next = new int[blocks];
  }

  public int clusters() {
    return clusters;
  }

  public State state(int cluster) {
    int k = kind(slots[2 * check(cluster)]);
    return k >= RUN ? State.RESIDENT : k == PENDING ? State.PENDING : State.ABSENT;
  }

  /** The blocks of a resident cluster (a fresh array), else null. */
  public int[] residentBlocks(int cluster) {
    long s = slots[2 * check(cluster)];
    return kind(s) >= RUN ? chain(first(s)) : null;
  }

  /** The blocks assigned to a pending or resident cluster (a fresh array), else null. */
  public int[] assignedBlocks(int cluster) {
    long s = slots[2 * check(cluster)];
    return kind(s) == ABSENT ? null : chain(first(s));
  }

  /** Generation of the cluster's current assignment (changes on every {@link #assign}). */
  public long generation(int cluster) {
    return generation[check(cluster)];
  }

  public int residentCount() {
    return resident;
  }

  /**
   * Word 0 of the slot of {@code cluster}, unchecked beyond the array's own bounds (the hot path
   * of the {@link ExecutionAssembler}): decode it with {@link #kind}, {@link #first} and
   * {@link #count}.
   */
  long meta(int cluster) {
    return slots[2 * cluster];
  }

  /** Word 1 of the slot of {@code cluster}: decode it with {@link #second} and {@link #third}. */
  long more(int cluster) {
    return slots[2 * cluster + 1];
  }

  /** The block after {@code block} in its cluster, or {@link #NONE} after the last. */
  int nextBlock(int block) {
    return next[block];
  }

  /** ABSENT, PENDING, {@link #RUN} or {@link #SCATTERED}. */
  static int kind(long meta) {
    return (int) (meta >>> 32) & 3;
  }

  static int first(long meta) {
    return (int) meta;
  }

  static int count(long meta) {
    return (int) (meta >>> 34);
  }

  static int second(long more) {
    return (int) (more >>> 32);
  }

  static int third(long more) {
    return (int) more;
  }

  private static long meta(int kind, int first, int count) {
    return (long) count << 34 | (long) kind << 32 | (first & 0xffffffffL);
  }

  void assign(int cluster, int[] assigned, long gen) {
    long s = slots[2 * check(cluster)];
    if (kind(s) != ABSENT) {
      throw new IllegalStateException("cluster " + cluster + " is " + state(cluster)
          + "; only an absent cluster can be assigned blocks");
    }
    int n = assigned.length;
    if (n == 0 || n > MAX_BLOCKS_PER_CLUSTER) {
      throw new IllegalArgumentException("cluster " + cluster + " assigned " + n
          + " blocks; expected 1.." + MAX_BLOCKS_PER_CLUSTER);
    }
    int max = 0;
    for (int b : assigned) {
      if (b < 0) {
        throw new IllegalArgumentException("cluster " + cluster + " assigned block " + b);
      }
      max = Math.max(max, b);
    }
    if (max >= next.length) {
      next = Arrays.copyOf(next, (int) Math.min(Integer.MAX_VALUE - 8,
          Math.max(max + 1L, 2L * next.length)));
    }
    for (int i = 0; i < n - 1; i++) {
      next[assigned[i]] = assigned[i + 1];
    }
    next[assigned[n - 1]] = NONE;
    slots[2 * cluster] = meta(PENDING, assigned[0], n);
    slots[2 * cluster + 1] = (long) (n > 1 ? assigned[1] : NONE) << 32
        | ((n > 2 ? assigned[2] : NONE) & 0xffffffffL);
    generation[cluster] = gen;
  }

  void markResident(int cluster) {
    long s = slots[2 * check(cluster)];
    if (kind(s) != PENDING) {
      throw new IllegalStateException("cluster " + cluster + " is " + state(cluster)
          + "; only a pending cluster becomes resident");
    }
    int b = first(s);
    boolean run = true;
    for (int n = next[b]; n != NONE; n = next[n]) {
      run &= n == b + 1;
      b = n;
    }
    slots[2 * cluster] = meta(run ? RUN : SCATTERED, first(s), count(s));
    resident++;
  }

  /** Forgets the cluster's blocks; returns them (null if it had none). */
  int[] clear(int cluster) {
    long s = slots[2 * check(cluster)];
    int k = kind(s);
    if (k == ABSENT) {
      return null;
    }
    if (k >= RUN) {
      resident--;
    }
    slots[2 * cluster] = 0;
    slots[2 * cluster + 1] = 0;
    return chain(first(s));
  }

  private int[] chain(int first) {
    int n = 0;
    for (int b = first; b != NONE; b = next[b]) {
      n++;
    }
    int[] out = new int[n];
    n = 0;
    for (int b = first; b != NONE; b = next[b]) {
      out[n++] = b;
    }
    return out;
  }

  private int check(int cluster) {
    if (cluster < 0 || cluster >= clusters) {
      throw new IndexOutOfBoundsException("cluster " + cluster + " outside the mapping table's [0, "
          + clusters + ")");
    }
    return cluster;
  }
}
