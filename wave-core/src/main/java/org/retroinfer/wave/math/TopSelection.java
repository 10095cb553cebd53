package org.retroinfer.wave.math;

/**
 * Partial selection of the largest keys in linear expected time (quickselect), used to pick the
 * top-ranked clusters without sorting all of them. Keys are distinct longs; callers pack a score's
 * bits above an id so that ties resolve the same way every time.
 */
public final class TopSelection {
  private TopSelection() {}

  /**
   * Reorders {@code a[lo, hi)} so that its {@code k} largest keys occupy {@code a[lo, lo + k)}
   * (in no particular order).
   */
  public static void selectLargest(long[] a, int lo, int hi, int k) {
    if (k <= 0 || k >= hi - lo) {
      return;
    }
    int target = lo + k - 1; // where the k-th largest must end up
    int l = lo;
    int r = hi - 1;
    while (r > l) {
      long pivot = medianOfThree(a[l], a[(l + r) >>> 1], a[r]);
      int i = l;
      int j = r;
      while (i <= j) {
        while (a[i] > pivot) {
          i++;
        }
        while (a[j] < pivot) {
          j--;
        }
        if (i <= j) {
          long t = a[i];
          a[i] = a[j];
          a[j] = t;
          i++;
          j--;
        }
      }
      if (target <= j) {
        r = j;
      } else if (target >= i) {
        l = i;
      } else {
        return;
      }
    }
  }

  /** Packs a non-negative score and an id into a key: larger score first, then smaller id. */
  public static long pack(float nonNegativeScore, int id) {
    return ((long) Float.floatToRawIntBits(nonNegativeScore) << 32) | (Integer.MAX_VALUE - id);
  }

  /** The id packed by {@link #pack}. */
  public static int id(long key) {
    return Integer.MAX_VALUE - (int) key;
  }

  private static long medianOfThree(long a, long b, long c) {
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
}
