package org.retroinfer.wave.index;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.kv.KvDType;

/** Cluster ranking against a float64 reference over the centroids as ranking reads them. */
class ClusterRankingTest {

  @Test
  void rankingReadsCentroidsRoundedToTheKeysType() {
    for (KvDType type : KvDType.values()) {
      SyntheticKv kv = new SyntheticKv(3, 9000, 64, 5, 16);
      WaveConfig config = WaveConfig.builder().kvType(type).build();
      WaveHeadCache wave = SegmentedKMeansTest.build(kv, config, 3);
      WaveIndex index = wave.index();
      assertEquals(type, index.rankingType());
      // off-heap like K/V: a heap segment made the shared load helpers' type profile polymorphic
      assertTrue(index.blockedCentroids().isNative());
      int d = kv.d;
      for (int c = 0; c < index.clusterCount(); c += 37) {
        for (int t = 0; t < d; t++) {
          assertEquals(type.round(index.centroids().get(c, t)), index.rankingCentroid(c, t), 0f);
        }
      }
      // the ranking's centroid logits: scale * q_h . rankingCentroid(c), within float rounding
      Random rnd = new Random(11);
      float[] q = new float[3 * d];
      for (int i = 0; i < q.length; i++) {
        q[i] = (float) rnd.nextGaussian();
      }
      float scale = (float) (1 / Math.sqrt(d));
      ClusterRanking ranking = new ClusterRanking(3);
      ranking.plan(index, q, 0, scale, 64, 100, new ZonePlan());
      double worst = 0;
      double worstIfFloat32 = 0;
      for (int h = 0; h < 3; h++) {
        for (int c = 0; c < index.clusterCount(); c++) {
          double ref = 0;
          double ref32 = 0;
          for (int t = 0; t < d; t++) {
            ref += (double) q[h * d + t] * index.rankingCentroid(c, t);
            ref32 += (double) q[h * d + t] * index.centroids().get(c, t);
          }
          float got = ranking.logits()[h * ranking.logitStride() + c];
          worst = Math.max(worst, Math.abs(got - ref * scale));
          worstIfFloat32 = Math.max(worstIfFloat32, Math.abs(got - ref32 * scale));
        }
      }
      assertTrue(worst < 1e-4, type + ": logit error " + worst);
      if (type != KvDType.FLOAT32) {
        // the rounding is visible: the test tells the two inputs apart
        assertTrue(worstIfFloat32 > 10 * worst, type + ": " + worstIfFloat32 + " vs " + worst);
      }
      wave.close();
    }
  }
}
