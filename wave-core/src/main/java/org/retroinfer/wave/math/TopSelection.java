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
   * (in no particular order). Allocates its scratch; see
   * {@link #selectLargest(long[], int, int, int, long[])} for hot paths.
   */
  public static void selectLargest(long[] a, int lo, int hi, int k) {
    if (k > 0 && k < hi - lo) {
      selectLargest(a, lo, hi, k, new long[hi - lo]);
    }
  }

  /**
   * Reorders {@code a[lo, hi)} so that its {@code k} largest keys occupy {@code a[lo, lo + k)}
   * (in no particular order), using {@code scratch} (at least {@code hi - lo} longs). A quickselect
   * whose partition pass copies every key to one of two places and advances both places' ends by
   * the compare's result, with no data-dependent branch: an in-place partition mispredicted about
   * every other compare on ranking scores (measured: 10.7 us against 3.75 us to pick 301 and then
   * 64 of 1,020 cluster scores, the ranking of one head at 16K; 86 us against 28 us for 2,048 and
   * then 148 of 8,192, at 128K).
   */
  public static void selectLargest(long[] a, int lo, int hi, int k, long[] scratch) {
    if (k <= 0 || k >= hi - lo) {
      return;
    }
    if (scratch.length < hi - lo) {
      throw new IllegalArgumentException("scratch of " + scratch.length + " longs for "
          + (hi - lo) + " keys");
    }
    int target = lo + k; // a[lo, target) must end up holding the k largest
    int l = lo; // a[lo, l) are known to be among them
    int r = hi; // a[r, hi) are known not to be
    while (r - l > SMALL) {
      long pivot = medianOfThree(a[l], a[(l + r) >>> 1], a[r - 1]);
      int above = l;
      int rest = 0;
      for (int i = l; i < r; i++) {
        long x = a[i];
        a[above] = x; // above <= i: never overwrites a key not yet read
        scratch[rest] = x;
        int up = x > pivot ? 1 : 0;
        above += up;
        rest += 1 - up;
      }
      System.arraycopy(scratch, 0, a, above, rest); // keys <= pivot, the pivot among them
      if (above > target) {
        r = above; // more than needed above the pivot: the boundary is among them
      } else if (above == target) {
        return;
      } else {
        // every key above the pivot is in, and so is the pivot, the largest of the rest
        int at = above;
        while (a[at] != pivot) {
          at++;
        }
        a[at] = a[above];
        a[above] = pivot;
        l = above + 1;
        if (l == target) {
          return;
        }
      }
    }
    for (int i = l; i < target; i++) { // a few keys left: pick the largest, one at a time
      int best = i;
      for (int j = i + 1; j < r; j++) {
        if (a[j] > a[best]) {
          best = j;
        }
      }
      long t = a[i];
      a[i] = a[best];
      a[best] = t;
    }
  }

  /**
   * Reorders {@code a[lo, hi)} so that, for the returned {@code k}, {@code a[lo, lo + k)} holds its
   * {@code k} largest keys (in no particular order), with {@code k} the smallest count whose scores
   * ({@link #score}) sum to at least {@code target}; all of them ({@code hi - lo}) if even their sum
   * falls short, and 0 if {@code target <= 0}. The same partition as {@link #selectLargest}, which
   * also sums the scores it moves above the pivot: linear expected time, no sort.
   */
  public static int selectMass(long[] a, int lo, int hi, double target, long[] scratch) {
    return selectMass(a, lo, hi, target, null, scratch);
  }

  /**
   * Like {@link #selectMass(long[], int, int, double, long[])}, ordering by the keys but summing
   * {@code weights[id]} ({@link #id}) instead of the scores; null weights sum the scores.
   */
  public static int selectMass(long[] a, int lo, int hi, double target, float[] weights,
      long[] scratch) {
    if (!(target > 0) || hi <= lo) {
      return 0;
    }
    if (scratch.length < hi - lo) {
      throw new IllegalArgumentException("scratch of " + scratch.length + " longs for "
          + (hi - lo) + " keys");
    }
    double need = target;
    int l = lo; // a[lo, l) are in, and their scores were taken from need
    int r = hi; // a[r, hi) are out
    while (r - l > SMALL) {
      long pivot = medianOfThree(a[l], a[(l + r) >>> 1], a[r - 1]);
      int above = l;
      int rest = 0;
      for (int i = l; i < r; i++) {
        long x = a[i];
        a[above] = x;
        scratch[rest] = x;
        int up = x > pivot ? 1 : 0;
        above += up;
        rest += 1 - up;
      }
      System.arraycopy(scratch, 0, a, above, rest);
      double sumAbove = sum(a, l, above, weights); // apart: a running sum would chain the loop
      if (sumAbove >= need) {
        r = above; // the keys above the pivot are enough: the answer is among them
        continue;
      }
      need -= sumAbove;
      int at = above; // the pivot is the largest of the rest: it goes in next
      while (a[at] != pivot) {
        at++;
      }
      a[at] = a[above];
      a[above] = pivot;
      l = above + 1;
      need -= weight(pivot, weights);
      if (need <= 0) {
        return l - lo;
      }
    }
    for (int i = l; i < r; i++) { // a few keys left: take the largest, one at a time
      int best = i;
      for (int j = i + 1; j < r; j++) {
        if (a[j] > a[best]) {
          best = j;
        }
      }
      long pick = a[best];
      a[best] = a[i];
      a[i] = pick;
      need -= weight(pick, weights);
      if (need <= 0) {
        return i + 1 - lo;
      }
    }
    return r - lo;
  }

  /** The weights of {@code a[from, to)}, in four independent float running sums (a relative error of about 1e-7 of the total). */
  private static double sum(long[] a, int from, int to, float[] weights) {
    float s0 = 0;
    float s1 = 0;
    float s2 = 0;
    float s3 = 0;
    int i = from;
    for (; i + 3 < to; i += 4) {
      s0 += weight(a[i], weights);
      s1 += weight(a[i + 1], weights);
      s2 += weight(a[i + 2], weights);
      s3 += weight(a[i + 3], weights);
    }
    for (; i < to; i++) {
      s0 += weight(a[i], weights);
    }
    return (double) s0 + s1 + s2 + s3;
  }

  private static float weight(long key, float[] weights) {
    return weights == null ? score(key) : weights[id(key)];
  }

  /** The score packed by {@link #pack}. */
  public static float score(long key) {
    return Float.intBitsToFloat((int) (key >>> 32));
  }

  /** Ranges this short finish by repeated maximum search. */
  private static final int SMALL = 16;

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
