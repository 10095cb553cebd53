package org.retroinfer.app.tier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.gpu.buffer.BlockCache;
import org.retroinfer.gpu.emulation.HostBlockPool;
import org.retroinfer.gpu.emulation.KernelEmulator;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.store.tier.ClusterBlockTier;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * The CPU tier on the decode path: a context is stored, opened for decode (its indexed rows read
 * in place from the store's mapped files), and the wave buffer's step (the GPU engine's algorithm,
 * emulated on the CPU with a small block cache) reads its misses and fills through
 * {@link ContextTier}: the outputs equal those of the same steps reading the batch's own pool, with
 * a tier smaller than the context (so it evicts), and again after the tier file is reopened.
 */
class ContextTierTest {
  static final AttentionShape SHAPE = new AttentionShape(1, 4, 2, 64);
  static final WaveConfig CONFIG = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16)
      .segmentTokens(1024).updateTokens(512).build();

  @TempDir
  Path dir;

  @Test
  void theTierServesTheSameRowsAsTheContextEvenWhenItEvicts() throws Exception {
    Random rnd = new Random(41);
    int n = 5000;
    int[] tokens = new int[n];
    ContextCache built = new WaveAttention(CONFIG).newContext(SHAPE);
    float[][] dirs = new float[8][SHAPE.kvWidth()];
    for (float[] d : dirs) {
      for (int i = 0; i < d.length; i++) {
        d[i] = (float) rnd.nextGaussian() * 1.5f;
      }
    }
    float[] k = new float[SHAPE.kvWidth()];
    float[] v = new float[SHAPE.kvWidth()];
    for (int t = 0; t < n; t++) {
      tokens[t] = rnd.nextInt(256);
      float[] d = dirs[rnd.nextInt(dirs.length)];
      for (int i = 0; i < k.length; i++) {
        k[i] = d[i] + (float) rnd.nextGaussian();
        v[i] = (float) rnd.nextGaussian();
      }
      built.append(0, k, v);
    }
    built.endPrefill();
    byte[] fp = new byte[32];
    rnd.nextBytes(fp);
    ModelFingerprint model = new ModelFingerprint(HexFormat.of().formatHex(fp));
    Path tierFile = dir.resolve("tier.cm3");
    try (ContextStore store = ContextStore.open(dir.resolve("store"))) {
      ContextStore.Scope scope = store.scope(model, "", CONFIG.kvType());
      ContextInfo info;
      try (built) {
        info = scope.put("t", "prompt", tokens, built, null, null);
      }
      try (ReusedContext opened = scope.load(info.id(), tokens, n, false)) {
        ContextCache c = opened.cache();
        List<HeadCache> heads = new ArrayList<>();
        long clusterBytes = 0;
        for (int h = 0; h < SHAPE.kvHeads(); h++) {
          heads.add(c.head(0, h));
          HeadLayout l = HeadLayout.of(c.head(0, h));
          assertTrue(l.index().keys().hasExternalRows(), "opened in place");
          clusterBytes += 2L * l.index().tokenCount() * l.index().keys().rowBytes();
        }
        // a tier file as large as the context's clusters holds less than half of them (the file
        // holds keys and bookkeeping too, and room to grow): smaller than the context
        long capacity = clusterBytes;
        try (WaveBatch batch = WaveBatch.of(heads, CONFIG)) {
          int blocks = BlockCache.blocksFor(batch.tables.clusterRows + batch.tables.steadyRows,
              0.05, 8);
          List<float[]> queries = new ArrayList<>();
          float[] q = new float[batch.tables.items * SHAPE.groupSize() * SHAPE.headDim()];
          for (int s = 0; s < 8; s++) { // drifting queries: some clusters recur, others not
            for (int i = 0; i < q.length; i++) {
              q[i] = s == 0 ? (float) rnd.nextGaussian() * 1.5f
                  : 0.8f * q[i] + 0.6f * (float) rnd.nextGaussian();
            }
            queries.add(q.clone());
          }
          List<float[]> reference = new ArrayList<>();
          try (HostBlockPool pool = new HostBlockPool(new BlockCache(batch.tables.totalClusters(),
              blocks, 8), batch.tables.rowBytes())) {
            for (float[] query : queries) {
              reference.add(KernelEmulator.waveStep(batch, query, 16, pool).out());
            }
          }
          long evictions;
          try (ClusterBlockTier tier = ClusterBlockTier.open(tierFile, capacity, 2 * 16 * 128)) {
            ContextTier source = ContextTier.forLayer(tier, info.id(), c, 0);
            run(batch, queries, reference, blocks, source);
            evictions = tier.evictions();
            assertTrue(tier.byteBudget() < clusterBytes / 2, tier.byteBudget() + " of " + clusterBytes);
            assertTrue(evictions > 0, "a tier smaller than the context evicts");
            assertTrue(tier.bytes() <= capacity, tier.bytes() + " bytes held, capacity " + capacity);
            assertTrue(source.readsFromFiles() > 0);
          }
          assertTrue(Files.size(tierFile) <= capacity, "the tier file is " + Files.size(tierFile)
              + " bytes, its capacity " + capacity);
          // a later process: the file is reopened, its blocks found and served
          try (ClusterBlockTier tier = ClusterBlockTier.open(tierFile, capacity, 2 * 16 * 128)) {
            assertTrue(tier.blocks() > 0, "blocks kept in the file");
            ContextTier source = ContextTier.forLayer(tier, info.id(), c, 0);
            // the last steps first: their clusters are the ones the tier kept
            run(batch, queries.reversed(), reference.reversed(), blocks, source);
            assertTrue(source.readsFromTier() > 0, "served from the reopened tier: " + tier.blocks()
                + " blocks, " + tier.hits() + " hits, " + source.readsFromFiles() + " from files");
          }
        }
      }
    }
  }

  private static void run(WaveBatch batch, List<float[]> queries, List<float[]> reference,
      int blocks, ContextTier source) {
    try (HostBlockPool pool = new HostBlockPool(new BlockCache(batch.tables.totalClusters(),
        blocks, 8), batch.tables.rowBytes())) {
      for (int s = 0; s < queries.size(); s++) {
        assertArrayEquals(reference.get(s),
            KernelEmulator.waveStep(batch, queries.get(s), 16, pool, source).out(), "step " + s);
      }
    }
  }
}
