package org.retroinfer.gpu.layout;

/** The shapes the GPU kernels support. */
public final class Shapes {
  private Shapes() {}

  /** Throws unless head dim is a multiple of 16 in [16, 256] and the group has 1..8 heads. */
  public static void check(int dim, int groupSize) {
    BatchTables.checkShape(dim, groupSize);
  }

  /** Whether the kernels support this shape. */
  public static boolean supported(int dim, int groupSize) {
    return dim > 0 && dim % 16 == 0 && dim <= 256 && groupSize >= 1 && groupSize <= 8;
  }
}
