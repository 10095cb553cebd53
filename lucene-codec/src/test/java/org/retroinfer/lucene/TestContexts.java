package org.retroinfer.lucene;

import java.nio.file.Path;
import java.util.Random;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.TieredMergePolicy;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** Builds wave contexts from wave-core's synthetic KV workload, for the tests of this module. */
final class TestContexts {
  private TestContexts() {}

  /** A small configuration that still has several wave segments and decode-time updates. */
  static WaveConfig smallConfig(KvDType type) {
    return WaveConfig.fixed().toBuilder()
        .kvType(type)
        .segmentTokens(384)
        .updateTokens(128)
        .windowTokens(32)
        .sinkTokens(4)
        .tokensPerCluster(8)
        .retrievalMinClusters(4)
        .retrievalFraction(0.05)
        .estimationFraction(0.25)
        .build();
  }

  /** A context of {@code prefill} prompt tokens, then {@code decode} decoded ones. */
  static Built build(AttentionShape shape, WaveConfig config, int prefill, int decode, long seed) {
    int n = prefill + decode;
    int d = shape.headDim();
    SyntheticKv[][] kv = new SyntheticKv[shape.layers()][shape.kvHeads()];
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        kv[l][h] = new SyntheticKv(seed * 1000 + l * 31 + h, n, d, 2, 8);
      }
    }
    ContextCache ctx = new WaveAttention(config).newContext(shape);
    float[] keys = new float[shape.kvWidth()];
    float[] values = new float[shape.kvWidth()];
    for (int p = 0; p < n; p++) {
      if (p == prefill) {
        ctx.endPrefill();
      }
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          System.arraycopy(kv[l][h].keys, p * d, keys, h * d, d);
          System.arraycopy(kv[l][h].values, p * d, values, h * d, d);
        }
        ctx.append(l, keys, values);
      }
    }
    if (decode == 0) {
      ctx.endPrefill();
    }
    int[] tokens = new int[n];
    Random rnd = new Random(seed);
    for (int p = 0; p < n; p++) {
      tokens[p] = rnd.nextInt(256);
    }
    return new Built(ctx, tokens, kv);
  }

  record Built(ContextCache context, int[] tokens, SyntheticKv[][] kv) {}

  /** A writer for contexts; compound files off so that tests can reach each file of the format. */
  static IndexWriter writer(org.apache.lucene.store.Directory dir) throws java.io.IOException {
    IndexWriterConfig c = ContextWriter.indexWriterConfig();
    c.setUseCompoundFile(false);
    TieredMergePolicy mp = new TieredMergePolicy();
    mp.setNoCFSRatio(0);
    c.setMergePolicy(mp);
    return new IndexWriter(dir, c);
  }

  static Path tempDir(String prefix) throws java.io.IOException {
    return java.nio.file.Files.createTempDirectory(prefix);
  }
}
