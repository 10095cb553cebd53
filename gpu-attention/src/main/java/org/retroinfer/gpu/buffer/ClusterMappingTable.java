package org.retroinfer.gpu.buffer;

/**
 * Cluster id -> where the cluster is in the block cache: absent, pending (blocks assigned, the copy
 * into them not yet known to be complete) or resident (its rows are in its blocks, in order: row
 * {@code i} of the cluster is token {@code i % blockTokens} of block {@code blocks[i / blockTokens]}).
 * Only resident clusters are hits. Not thread-safe (the {@link BlockCache} that owns it locks).
 */
public final class ClusterMappingTable {
  /** State of a cluster. */
  public enum State {
    ABSENT,
    PENDING,
    RESIDENT
  }

  private final int[][] blocks;
  private final byte[] state;
  private final long[] generation;
  private int resident;

  public ClusterMappingTable(int clusters) {
    if (clusters < 0) {
      throw new IllegalArgumentException("cluster count must be >= 0, got " + clusters);
    }
    blocks = new int[clusters][];
    state = new byte[clusters];
    generation = new long[clusters];
  }

  public int clusters() {
    return blocks.length;
  }

  public State state(int cluster) {
    return State.values()[state[check(cluster)]];
  }

  /** The blocks of a resident cluster, else null. The array is shared: do not modify it. */
  public int[] residentBlocks(int cluster) {
    return state[check(cluster)] == State.RESIDENT.ordinal() ? blocks[cluster] : null;
  }

  /** The blocks assigned to a pending or resident cluster, else null. */
  public int[] assignedBlocks(int cluster) {
    return blocks[check(cluster)];
  }

  /** Generation of the cluster's current assignment (changes on every {@link #assign}). */
  public long generation(int cluster) {
    return generation[check(cluster)];
  }

  public int residentCount() {
    return resident;
  }

  void assign(int cluster, int[] assigned, long gen) {
    if (state[check(cluster)] != State.ABSENT.ordinal()) {
      throw new IllegalStateException("cluster " + cluster + " is " + state(cluster)
          + "; only an absent cluster can be assigned blocks");
    }
    blocks[cluster] = assigned;
    state[cluster] = (byte) State.PENDING.ordinal();
    generation[cluster] = gen;
  }

  void markResident(int cluster) {
    if (state[check(cluster)] != State.PENDING.ordinal()) {
      throw new IllegalStateException("cluster " + cluster + " is " + state(cluster)
          + "; only a pending cluster becomes resident");
    }
    state[cluster] = (byte) State.RESIDENT.ordinal();
    resident++;
  }

  /** Forgets the cluster's blocks; returns them (null if it had none). */
  int[] clear(int cluster) {
    int[] b = blocks[check(cluster)];
    if (state[cluster] == State.RESIDENT.ordinal()) {
      resident--;
    }
    blocks[cluster] = null;
    state[cluster] = (byte) State.ABSENT.ordinal();
    return b;
  }

  private int check(int cluster) {
    if (cluster < 0 || cluster >= blocks.length) {
      throw new IndexOutOfBoundsException("cluster " + cluster + " outside the mapping table's [0, "
          + blocks.length + ")");
    }
    return cluster;
  }
}
