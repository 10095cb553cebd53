package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/** Decode-time index updates against a one-go build over the same segments. */
class DecodeUpdateTest {

  @Test
  void decodeUpdatesEqualBuildingTheSameSegmentsInOneGo() {
    int d = 64;
    int g = 2;
    int prompt = 9000;
    int decoded = 2600;
    SyntheticKv kv = new SyntheticKv(77, prompt + decoded, d, 4, 16);
    WaveConfig config = WaveConfig.builder().kvType(KvDType.BFLOAT16).build();
    int s = config.sinkTokens();
    int w = config.windowTokens();
    int u = config.updateTokens();

    // incremental: prefill, index, then decode token by token with attention in between
    WaveHeadCache incremental = new WaveHeadCache(config, d, g);
    for (int j = 0; j < prompt; j++) {
      incremental.append(kv.keys, j * d, kv.values, j * d);
    }
    incremental.endPrefill();
    assertEquals(1, incremental.index().segmentCount());
    float[] out = new float[g * d];
    for (int j = prompt; j < prompt + decoded; j++) {
      incremental.append(kv.keys, j * d, kv.values, j * d);
      if (j % 97 == 0) {
        incremental.attend(kv.query(g), 0, out, 0);
      }
    }
    // (prompt - s - w) tokens in the prefill segment, then every U tokens beyond the window
    int updates = (prompt + decoded - s - (prompt - w) - w) / u;
    assertEquals(2, updates);
    assertEquals(1 + updates, incremental.index().segmentCount());
    assertTrue(incremental.tailKeys().size() >= w && incremental.tailKeys().size() < w + u);
    assertEquals(prompt + decoded, incremental.size());

    // one go: the same token ranges clustered as segments of a fresh index
    VectorStore keys = VectorStore.allocate(d, KvDType.BFLOAT16, prompt + decoded);
    VectorStore values = VectorStore.allocate(d, KvDType.BFLOAT16, prompt + decoded);
    keys.appendAll(kv.keys, 0, prompt + decoded);
    values.appendAll(kv.values, 0, prompt + decoded);
    WaveIndex oneGo = WaveIndex.empty(d, KvDType.BFLOAT16);
    int[] bounds = {s, prompt - w, prompt - w + u, prompt - w + 2 * u};
    // every segment is centred on the mean of the keys indexed at the end of the prefill
    double[] mean = new double[d];
    for (int j = bounds[0]; j < bounds[1]; j++) {
      for (int t = 0; t < d; t++) {
        mean[t] += keys.get(j, t);
      }
    }
    float[] centre = new float[d];
    for (int t = 0; t < d; t++) {
      centre[t] = (float) (mean[t] / (bounds[1] - bounds[0]));
    }
    assertArrayEquals(centre, incremental.index().keyCentre(), 1e-6f);
    centre = incremental.index().keyCentre(); // bit-identical input for the one-go build
    oneGo.setKeyCentre(centre);
    for (int i = 0; i + 1 < bounds.length; i++) {
      int len = bounds[i + 1] - bounds[i];
      ClusteredSegment seg = SegmentedKMeans.cluster(keys, values, bounds[i], bounds[i + 1],
          bounds[i], config.clustersFor(len), config.kmeansIterations(), centre);
      oneGo.addSegment(seg, keys, values, bounds[i]);
    }
    org.retroinfer.wave.index.SegmentedKMeansTest.assertIndexesEqual(oneGo, incremental.index());

    // and a cache restored around that index attends exactly like the incremental one
    VectorStore sinkK = VectorStore.allocate(d, KvDType.BFLOAT16, s);
    VectorStore sinkV = VectorStore.allocate(d, KvDType.BFLOAT16, s);
    sinkK.appendFrom(keys, 0, s);
    sinkV.appendFrom(values, 0, s);
    VectorStore tailK = VectorStore.allocate(d, KvDType.BFLOAT16, w + u);
    VectorStore tailV = VectorStore.allocate(d, KvDType.BFLOAT16, w + u);
    tailK.appendFrom(keys, bounds[3], prompt + decoded);
    tailV.appendFrom(values, bounds[3], prompt + decoded);
    WaveHeadCache restored = WaveHeadCache.restore(config, g, sinkK, sinkV, oneGo, tailK, tailV, true);
    float[] expected = new float[g * d];
    for (int t = 0; t < 5; t++) {
      float[] q = kv.query(g);
      incremental.attend(q, 0, expected, 0);
      restored.attend(q, 0, out, 0);
      assertArrayEquals(expected, out, 0f);
      assertEquals(incremental.lastExactTokens(), restored.lastExactTokens());
    }
    incremental.close();
    restored.close();
    keys.close();
    values.close();
  }
}
