package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.baseline.QuestAttention;
import org.retroinfer.wave.baseline.StreamingLlmAttention;
import org.retroinfer.wave.baseline.TopKOracleAttention;
import org.retroinfer.wave.kv.KvDType;

/**
 * On structured synthetic data (needle directions, RoPE, a diffuse background), wave attention's
 * output error against full attention must be several times smaller than Quest's and
 * StreamingLLM's when all of them read the same number of tokens exactly.
 */
class WaveAccuracyTest {
  static final int D = 128;
  static final int G = 4;

  @Test
  void waveBeatsQuestAndStreamingAtTheSameExactBudget() {
    int n = 32768;
    int queries = 24;
    double[] err = new double[5]; // wave, quest, streaming, oracle, wave-without-estimation
    long exactTotal = 0;
    int contexts = 2;
    for (int c = 0; c < contexts; c++) {
      SyntheticKv kv = new SyntheticKv(100 + c, n, D, 6, 16);
      WaveConfig config = WaveConfig.defaults().toBuilder().kvType(KvDType.BFLOAT16).build();
      HeadCache full = fill(new FullAttention(KvDType.BFLOAT16).newHead(D, G), kv);
      WaveHeadCache wave = (WaveHeadCache) fill(new WaveAttention(config).newHead(D, G), kv);
      WaveHeadCache waveNoEst = (WaveHeadCache) fill(
          new WaveAttention(config.toBuilder().estimationFraction(0).build()).newHead(D, G), kv);
      int[] budget = new int[1];
      HeadCache quest = fill(new QuestAttention(KvDType.BFLOAT16, len -> budget[0]).newHead(D, G), kv);
      HeadCache streaming = fill(new StreamingLlmAttention(KvDType.BFLOAT16, 4, len -> budget[0])
          .newHead(D, G), kv);
      HeadCache oracle = fill(new TopKOracleAttention(KvDType.BFLOAT16, len -> budget[0])
          .newHead(D, G), kv);
      float[] ref = new float[G * D];
      float[] out = new float[G * D];
      for (int i = 0; i < queries; i++) {
        float[] q = kv.query(G);
        full.attend(q, 0, ref, 0);
        wave.attend(q, 0, out, 0);
        err[0] += Reference.relativeError(ref, out);
        budget[0] = wave.lastExactTokens();
        exactTotal += budget[0];
        waveNoEst.attend(q, 0, out, 0);
        err[4] += Reference.relativeError(ref, out);
        HeadCache[] peers = {quest, streaming, oracle};
        for (int p = 0; p < peers.length; p++) {
          peers[p].attend(q, 0, out, 0);
          assertTrue(peers[p].lastExactTokens() <= budget[0],
              peers[p] + " read " + peers[p].lastExactTokens() + " > budget " + budget[0]);
          err[1 + p] += Reference.relativeError(ref, out);
        }
      }
      for (HeadCache h : new HeadCache[] {full, wave, waveNoEst, quest, streaming, oracle}) {
        h.close();
      }
    }
    int total = queries * contexts;
    String[] names = {"wave", "quest", "streaming", "top-k oracle", "wave, no estimation zone"};
    System.out.printf(Locale.ROOT, "%nOutput error vs full attention, %d tokens, head dim %d, g=%d,"
        + " bf16 K/V, %d queries, %.0f tokens read exactly per query (%.1f%%)%n", n, D, G, total,
        (double) exactTotal / total, 100.0 * exactTotal / total / n);
    System.out.printf(Locale.ROOT, "%-26s %12s %10s%n", "method", "rel. error", "vs wave");
    for (int m = 0; m < names.length; m++) {
      System.out.printf(Locale.ROOT, "%-26s %12.5f %9.1fx%n", names[m], err[m] / total,
          err[m] / err[0]);
    }
    assertTrue(err[1] > 3 * err[0], "wave must be several times more accurate than Quest");
    assertTrue(err[2] > 3 * err[0], "wave must be several times more accurate than StreamingLLM");
  }

  static HeadCache fill(HeadCache head, SyntheticKv kv) {
    for (int j = 0; j < kv.n; j++) {
      head.append(kv.keys, j * kv.d, kv.values, j * kv.d);
    }
    head.endPrefill();
    return head;
  }
}
