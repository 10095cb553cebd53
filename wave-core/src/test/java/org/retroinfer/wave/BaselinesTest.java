package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.baseline.QuestAttention;
import org.retroinfer.wave.baseline.StreamingLlmAttention;
import org.retroinfer.wave.baseline.TopKOracleAttention;
import org.retroinfer.wave.kv.KvDType;

/** The peers against float64 references of what each one is defined to read. */
class BaselinesTest {
  static final int D = 32;
  static final int N = 1000;

  final Random rnd = new Random(17);
  final float[] k = gaussian(N * D);
  final float[] v = gaussian(N * D);

  float[] gaussian(int len) {
    float[] x = new float[len];
    for (int i = 0; i < len; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  HeadCache fill(HeadCache h) {
    for (int j = 0; j < N; j++) {
      h.append(k, j * D, v, j * D);
    }
    h.endPrefill();
    return h;
  }

  @Test
  void withABudgetCoveringEverythingEveryPeerIsFullAttention() {
    HeadCache full = fill(new FullAttention(KvDType.FLOAT32).newHead(D, 2));
    HeadCache[] peers = {
        fill(new QuestAttention(KvDType.FLOAT32, n -> n).newHead(D, 2)),
        fill(new StreamingLlmAttention(KvDType.FLOAT32, 4, n -> n).newHead(D, 2)),
        fill(new TopKOracleAttention(KvDType.FLOAT32, n -> n).newHead(D, 2))};
    float[] q = gaussian(2 * D);
    float[] ref = new float[2 * D];
    full.attend(q, 0, ref, 0);
    for (HeadCache p : peers) {
      float[] out = new float[2 * D];
      p.attend(q, 0, out, 0);
      assertArrayEquals(ref, out, 0f);
      assertEquals(N, p.lastExactTokens());
    }
  }

  @Test
  void streamingReadsSinksAndTheMostRecentTokens() {
    HeadCache s = fill(new StreamingLlmAttention(KvDType.FLOAT32, 4, n -> 100).newHead(D, 1));
    float[] q = gaussian(D);
    float[] out = new float[D];
    s.attend(q, 0, out, 0);
    int[] tokens = IntStream.concat(IntStream.range(0, 4), IntStream.range(N - 96, N)).toArray();
    assertTrue(Reference.maxAbsDiff(Reference.attention(q, 0, k, v, D, tokens), out, 0) < 1e-5);
    assertEquals(100, s.lastExactTokens());
  }

  @Test
  void oracleReadsTheTrueTopTokens() {
    int budget = 50;
    HeadCache o = fill(new TopKOracleAttention(KvDType.FLOAT32, n -> budget).newHead(D, 1));
    float[] q = gaussian(D);
    float[] out = new float[D];
    o.attend(q, 0, out, 0);
    Integer[] byScore = IntStream.range(0, N).boxed().toArray(Integer[]::new);
    Arrays.sort(byScore, Comparator.comparingDouble(j -> -TripartiteAttentionTest.dot(q, 0,
        Arrays.copyOfRange(k, j * D, j * D + D), D)));
    int[] top = Arrays.stream(byScore, 0, budget).mapToInt(Integer::intValue).toArray();
    assertTrue(Reference.maxAbsDiff(Reference.attention(q, 0, k, v, D, top), out, 0) < 1e-5);
  }

  @Test
  void questPageBoundIsAnUpperBoundAndTheBestPagesAreRead() {
    int budget = 160; // 9 pages + the last one (1000 = 62 full pages + 8 tokens)
    HeadCache quest = fill(new QuestAttention(KvDType.FLOAT32, n -> budget).newHead(D, 1));
    float[] q = gaussian(D);
    float[] out = new float[D];
    quest.attend(q, 0, out, 0);
    int pages = N / 16;
    double[] bound = new double[pages];
    for (int p = 0; p < pages; p++) {
      double maxDot = Double.NEGATIVE_INFINITY;
      for (int t = 0; t < D; t++) {
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (int j = p * 16; j < p * 16 + 16; j++) {
          lo = Math.min(lo, k[j * D + t]);
          hi = Math.max(hi, k[j * D + t]);
        }
        bound[p] += Math.max(q[t] * lo, q[t] * hi);
      }
      for (int j = p * 16; j < p * 16 + 16; j++) {
        maxDot = Math.max(maxDot, TripartiteAttentionTest.dot(q, 0, Arrays.copyOfRange(k, j * D, j * D + D), D));
      }
      assertTrue(bound[p] >= maxDot - 1e-4, "page " + p + " bound below a key's score");
    }
    Integer[] order = IntStream.range(0, pages).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingDouble(p -> -bound[p]));
    int[] tokens = IntStream.concat(
        Arrays.stream(order, 0, 9).flatMapToInt(p -> IntStream.range(p * 16, p * 16 + 16)),
        IntStream.range(pages * 16, N)).toArray();
    assertTrue(Reference.maxAbsDiff(Reference.attention(q, 0, k, v, D, tokens), out, 0) < 1e-5);
    assertEquals(9 * 16 + 8, quest.lastExactTokens());
  }
}
