package org.retroinfer.wave.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The keys' spread statistics: {@link ClusterSpreads#of} against a float64 reference over the
 * stored rows, and an index restored with stored statistics equal to one that computes them (and
 * taking them as given, without reading its keys for them).
 */
class ClusterSpreadsTest {
  private static final int D = 24;

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void statisticsMatchAFloat64ReferenceOverTheStoredRows(KvDType type) {
    Random rnd = new Random(17 + type.ordinal());
    int n = 700;
    try (VectorStore keys = randomRows(rnd, n, type); VectorStore values = randomRows(rnd, n, type);
        WaveIndex index = WaveIndex.empty(D, type)) {
      ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, 0, n, 0, 40, 6);
      index.addSegment(seg, keys, values, 0);
      ClusterSpreads s = index.segment(0).spreads();
      double[] deviations = new double[D];
      for (int c = 0; c < seg.clusters(); c++) {
        double sq = 0;
        for (int m = seg.offsets()[c]; m < seg.offsets()[c + 1]; m++) {
          float[] row = keys.row(seg.order()[m]); // the stored (rounded) key
          for (int t = 0; t < D; t++) {
            double x = (double) row[t] - seg.centroids()[c * D + t];
            sq += x * x;
            deviations[t] += x * x;
          }
        }
        double expect = sq / seg.size(c);
        assertEquals(expect, s.spreads()[c], 1e-5 * expect + 1e-6, "cluster " + c);
        assertEquals(expect, index.spreads()[c], 1e-5 * expect + 1e-6, "cluster " + c);
      }
      double trace = 0;
      for (int t = 0; t < D; t++) {
        assertEquals(deviations[t], s.deviationSums()[t], 1e-5 * deviations[t], "dim " + t);
        trace += deviations[t];
      }
      for (int t = 0; t < D; t++) {
        assertEquals(deviations[t] / trace, index.spreadShape()[t], 1e-5, "shape, dim " + t);
      }
    }
  }

  @Test
  void anIndexRestoredWithStoredStatisticsEqualsOneThatComputesThem() {
    Random rnd = new Random(3);
    KvDType type = KvDType.FLOAT16;
    int n = 900;
    try (VectorStore keys = randomRows(rnd, n, type); VectorStore values = randomRows(rnd, n, type);
        WaveIndex built = WaveIndex.empty(D, type)) {
      built.addSegment(SegmentedKMeans.cluster(keys, values, 0, 500, 0, 30, 6), keys, values, 0);
      built.addSegment(SegmentedKMeans.cluster(keys, values, 500, n, 500, 25, 6), keys, values,
          500);
      // the built index's rows, segment by segment, as a reader would hand them over in place
      VectorStore k0 = rows(built.keys(), 0, 500);
      VectorStore v0 = rows(built.values(), 0, 500);
      VectorStore k1 = rows(built.keys(), 500, n);
      VectorStore v1 = rows(built.values(), 500, n);
      ClusteredSegment s0 = built.segment(0);
      ClusteredSegment s1 = built.segment(1);
      try (k0; v0; k1; v1;
          WaveIndex stored = WaveIndex.inPlace(D, type, List.of(s0, s1), List.of(k0, k1),
              List.of(v0, v1), 0);
          WaveIndex computed = WaveIndex.inPlace(D, type, List.of(s0.withSpreads(null),
              s1.withSpreads(null)), List.of(k0, k1), List.of(v0, v1), 0)) {
        assertArrayEquals(built.spreads(), stored.spreads(), 0f);
        assertArrayEquals(built.spreads(), computed.spreads(), 0f);
        assertArrayEquals(built.spreadShape(), stored.spreadShape(), 0f);
        assertArrayEquals(built.spreadShape(), computed.spreadShape(), 0f);
        assertArrayEquals(s1.spreads().deviationSums(),
            computed.segment(1).spreads().deviationSums(), 0d);
        // stored statistics are taken as they are, not recomputed from the keys
        float[] doubled = s1.spreads().spreads().clone();
        for (int c = 0; c < doubled.length; c++) {
          doubled[c] *= 2;
        }
        try (WaveIndex given = WaveIndex.inPlace(D, type, List.of(s0,
            s1.withSpreads(new ClusterSpreads(doubled, s1.spreads().deviationSums()))),
            List.of(k0, k1), List.of(v0, v1), 0)) {
          assertEquals(2 * built.spreads()[s0.clusters()], given.spreads()[s0.clusters()]);
        }
      }
    }
  }

  @Test
  void rejectsStatisticsThatDoNotFitOrAreNaNOrNegative() {
    assertThrows(IllegalArgumentException.class,
        () -> new ClusterSpreads(new float[] {1, Float.NaN}, new double[D]));
    assertThrows(IllegalArgumentException.class,
        () -> new ClusterSpreads(new float[] {-1}, new double[D]));
    assertThrows(IllegalArgumentException.class,
        () -> new ClusterSpreads(new float[] {1}, new double[] {Double.NaN}));
    assertThrows(IllegalArgumentException.class,
        () -> new ClusterSpreads(new float[] {1}, new double[] {-0.5}));
    // huge keys overflow a float32 spread: taken, as an index built from them takes it
    new ClusterSpreads(new float[] {Float.POSITIVE_INFINITY}, new double[] {1e300});
    ClusteredSegment one = new ClusteredSegment(2, 0, new int[] {0, 1}, new int[] {0, 2},
        new float[2], new float[2]);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> one.withSpreads(new ClusterSpreads(new float[] {1, 2}, new double[2])));
    assertEquals("spread statistics of 2 clusters and 2 dimensions for a segment of 1 clusters"
        + " of dim 2", e.getMessage());
  }

  @Test
  void aNewlyClusteredSegmentWhoseValueSumsOverflowIsRefused() {
    Random rnd = new Random(9);
    try (VectorStore keys = randomRows(rnd, 64, KvDType.FLOAT32);
        VectorStore values = VectorStore.allocate(D, KvDType.FLOAT32, 64);
        WaveIndex index = WaveIndex.empty(D, KvDType.FLOAT32)) {
      float[] row = new float[D];
      java.util.Arrays.fill(row, 3e38f); // finite, but two of them sum past float32's range
      for (int i = 0; i < 64; i++) {
        values.append(row, 0);
      }
      ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, 0, 64, 0, 4, 3);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> index.addSegment(seg, keys, values, 0));
      assertTrue(e.getMessage().contains("non-finite value"), e.getMessage());
    }
  }

  private static VectorStore randomRows(Random rnd, int n, KvDType type) {
    VectorStore s = VectorStore.allocate(D, type, n);
    float[] row = new float[D];
    for (int i = 0; i < n; i++) {
      for (int t = 0; t < D; t++) {
        row[t] = (float) (rnd.nextGaussian() * (1 + t % 3));
      }
      s.append(row, 0);
    }
    return s;
  }

  private static VectorStore rows(VectorStore src, int from, int to) {
    VectorStore out = VectorStore.allocate(src.dim(), src.type(), to - from);
    out.appendFrom(src, from, to);
    return out;
  }
}
