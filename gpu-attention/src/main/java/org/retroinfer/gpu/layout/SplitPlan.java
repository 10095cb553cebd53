package org.retroinfer.gpu.layout;

/**
 * How split-K attention divides rows among thread blocks: {@code splits} blocks per item, each of
 * {@code rowsPerSplit} consecutive rows (the last ones may be short or empty). Enough blocks to fill
 * the GPU without exceeding it ({@code targetBlocks}: the blocks the GPU holds at once), never a
 * split under one tile.
 */
public record SplitPlan(int splits, int rowsPerSplit) {
  /** Rows scored per tile by the kernels. */
  public static final int TILE = 128;

  public static SplitPlan of(int items, int maxRows, int targetBlocks) {
    if (items <= 0 || maxRows < 0 || targetBlocks <= 0) {
      throw new IllegalArgumentException("split plan needs items > 0, rows >= 0, target > 0; got "
          + items + ", " + maxRows + ", " + targetBlocks);
    }
    int maxSplits = Math.max(1, (maxRows + TILE - 1) / TILE);
    // at most targetBlocks blocks in all (rounding up would start a second, mostly idle wave)
    int splits = Math.max(1, Math.min(maxSplits, targetBlocks / items));
    int per = Math.max(1, (maxRows + splits - 1) / splits);
    per = (per + TILE - 1) / TILE * TILE; // whole tiles per block
    splits = Math.max(1, (maxRows + per - 1) / per);
    return new SplitPlan(splits, per);
  }
}
