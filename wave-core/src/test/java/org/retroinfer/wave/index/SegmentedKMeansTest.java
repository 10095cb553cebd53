package org.retroinfer.wave.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.roaringbitmap.RoaringBitmap;

/** Invariants of the clustering and of the meta index built from it. */
public class SegmentedKMeansTest {

  static WaveHeadCache build(SyntheticKv kv, WaveConfig config, int g) {
    WaveHeadCache wave = new WaveHeadCache(config, kv.d, g);
    for (int j = 0; j < kv.n; j++) {
      wave.append(kv.keys, j * kv.d, kv.values, j * kv.d);
    }
    wave.endPrefill();
    return wave;
  }

  @Test
  void everyIndexedTokenIsInExactlyOneClusterWithExactSummaries() {
    SyntheticKv kv = new SyntheticKv(21, 20_000, 64, 5, 16);
    WaveConfig config = WaveConfig.builder().kvType(KvDType.BFLOAT16).build();
    WaveHeadCache wave = build(kv, config, 2);
    WaveIndex index = wave.index();
    int d = kv.d;
    int indexedFrom = config.sinkTokens();
    int indexedTo = kv.n - config.windowTokens();
    assertEquals(2, index.segmentCount(), "20K tokens make round(19932 / 8192) = 2 segments");
    assertEquals(indexedTo - indexedFrom, index.tokenCount());

    RoaringBitmap seen = new RoaringBitmap();
    int rows = 0;
    float[] row = new float[d];
    float[] centroid = new float[d];
    float[] sum = new float[d];
    for (int c = 0; c < index.clusterCount(); c++) {
      RoaringBitmap postings = index.postings(c);
      assertEquals(index.clusterSize(c), postings.getCardinality());
      assertTrue(index.clusterSize(c) > 0, "empty cluster " + c);
      assertTrue(RoaringBitmap.and(seen, postings).isEmpty(), "cluster " + c + " shares tokens");
      seen.or(postings);
      double[] keyMean = new double[d];
      double[] valueSum = new double[d];
      for (int r = index.clusterStart(c); r < index.clusterStart(c + 1); r++, rows++) {
        int pos = index.position(r);
        assertTrue(postings.contains(pos));
        // cluster-contiguous K/V are the stored K/V of the token at that position
        index.keys().read(r, row, 0);
        for (int t = 0; t < d; t++) {
          assertEquals(KvDType.BFLOAT16.round(kv.keys[pos * d + t]), row[t], 0f);
          keyMean[t] += row[t];
        }
        index.values().read(r, row, 0);
        for (int t = 0; t < d; t++) {
          assertEquals(KvDType.BFLOAT16.round(kv.values[pos * d + t]), row[t], 0f);
          valueSum[t] += row[t];
        }
      }
      index.centroids().read(c, centroid, 0);
      index.valueSums().read(c, sum, 0);
      for (int t = 0; t < d; t++) {
        assertEquals(keyMean[t] / index.clusterSize(c), centroid[t], 1e-5 * (1 + Math.abs(centroid[t])));
        assertEquals(valueSum[t], sum[t], 1e-5 * (1 + Math.abs(sum[t])));
      }
    }
    assertEquals(index.tokenCount(), rows);
    assertEquals(RoaringBitmap.bitmapOfRange(indexedFrom, indexedTo), seen);
    // segments: consecutive, clusters never straddle them
    assertEquals(indexedFrom, index.segmentFirstPosition(0));
    assertEquals(indexedFrom + index.segmentTokens(0), index.segmentFirstPosition(1));
    for (int s = 0; s < index.segmentCount(); s++) {
      int lo = index.segmentFirstPosition(s);
      int hi = lo + index.segmentTokens(s);
      for (int c = index.segmentFirstCluster(s); c < index.segmentFirstCluster(s + 1); c++) {
        for (int p : index.positions(c)) {
          assertTrue(p >= lo && p < hi, "cluster " + c + " leaves segment " + s);
        }
      }
      int expected = config.clustersFor(index.segmentTokens(s));
      int actual = index.segmentFirstCluster(s + 1) - index.segmentFirstCluster(s);
      assertTrue(actual <= expected && actual > expected * 0.7,
          "segment " + s + ": " + actual + " non-empty clusters of " + expected);
    }
    wave.close();
  }

  @Test
  void clusteringIsDeterministic() {
    SyntheticKv kv = new SyntheticKv(4, 9000, 32, 3, 16);
    WaveConfig config = WaveConfig.builder().kvType(KvDType.FLOAT32).build();
    WaveHeadCache a = build(kv, config, 1);
    WaveHeadCache b = build(kv, config, 1);
    assertIndexesEqual(a.index(), b.index());
    a.close();
    b.close();
  }

