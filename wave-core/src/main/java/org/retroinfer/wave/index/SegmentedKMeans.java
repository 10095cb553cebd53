package org.retroinfer.wave.index;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Spherical k-means over the keys of one segment, as the wave index builds it.
 *
 * <ul>
 *   <li>Keys are centred (the segment's mean key is subtracted) and L2-normalised: queries and keys
 *       are distributed differently, and centring makes inner-product clusters much tighter.
 *   <li>Initial centroids are the keys at evenly spaced positions: deterministic, and post-RoPE keys
 *       have positional locality, so this spreads clusters over the segment.
 *   <li>Each iteration assigns every key to the centroid of largest inner product (a blocked matrix
 *       product, vectorised over centroids) and moves each centroid to the normalised sum of its
 *       members. An emptied cluster keeps its centroid. Ties go to the lower cluster id.
 *   <li>The result keeps, per non-empty cluster, the plain mean of its member keys (not normalised:
 *       the estimation zone needs the mean) and the sum of its member values, both of the stored
 *       (rounded) vectors. Empty clusters are dropped.
 * </ul>
 *
 * <p>The same input gives the same clusters, bit for bit. Thread-safe: no shared state.
 */
public final class SegmentedKMeans {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> I = F.withLanes(int.class);
  private static final int L = F.length();
  private static final IntVector IOTA = IntVector.zero(I).addIndex(1);
  /** Rows per micro-tile of the assignment product. */
  private static final int ROWS = 4;
  /** Centroid columns per micro-tile: four vectors. */
  private static final int COLS = 4 * L;

  private SegmentedKMeans() {}

  /**
   * Clusters rows {@code [from, to)} of {@code keys} (values alongside) into at most {@code clusters}
   * clusters with {@code iterations} refinement steps. Token {@code from + i} has position
   * {@code firstPosition + i}.
   */
  public static ClusteredSegment cluster(VectorStore keys, VectorStore values, int from, int to,
      int firstPosition, int clusters, int iterations) {
    return cluster(keys, values, from, to, firstPosition, clusters, iterations, null);
  }

  /**
   * Like {@link #cluster(VectorStore, VectorStore, int, int, int, int, int)}, centring the keys on
   * {@code centre} (the per-(layer, head) mean key) instead of the segment's own mean; null means
   * the segment's mean.
   */
  public static ClusteredSegment cluster(VectorStore keys, VectorStore values, int from, int to,
      int firstPosition, int clusters, int iterations, float[] centre) {
    int n = to - from;
    int d = keys.dim();
    if (n <= 0) {
      throw new IllegalArgumentException("cannot cluster an empty segment");
    }
    if (values.dim() != d) {
      throw new IllegalArgumentException("value dim " + values.dim() + " does not match key dim " + d);
    }
    if (clusters < 1 || clusters > n) {
      throw new IllegalArgumentException("cluster count " + clusters + " must be in [1, " + n + "]");
    }
    int k = clusters;
    int nPad = (n + ROWS - 1) / ROWS * ROWS;
    int kPad = (k + COLS - 1) / COLS * COLS;

    float[] x = new float[nPad * d];
    for (int i = 0; i < n; i++) {
      keys.read(from + i, x, i * d);
    }
    centreAndNormalise(x, n, d, centre != null ? centre : meanKey(keys, from, to));

    float[] centroids = new float[k * d];
    for (int c = 0; c < k; c++) {
      int row = (int) ((long) c * n / k);
      System.arraycopy(x, row * d, centroids, c * d, d);
    }
    float[] ct = new float[d * kPad];
    int[] assignment = new int[nPad];
    float[] tile = new float[ROWS * COLS];

    transpose(centroids, k, d, ct, kPad);
    assign(x, nPad, d, ct, kPad, k, assignment, tile);
    for (int it = 0; it < iterations; it++) {
      if (!update(x, n, d, assignment, centroids, k)) {
        break; // no centroid moved: the next assignment would be the same
      }
      transpose(centroids, k, d, ct, kPad);
      assign(x, nPad, d, ct, kPad, k, assignment, tile);
    }
    return summarise(keys, values, from, n, firstPosition, assignment, k);
  }

  /**
   * The mean of rows {@code [from, to)} of {@code keys} (summed in float64): the centre that
   * clustering subtracts, per segment or, as the wave index does, per head.
   */
  public static float[] meanKey(VectorStore keys, int from, int to) {
    int d = keys.dim();
    double[] acc = new double[d];
    float[] row = new float[d];
    for (int i = from; i < to; i++) {
      keys.read(i, row, 0);
      for (int t = 0; t < d; t++) {
        acc[t] += row[t];
      }
    }
    float[] mean = new float[d];
    for (int t = 0; t < d; t++) {
      mean[t] = (float) (acc[t] / (to - from));
    }
    return mean;
  }

  private static void centreAndNormalise(float[] x, int n, int d, float[] mean) {
    if (mean.length != d) {
      throw new IllegalArgumentException("centre of dim " + mean.length + " for keys of dim " + d);
    }
    for (int i = 0; i < n; i++) {
      double norm = 0;
      for (int t = 0; t < d; t++) {
        float v = (float) (x[i * d + t] - mean[t]);
        x[i * d + t] = v;
        norm += (double) v * v;
      }
      if (norm > 0) {
        float inv = (float) (1 / Math.sqrt(norm));
        for (int t = 0; t < d; t++) {
          x[i * d + t] *= inv;
        }
      }
    }
  }

  private static void transpose(float[] c, int k, int d, float[] ct, int kPad) {
    Arrays.fill(ct, 0f);
    for (int j = 0; j < k; j++) {
      for (int t = 0; t < d; t++) {
        ct[t * kPad + j] = c[j * d + t];
      }
    }
  }

  /**
   * assignment[i] = argmax_j x_i . c_j, computed as the product X * C^T in tiles of 4 rows by
   * 4 vectors of centroids. Each row keeps a running best per vector lane (value and column, a
   * strictly larger product replaces it, so a lane keeps its first best column); at the end of the
   * row the lanes' largest value wins, and among lanes that hold it the lowest column: the first
   * argmax, as a scan would find it. Padding columns (j >= k) never win.
   */
  static void assign(float[] x, int nPad, int d, float[] ct, int kPad, int k, int[] assignment,
      float[] tile) {
    float[] bestValue = new float[ROWS * L];
    int[] bestColumn = new int[ROWS * L];
    for (int r0 = 0; r0 < nPad; r0 += ROWS) {
      Arrays.fill(bestValue, Float.NEGATIVE_INFINITY);
      Arrays.fill(bestColumn, 0);
      for (int c0 = 0; c0 < kPad; c0 += COLS) {
        productTile(x, r0 * d, d, ct, kPad, c0, tile);
        keepBest(tile, c0, k, bestValue, bestColumn);
      }
      for (int r = 0; r < ROWS; r++) {
        FloatVector v = FloatVector.fromArray(F, bestValue, r * L);
        float m = v.reduceLanes(VectorOperators.MAX);
        assignment[r0 + r] = IntVector.fromArray(I, bestColumn, r * L)
            .reduceLanes(VectorOperators.MIN, v.eq(m).cast(I));
      }
    }
  }

  /** Folds one product tile into the rows' per-lane best values and columns. */
  private static void keepBest(float[] tile, int c0, int k, float[] bestValue, int[] bestColumn) {
    for (int r = 0; r < ROWS; r++) {
      FloatVector best = FloatVector.fromArray(F, bestValue, r * L);
      IntVector column = IntVector.fromArray(I, bestColumn, r * L);
      for (int v = 0; v < COLS; v += L) {
        int first = c0 + v;
        if (first >= k) {
          break;
        }
        FloatVector p = FloatVector.fromArray(F, tile, r * COLS + v);
        IntVector ids = IntVector.broadcast(I, first).add(IOTA);
        VectorMask<Float> better = p.compare(VectorOperators.GT, best);
        if (first + L > k) {
          better = better.and(ids.compare(VectorOperators.LT, k).cast(F));
        }
        best = best.blend(p, better);
        column = column.blend(ids, better.cast(I));
      }
      best.intoArray(bestValue, r * L);
      column.intoArray(bestColumn, r * L);
    }
  }

  /**
   * tile[r * COLS + j] = x_(row0 + r) . c_(c0 + j) for 4 rows and COLS centroids: 16 vector
   * accumulators, each centroid vector loaded once per 4 rows. Takes and returns no vectors, so
   * that it compiles to registers whether or not it is inlined.
   */
  private static void productTile(float[] x, int x0, int d, float[] ct, int kPad, int c0,
      float[] tile) {
    int x1 = x0 + d;
    int x2 = x1 + d;
    int x3 = x2 + d;
    FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
    FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F);
    FloatVector a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
    FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F);
    FloatVector a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
    for (int t = 0; t < d; t++) {
      int base = t * kPad + c0;
      FloatVector c0v = FloatVector.fromArray(F, ct, base);
      FloatVector c1v = FloatVector.fromArray(F, ct, base + L);
      FloatVector c2v = FloatVector.fromArray(F, ct, base + 2 * L);
      FloatVector c3v = FloatVector.fromArray(F, ct, base + 3 * L);
      FloatVector v = FloatVector.broadcast(F, x[x0 + t]);
      a00 = c0v.fma(v, a00);
      a01 = c1v.fma(v, a01);
      a02 = c2v.fma(v, a02);
      a03 = c3v.fma(v, a03);
      v = FloatVector.broadcast(F, x[x1 + t]);
      a10 = c0v.fma(v, a10);
      a11 = c1v.fma(v, a11);
      a12 = c2v.fma(v, a12);
      a13 = c3v.fma(v, a13);
      v = FloatVector.broadcast(F, x[x2 + t]);
      a20 = c0v.fma(v, a20);
      a21 = c1v.fma(v, a21);
      a22 = c2v.fma(v, a22);
      a23 = c3v.fma(v, a23);
      v = FloatVector.broadcast(F, x[x3 + t]);
      a30 = c0v.fma(v, a30);
      a31 = c1v.fma(v, a31);
      a32 = c2v.fma(v, a32);
      a33 = c3v.fma(v, a33);
    }
    a00.intoArray(tile, 0);
    a01.intoArray(tile, L);
    a02.intoArray(tile, 2 * L);
    a03.intoArray(tile, 3 * L);
    a10.intoArray(tile, COLS);
    a11.intoArray(tile, COLS + L);
    a12.intoArray(tile, COLS + 2 * L);
    a13.intoArray(tile, COLS + 3 * L);
    a20.intoArray(tile, 2 * COLS);
    a21.intoArray(tile, 2 * COLS + L);
    a22.intoArray(tile, 2 * COLS + 2 * L);
    a23.intoArray(tile, 2 * COLS + 3 * L);
    a30.intoArray(tile, 3 * COLS);
    a31.intoArray(tile, 3 * COLS + L);
    a32.intoArray(tile, 3 * COLS + 2 * L);
    a33.intoArray(tile, 3 * COLS + 3 * L);
  }

  /** Moves each centroid to its members' normalised sum; returns whether any assignment-relevant change happened. */
  private static boolean update(float[] x, int n, int d, int[] assignment, float[] centroids, int k) {
    float[] sums = new float[k * d];
    int[] counts = new int[k];
    for (int i = 0; i < n; i++) {
      int c = assignment[i];
      counts[c]++;
      int s = c * d;
      int xi = i * d;
      for (int t = 0; t < d; t++) {
        sums[s + t] += x[xi + t];
      }
    }
    boolean changed = false;
    for (int c = 0; c < k; c++) {
      if (counts[c] == 0) {
        continue;
      }
      int s = c * d;
      double norm = 0;
      for (int t = 0; t < d; t++) {
        norm += (double) sums[s + t] * sums[s + t];
      }
      if (norm == 0) {
        continue;
      }
      float inv = (float) (1 / Math.sqrt(norm));
      for (int t = 0; t < d; t++) {
        float v = sums[s + t] * inv;
        if (v != centroids[s + t]) {
          changed = true;
          centroids[s + t] = v;
        }
      }
    }
    return changed;
  }

  private static ClusteredSegment summarise(VectorStore keys, VectorStore values, int from, int n,
      int firstPosition, int[] assignment, int k) {
    int d = keys.dim();
    int[] counts = new int[k];
    for (int i = 0; i < n; i++) {
      counts[assignment[i]]++;
    }
    int[] newId = new int[k];
    int live = 0;
    for (int c = 0; c < k; c++) {
      newId[c] = counts[c] > 0 ? live++ : -1;
    }
    int[] offsets = new int[live + 1];
    for (int c = 0; c < k; c++) {
      if (counts[c] > 0) {
        offsets[newId[c] + 1] = counts[c];
      }
    }
    for (int c = 0; c < live; c++) {
      offsets[c + 1] += offsets[c];
    }
    int[] fill = Arrays.copyOf(offsets, live);
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[fill[newId[assignment[i]]]++] = i; // ascending token order within a cluster
    }
    double[] keySum = new double[live * d];
    double[] valueSum = new double[live * d];
    float[] row = new float[d];
    for (int c = 0; c < live; c++) {
      for (int m = offsets[c]; m < offsets[c + 1]; m++) {
        int i = order[m];
        keys.read(from + i, row, 0);
        for (int t = 0; t < d; t++) {
          keySum[c * d + t] += row[t];
        }
        values.read(from + i, row, 0);
        for (int t = 0; t < d; t++) {
          valueSum[c * d + t] += row[t];
        }
      }
    }
    float[] centroids = new float[live * d];
    float[] valueSums = new float[live * d];
    for (int c = 0; c < live; c++) {
      int size = offsets[c + 1] - offsets[c];
      for (int t = 0; t < d; t++) {
        centroids[c * d + t] = (float) (keySum[c * d + t] / size);
        valueSums[c * d + t] = (float) valueSum[c * d + t];
      }
    }
    return new ClusteredSegment(d, firstPosition, order, offsets, centroids, valueSums);
  }
}
