package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Random;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.apache.lucene.store.NIOFSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.retroinfer.wave.Reference;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * A context written to a Lucene index and loaded back attends bit for bit like the in-memory cache
 * that produced it: same clusters, same summaries, same K/V bytes, same outputs, also after more
 * decoding, after merges with deletions, and through a non-mapping directory.
 */
class ContextRoundTripTest {
  private static final AttentionShape SHAPE = new AttentionShape(2, 6, 2, 64);

  @TempDir
  Path dir;

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void loadedContextAttendsBitForBitLikeTheWrittenOne(KvDType type) throws Exception {
    WaveConfig config = TestContexts.smallConfig(type);
    // 1500 prompt tokens: 4 wave segments; 300 decoded: 2 decode-time segments.
    TestContexts.Built built = TestContexts.build(SHAPE, config, 1500, 300, 7);
    ContextCache original = built.context();
    WaveHeadCache h00 = (WaveHeadCache) original.head(0, 0);
    int segmentsWritten = h00.index().segmentCount();
    assertTrue(segmentsWritten >= 5, "test needs several wave segments");
    try (Directory d = new MMapDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      new ContextWriter(w).write("ctx", built.tokens(), original);
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d);
          LoadedContext loaded = ContextReader.load(r, "ctx")) {
        assertEquals(config, loaded.config());
        assertEquals(SHAPE, loaded.shape());
        assertArrayEquals(built.tokens(), loaded.tokens());
        assertSameCaches(original, loaded);
        assertTrue(((WaveHeadCache) loaded.head(1, 0)).index().keys().hasExternalRows(),
            "the indexed rows are read in place from the mapped file, not copied");
        assertSameAttention(original, loaded, new Random(11), 5);
        assertTrue(fullAttentionIsClose(original, built, type), "wave output far from float64 full"
            + " attention: the context under test is broken");
        // Both continue decoding identically, through further index updates, after the caller
        // closed its reader (the context holds its own reference to it).
        ContextCache restored = loaded.toContextCache();
        r.close();
        Random rnd = new Random(3);
        float[] keys = new float[SHAPE.kvWidth()];
        float[] values = new float[SHAPE.kvWidth()];
        for (int t = 0; t < 150; t++) {
          for (int l = 0; l < SHAPE.layers(); l++) {
            for (int i = 0; i < keys.length; i++) {
              keys[i] = (float) rnd.nextGaussian();
              values[i] = (float) rnd.nextGaussian();
            }
            original.append(l, keys, values);
            restored.append(l, keys, values);
          }
        }
        assertTrue(((WaveHeadCache) restored.head(1, 1)).index().segmentCount()
            > segmentsWritten, "decoding went on through an index update");
        assertSameCaches(original, (l, h) -> (WaveHeadCache) restored.head(l, h));
        assertSameAttention(original, restored, new Random(12), 3);
        restored.close();
      }
    } finally {
      original.close();
    }
  }

  @Test
  void mergesWithDeletionsKeepTheContextBitForBit() throws Exception {
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16);
    TestContexts.Built a = TestContexts.build(SHAPE, config, 900, 40, 21);
    TestContexts.Built b = TestContexts.build(SHAPE, config, 700, 0, 22);
    TestContexts.Built c = TestContexts.build(SHAPE, config, 500, 0, 23);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      ContextWriter cw = new ContextWriter(w);
      cw.write("a", a.tokens(), a.context());
      cw.write("b", b.tokens(), b.context());
      cw.write("c", c.tokens(), c.context());
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(java.util.List.of("a", "b", "c"), ContextReader.contextIds(r));
      }
      cw.delete("b");
      w.forceMerge(1);
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(1, r.leaves().size());
        assertFalse(ContextReader.contains(r, "b"));
        assertEquals(java.util.List.of("a", "c"), ContextReader.contextIds(r));
        for (TestContexts.Built x : new TestContexts.Built[] {a, c}) {
          String id = x == a ? "a" : "c";
          try (LoadedContext loaded = ContextReader.load(r, id)) {
            assertSameCaches(x.context(), loaded);
            assertSameAttention(x.context(), loaded, new Random(5), 3);
          }
        }
        // Deleted documents are gone from the merged postings: only a's and c's tokens remain.
        LeafReaderContext leaf = r.leaves().get(0);
        WaveField f = WaveVectorsReader.waveField(leaf.reader(), ContextFields.keyField(1, 0));
        assertEquals(a.tokens().length + c.tokens().length, f.size());
        // The cluster-level API hands out a cluster's K/V as slices of the mapped file, equal to
        // the rows of the in-memory index that holds the same cluster.
        WaveHeadCache ha = (WaveHeadCache) a.context().head(1, 0);
        WaveIndex ia = ha.index();
        int matched = 0;
        for (int cl = 0; cl < f.clusterCount(); cl++) {
          java.lang.foreign.MemorySegment keys = f.clusterKeys(cl);
          assertTrue(keys.isMapped() && keys.isReadOnly(), "a view of the mapped file");
          for (int ic = 0; ic < ia.clusterCount(); ic++) {
            if (ia.clusterSize(ic) == f.clusterSize(cl)
                && ia.keys().rows(ia.clusterStart(ic), ia.clusterStart(ic + 1)).mismatch(keys) == -1
                && ia.values().rows(ia.clusterStart(ic), ia.clusterStart(ic + 1))
                    .mismatch(f.clusterValues(cl)) == -1) {
              matched++;
            }
          }
        }
        assertEquals(ia.clusterCount(), matched, "every cluster of a is one contiguous block");
      }
    } finally {
      a.context().close();
      b.context().close();
      c.context().close();
    }
  }

  @Test
  void contextsWithoutAnIndexRoundTrip() throws Exception {
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16);
    // Shorter than S + W + U: no index, attended exactly. And one whose prefill never ended.
    TestContexts.Built shortOne = TestContexts.build(SHAPE, config, 100, 0, 41);
    ContextCache unfinished = new org.retroinfer.wave.WaveAttention(config).newContext(SHAPE);
    float[] k = new float[SHAPE.kvWidth()];
    float[] v = new float[SHAPE.kvWidth()];
    Random rnd = new Random(43);
    for (int p = 0; p < 3; p++) { // fewer tokens than sinks
      for (int l = 0; l < SHAPE.layers(); l++) {
        for (int i = 0; i < k.length; i++) {
          k[i] = (float) rnd.nextGaussian();
          v[i] = (float) rnd.nextGaussian();
        }
        unfinished.append(l, k, v);
      }
    }
    try (Directory d = new MMapDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      ContextWriter cw = new ContextWriter(w);
      cw.write("short", shortOne.tokens(), shortOne.context());
      cw.write("tiny", new int[] {1, 2, 3}, unfinished);
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        try (LoadedContext loaded = ContextReader.load(r, "short")) {
          assertEquals(0, loaded.layout(0, 0).index().segmentCount());
          assertSameCaches(shortOne.context(), loaded);
          assertSameAttention(shortOne.context(), loaded, new Random(1), 2);
        }
        try (LoadedContext loaded = ContextReader.load(r, "tiny")) {
          assertFalse(loaded.prefillDone());
          assertArrayEquals(new int[] {1, 2, 3}, loaded.tokens());
          assertSameCaches(unfinished, loaded);
          assertSameAttention(unfinished, loaded, new Random(2), 2);
        }
      }
    } finally {
      shortOne.context().close();
      unfinished.close();
    }
  }

  @Test
  void loadsThroughADirectoryThatDoesNotMapFiles() throws Exception {
    WaveConfig config = TestContexts.smallConfig(KvDType.FLOAT16);
    TestContexts.Built built = TestContexts.build(SHAPE, config, 800, 0, 31);
    try (Directory d = new NIOFSDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      new ContextWriter(w).write("x", built.tokens(), built.context());
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d);
          LoadedContext loaded = ContextReader.load(r, "x")) {
        assertSameCaches(built.context(), loaded);
        assertSameAttention(built.context(), loaded, new Random(8), 2);
      }
    } finally {
      built.context().close();
    }
  }

  static void assertSameCaches(ContextCache original, LoadedContext loaded) {
    assertSameCaches(original, (l, h) -> (WaveHeadCache) loaded.head(l, h));
  }

  static void assertSameCaches(ContextCache original,
      java.util.function.BiFunction<Integer, Integer, WaveHeadCache> other) {
    AttentionShape shape = original.shape();
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        WaveHeadCache a = (WaveHeadCache) original.head(l, h);
        WaveHeadCache b = other.apply(l, h);
        String where = "layer " + l + ", head " + h;
        assertEquals(a.size(), b.size(), where);
        assertEquals(a.prefillDone(), b.prefillDone(), where);
        assertSameRows(a.sinkKeys(), b.sinkKeys(), where + " sink keys");
        assertSameRows(a.sinkValues(), b.sinkValues(), where + " sink values");
        assertSameRows(a.tailKeys(), b.tailKeys(), where + " tail keys");
        assertSameRows(a.tailValues(), b.tailValues(), where + " tail values");
        WaveIndex ia = a.index();
        WaveIndex ib = b.index();
        assertEquals(ia.segmentCount(), ib.segmentCount(), where);
        assertArrayEquals(ia.keyCentre(), ib.keyCentre(), where + " key centre");
        for (int s = 0; s < ia.segmentCount(); s++) {
          ClusteredSegment sa = ia.segment(s);
          ClusteredSegment sb = ib.segment(s);
          assertEquals(sa.firstPosition(), sb.firstPosition(), where);
          assertArrayEquals(sa.order(), sb.order(), where + " segment " + s + " order");
          assertArrayEquals(sa.offsets(), sb.offsets(), where + " segment " + s + " offsets");
          assertArrayEquals(sa.centroids(), sb.centroids(), 0f, where + " centroids");
          assertArrayEquals(sa.valueSums(), sb.valueSums(), 0f, where + " value sums");
          assertArrayEquals(sa.spreads().spreads(), sb.spreads().spreads(), 0f,
              where + " segment " + s + " cluster spreads");
          assertArrayEquals(sa.spreads().deviationSums(), sb.spreads().deviationSums(), 0d,
              where + " segment " + s + " deviation sums");
        }
        assertArrayEquals(ia.spreads(), ib.spreads(), 0f, where + " spreads");
        assertArrayEquals(ia.spreadShape(), ib.spreadShape(), 0f, where + " spread shape");
        assertSameRows(ia.keys(), ib.keys(), where + " indexed keys");
        assertSameRows(ia.values(), ib.values(), where + " indexed values");
      }
    }
  }

  private static void assertSameRows(VectorStore a, VectorStore b, String what) {
    assertEquals(a.size(), b.size(), what + " rows");
    assertEquals(a.type(), b.type(), what);
    // region by region: an opened context reads its indexed rows in place, block by block
    for (int from = 0; from < a.size(); ) {
      int to = Math.min(a.oneRegionEnd(from, a.size()), b.oneRegionEnd(from, b.size()));
      assertEquals(-1L, a.rows(from, to).mismatch(b.rows(from, to)), what + " bytes of rows ["
          + from + ", " + to + ")");
      from = to;
    }
  }

  /**
   * Outputs of both contexts for fresh random queries, compared bit for bit. wave-core's kernels
   * may round differently while the JIT moves them from one tier to the next (the Vector API's
   * lane reductions are not ordered the same in every tier), so a comparison is repeated (the
   * original evaluated before and after the loaded context) until all three agree; differing data
   * would differ on every attempt.
   */
  static void assertSameAttention(ContextCache a, Object b, Random rnd, int queries) {
    AttentionShape shape = a.shape();
    int width = shape.queryWidth();
    for (int q = 0; q < queries; q++) {
      float[] query = new float[width];
      for (int i = 0; i < width; i++) {
        query[i] = (float) (rnd.nextGaussian() * 1.5);
      }
      for (int l = 0; l < shape.layers(); l++) {
        float[] before = new float[width];
        float[] after = new float[width];
        float[] loaded = new float[width];
        for (int attempt = 0; attempt < 8; attempt++) {
          a.attend(l, query, before);
          attend(b, shape, l, query, loaded);
          a.attend(l, query, after);
          if (java.util.Arrays.equals(before, after) && java.util.Arrays.equals(before, loaded)) {
            break;
          }
        }
        for (int i = 0; i < width; i++) {
          assertEquals(Float.floatToIntBits(before[i]), Float.floatToIntBits(loaded[i]),
              "layer " + l + " output " + i + ": " + before[i] + " vs " + loaded[i]);
        }
      }
    }
  }

  private static void attend(Object ctx, AttentionShape shape, int layer, float[] query,
      float[] out) {
    if (ctx instanceof LoadedContext lc) {
      int gw = shape.groupSize() * shape.headDim();
      for (int h = 0; h < shape.kvHeads(); h++) {
        lc.head(layer, h).attend(query, h * gw, out, h * gw);
      }
    } else {
      ((ContextCache) ctx).attend(layer, query, out);
    }
  }

  /** Sanity of the workload itself: wave output is close to float64 full attention. */
  private static boolean fullAttentionIsClose(ContextCache ctx, TestContexts.Built built,
      KvDType type) {
    WaveHeadCache head = (WaveHeadCache) ctx.head(0, 0);
    var kv = built.kv()[0][0];
    int d = SHAPE.headDim();
    int n = head.size();
    float[] keys = new float[n * d];
    float[] values = new float[n * d];
    for (int i = 0; i < n * d; i++) {
      keys[i] = type.round(kv.keys[i]);
      values[i] = type.round(kv.values[i]);
    }
    float[] q = kv.query(SHAPE.groupSize());
    float[] out = new float[q.length];
    head.attend(q, 0, out, 0);
    double worst = 0;
    double norm = 0;
    for (int h = 0; h < SHAPE.groupSize(); h++) {
      double[] ref = Reference.attention(q, h * d, keys, values, d, n);
      worst = Math.max(worst, Reference.maxAbsDiff(ref, out, h * d));
      for (double x : ref) {
        norm = Math.max(norm, Math.abs(x));
      }
    }
    return worst < 0.25 * norm;
  }
}