  @Test
  void clustersGroupSimilarKeys() {
    // keys drawn around 40 well-separated centres in runs (the positional locality of real keys,
    // which the evenly spaced initialisation relies on), with the run order shuffled and a quarter
    // of the tokens scattered to random centres: k-means must put every token with its centre
    Random rnd = new Random(8);
    int d = 32;
    int n = 640;
    int centres = 40;
    float[][] c = new float[centres][d];
    for (float[] x : c) {
      for (int t = 0; t < d; t++) {
        x[t] = (float) rnd.nextGaussian() * 4;
      }
    }
    VectorStore keys = VectorStore.allocate(d, KvDType.FLOAT32, n);
    VectorStore values = VectorStore.allocate(d, KvDType.FLOAT32, n);
    int[] truth = new int[n];
    float[] row = new float[d];
    for (int i = 0; i < n; i++) {
      boolean scattered = i % 16 != 0 && rnd.nextInt(4) == 0; // the seeds stay on their run
      truth[i] = scattered ? rnd.nextInt(centres) : (i / 16 * 7) % centres;
      for (int t = 0; t < d; t++) {
        row[t] = c[truth[i]][t] + (float) rnd.nextGaussian() * 0.1f;
      }
      keys.append(row, 0);
      values.append(row, 0);
    }
    ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, 0, n, 0, centres, 10);
    int pure = 0;
    for (int k = 0; k < seg.clusters(); k++) {
      int first = truth[seg.order()[seg.offsets()[k]]];
      boolean same = true;
      for (int m = seg.offsets()[k]; m < seg.offsets()[k + 1]; m++) {
        same &= truth[seg.order()[m]] == first;
      }
      pure += same ? seg.size(k) : 0;
    }
    assertTrue(pure == n, "only " + pure + " of " + n + " tokens in pure clusters");
    keys.close();
    values.close();
  }

  @Test
  void blockedAssignmentIsTheArgmaxOfTheProduct() {
    Random rnd = new Random(19);
    for (int[] shape : new int[][] {{8, 3, 5}, {100, 70, 33}, {64, 129, 128}, {12, 64, 16}}) {
      int n = shape[0];
      int k = shape[1];
      int d = shape[2];
      int cols = 4 * jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
      int kPad = (k + cols - 1) / cols * cols;
      float[] x = new float[n * d];
      float[] ct = new float[d * kPad];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) rnd.nextGaussian();
      }
      for (int t = 0; t < d; t++) {
        for (int j = 0; j < k; j++) {
          ct[t * kPad + j] = (float) rnd.nextGaussian() - 3; // negative: padding must not win
        }
      }
      int[] got = new int[n];
      SegmentedKMeans.assign(x, n, d, ct, kPad, k, got, new float[cols * 4]);
      for (int i = 0; i < n; i++) {
        int best = -1;
        double bestScore = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < k; j++) {
          double s = 0;
          for (int t = 0; t < d; t++) {
            s += (double) x[i * d + t] * ct[t * kPad + j];
          }
          if (s > bestScore) {
            bestScore = s;
            best = j;
          }
        }
        double chosen = 0;
        for (int t = 0; t < d; t++) {
          chosen += (double) x[i * d + t] * ct[t * kPad + got[i]];
        }
        assertTrue(got[i] == best || chosen >= bestScore - 1e-4,
            "row " + i + ": got " + got[i] + " expected " + best);
      }
    }
  }

  @Test
  void blockedAssignmentBreaksTiesTowardTheLowestColumn() {
    Random rnd = new Random(23);
    int n = 8;
    int d = 16;
    int k = 150;
    int cols = 4 * jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
    int kPad = (k + cols - 1) / cols * cols;
    float[] u = new float[d];
    for (int t = 0; t < d; t++) {
      u[t] = (float) rnd.nextGaussian();
    }
    float[] x = new float[n * d];
    for (int i = 0; i < n; i++) {
      System.arraycopy(u, 0, x, i * d, d);
    }
    float[] ct = new float[d * kPad];
    for (int t = 0; t < d; t++) {
      for (int j = 0; j < k; j++) {
        ct[t * kPad + j] = (float) rnd.nextGaussian() * 0.1f;
      }
      // the same best centroid at columns 67, 20 and 140: 67 sits in a lower vector lane than 20
      for (int j : new int[] {67, 20, 140}) {
        ct[t * kPad + j] = 5 * u[t];
      }
    }
    int[] got = new int[n];
    SegmentedKMeans.assign(x, n, d, ct, kPad, k, got, new float[cols * 4]);
    for (int i = 0; i < n; i++) {
      assertEquals(20, got[i], "row " + i);
    }
    // all centroids equal: column 0
    for (int t = 0; t < d; t++) {
      for (int j = 0; j < k; j++) {
        ct[t * kPad + j] = u[t];
      }
    }
    SegmentedKMeans.assign(x, n, d, ct, kPad, k, got, new float[cols * 4]);
    for (int i = 0; i < n; i++) {
      assertEquals(0, got[i], "row " + i);
    }
  }

  @Test
  void rejectsBadArguments() {
    VectorStore keys = VectorStore.allocate(8, KvDType.FLOAT32, 4);
    VectorStore values = VectorStore.allocate(4, KvDType.FLOAT32, 4);
    keys.append(new float[8], 0);
    values.append(new float[4], 0);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SegmentedKMeans.cluster(keys, values, 0, 1, 0, 1, 1));
    assertTrue(e.getMessage().contains("value dim 4 does not match key dim 8"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> SegmentedKMeans.cluster(keys, keys, 0, 1, 0, 2, 1));
    assertThrows(IllegalArgumentException.class,
        () -> SegmentedKMeans.cluster(keys, keys, 0, 0, 0, 1, 1));
    keys.close();
    values.close();
  }

  public static void assertIndexesEqual(WaveIndex a, WaveIndex b) {
    assertEquals(a.segmentCount(), b.segmentCount());
    assertEquals(a.clusterCount(), b.clusterCount());
    for (int s = 0; s < a.segmentCount(); s++) {
      ClusteredSegment x = a.segment(s);
      ClusteredSegment y = b.segment(s);
      assertEquals(x.firstPosition(), y.firstPosition());
      assertArrayEquals(x.order(), y.order());
      assertArrayEquals(x.offsets(), y.offsets());
      assertArrayEquals(x.centroids(), y.centroids());
      assertArrayEquals(x.valueSums(), y.valueSums());
    }
    assertEquals(a.keys().memory().mismatch(b.keys().memory()), -1L);
    assertEquals(a.values().memory().mismatch(b.values().memory()), -1L);
  }
}
