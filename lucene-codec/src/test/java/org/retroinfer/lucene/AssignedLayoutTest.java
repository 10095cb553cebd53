package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.CheckIndex;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.KnnVectorValues;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.LogDocMergePolicy;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.store.ByteBuffersDirectory;
import org.apache.lucene.store.Directory;
import org.apache.lucene.util.Bits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * The assigned layout keeps the host's clusters whatever the index does: a writer that flushes
 * every few documents (so that flushes fall between, never inside, the blocks of a context), merges
 * on its own, other documents between the contexts, a deleted context, a forced merge. The
 * reference is the in-memory wave cache that produced the context (clusters, centroids, value
 * sums, spreads and K/V bytes compared bit for bit, and attention outputs).
 */
class AssignedLayoutTest {
  private static final AttentionShape SHAPE = new AttentionShape(2, 4, 2, 32);

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void clustersAreTheHostsHoweverTheIndexFlushesAndMerges(KvDType type) throws Exception {
    WaveConfig config = TestContexts.smallConfig(type);
    TestContexts.Built a = TestContexts.build(SHAPE, config, 1500, 300, 7);
    TestContexts.Built b = TestContexts.build(SHAPE, config, 900, 0, 8);
    TestContexts.Built c = TestContexts.build(SHAPE, config, 500, 0, 9);
    Random rnd = new Random(type.ordinal() + 1);
    int flushEvery = 20 + rnd.nextInt(400);
    long tagA = AssignedLayout.randomTagBase(100);
    long tagB = tagA + 7; // adjacent tag ranges: the contexts are told apart by their runs
    try (Directory dir = new ByteBuffersDirectory()) {
      IndexWriter w = new IndexWriter(dir, config(flushEvery));
      ContextWriter cw = new ContextWriter(w);
      noise(w, rnd.nextInt(50));
      cw.writeAssigned("a", a.tokens(), a.context(), tagA);
      noise(w, rnd.nextInt(50));
      cw.writeAssigned("c", c.tokens(), c.context(), tagB + 50);
      cw.writeAssigned("b", b.tokens(), b.context(), tagB);
      noise(w, rnd.nextInt(50));
      cw.delete("c");
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(dir)) {
        assertTrue(r.leaves().size() > 3, "the writer flushed every " + flushEvery + " documents:"
            + " expected several segments, got " + r.leaves().size());
        check(r, "a", a, tagA);
        check(r, "b", b, tagB);
        assertFalse(ContextReader.contains(r, "c"));
        checkVectorValues(r, "a", a, tagA);
      }
      w.forceMerge(1);
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(dir)) {
        assertEquals(1, r.leaves().size());
        check(r, "a", a, tagA);
        check(r, "b", b, tagB);
        checkVectorValues(r, "b", b, tagB);
      }
      w.close();
      CheckIndex.Status status;
      try (CheckIndex ci = new CheckIndex(dir)) {
        status = ci.checkIndex();
      }
      assertTrue(status.clean, "CheckIndex");
    } finally {
      a.context().close();
      b.context().close();
      c.context().close();
    }
  }

  private static IndexWriterConfig config(int flushEvery) {
    IndexWriterConfig c = new IndexWriterConfig();
    c.setCodec(new WaveCodec());
    c.setMaxBufferedDocs(flushEvery);
    c.setRAMBufferSizeMB(IndexWriterConfig.DISABLE_AUTO_FLUSH);
    LogDocMergePolicy mp = new LogDocMergePolicy();
    mp.setMergeFactor(3);
    mp.setMinMergeDocs(10);
    c.setMergePolicy(mp);
    return c;
  }

  private static void noise(IndexWriter w, int docs) throws IOException {
    for (int i = 0; i < docs; i++) {
      Document d = new Document();
      d.add(new StringField("noise", Integer.toString(i), Field.Store.NO));
      w.addDocument(d);
    }
  }

  /** The loaded context is the host's; each of its blocks is one wave segment of one leaf. */
  private static void check(DirectoryReader r, String id, TestContexts.Built built, long firstTag)
      throws IOException {
    AssignedLayout.ContextPlan plan;
    try (LoadedContext loaded = ContextReader.load(r, id)) {
      ContextRoundTripTest.assertSameCaches(built.context(), loaded);
      ContextRoundTripTest.assertSameAttention(built.context(), loaded, new Random(5), 3);
      assertArrayEquals(built.tokens(), loaded.tokens());
      plan = AssignedLayout.ContextPlan.of(loaded, firstTag);
    }
    // found by tags alone, positions from the blocks' document order (as in a search server's
    // shard, whose nested token documents have no position field)
    try (LoadedContext restored = AssignedLayout.restore(r, id, plan)) {
      ContextRoundTripTest.assertSameCaches(built.context(), restored);
      ContextRoundTripTest.assertSameAttention(built.context(), restored, new Random(6), 3);
    }
    AssignedLayout.ContextPlan wrongTag = new AssignedLayout.ContextPlan(plan.shape(),
        plan.config(), plan.tokens(), plan.sinks(), plan.prefillDone(), plan.centres(),
        plan.firstTag() + 1, plan.segments());
    assertThrows(org.apache.lucene.index.CorruptIndexException.class,
        () -> AssignedLayout.restore(r, id, wrongTag).close());
    HeadLayout h00 = HeadLayout.of(built.context().head(0, 0));
    int blocks = h00.index().segmentCount() + 1;
    for (int l = 0; l < SHAPE.layers(); l++) {
      for (int h = 0; h < SHAPE.kvHeads(); h++) {
        List<AssignedLayout.Piece> pieces = AssignedLayout.pieces(r,
            ContextFields.keyField(l, h), firstTag, firstTag + blocks);
        Set<Long> tags = new HashSet<>();
        for (AssignedLayout.Piece p : pieces) {
          assertTrue(tags.add(p.tag()), "tag " + p.tag() + " of context " + id + " is split over"
              + " two wave segments");
          assertTrue(p.field().assigned());
          assertEquals(SHAPE.headDim(), p.field().dimension());
          assertEquals(SHAPE.headDim() + AssignedLayout.TRAILING, p.field().vectorDimension());
        }
        assertEquals(blocks, tags.size(), "context " + id + "'s blocks");
      }
    }
  }

  /** Lucene's view gives every vector back as it was indexed, trailing components included. */
  private static void checkVectorValues(DirectoryReader r, String id, TestContexts.Built built,
      long firstTag) throws IOException {
    HeadLayout[][] heads = new HeadLayout[SHAPE.layers()][SHAPE.kvHeads()];
    for (int l = 0; l < SHAPE.layers(); l++) {
      for (int h = 0; h < SHAPE.kvHeads(); h++) {
        heads[l][h] = HeadLayout.of(built.context().head(l, h));
      }
    }
    List<AssignedLayout.Block> blocks = AssignedLayout.blocks(heads, firstTag);
    int[][] where = new int[built.tokens().length][]; // position -> {block, index}
    for (int bi = 0; bi < blocks.size(); bi++) {
      int[] positions = blocks.get(bi).positions();
      for (int i = 0; i < positions.length; i++) {
        where[positions[i]] = new int[] {bi, i};
      }
    }
    int checked = 0;
    for (LeafReaderContext leaf : r.leaves()) {
      Bits live = leaf.reader().getLiveDocs();
      var docs = leaf.reader().postings(new Term(ContextFields.CONTEXT, id));
      if (docs == null) {
        continue;
      }
      NumericDocValues pos = leaf.reader().getNumericDocValues(ContextFields.POSITION);
      FloatVectorValues keys = leaf.reader().getFloatVectorValues(ContextFields.keyField(1, 1));
      FloatVectorValues values = leaf.reader().getFloatVectorValues(ContextFields.valueField(1, 1));
      KnnVectorValues.DocIndexIterator ki = keys.iterator();
      KnnVectorValues.DocIndexIterator vi = values.iterator();
      for (int doc = docs.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = docs.nextDoc()) {
        if ((live != null && !live.get(doc)) || !pos.advanceExact(doc)) {
          continue;
        }
        int[] at = where[(int) pos.longValue()];
        AssignedLayout.Block block = blocks.get(at[0]);
        assertEquals(doc, ki.advance(doc));
        assertEquals(doc, vi.advance(doc));
        assertArrayEquals(block.vector(1, 1, false, at[1]), keys.vectorValue(ki.index()), 0f);
        assertArrayEquals(block.vector(1, 1, true, at[1]), values.vectorValue(vi.index()), 0f);
        checked++;
      }
    }
    assertEquals(built.tokens().length, checked);
  }

  @Test
  void aSearchScoresTheHeadDimAndIgnoresTheTrailingComponents() throws Exception {
    int d = 8;
    Random rnd = new Random(3);
    float[][] rows = new float[300][d];
    try (Directory dir = new ByteBuffersDirectory();
        IndexWriter w = new IndexWriter(dir, config(1000))) {
      var type = AssignedLayout.keyType("kv.k.0.0", "kv.v.0.0", d, KvDType.FLOAT32);
      for (int i = 0; i < rows.length; i++) {
        for (int t = 0; t < d; t++) {
          rows[i][t] = (float) rnd.nextGaussian();
        }
        float[] v = new float[d + AssignedLayout.TRAILING];
        AssignedLayout.encode(rows[i], d, 1234567L * (i / 100), i % 5, v);
        Document doc = new Document();
        doc.add(new KnnFloatVectorField("kv.k.0.0", v, type));
        w.addDocument(doc);
      }
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(dir)) {
        float[] q = new float[d + AssignedLayout.TRAILING];
        for (int t = 0; t < d; t++) {
          q[t] = (float) rnd.nextGaussian();
        }
        q[d] = 1e6f; // would dominate every score if it were scored
        float[] head = java.util.Arrays.copyOf(q, d);
        ScoreDoc[] hits = new IndexSearcher(r).search(new KnnFloatVectorQuery("kv.k.0.0", q, 10,
            null, WaveSearchStrategy.exactly(1000)), 10).scoreDocs;
        assertEquals(10, hits.length);
        float best = Float.NEGATIVE_INFINITY;
        for (float[] row : rows) {
          best = Math.max(best, ContextFields.KEY_SIMILARITY.compare(head, row));
        }
        assertEquals(best, hits[0].score, 0f, "the exact best inner product of the head dims");
        assertEquals(ContextFields.KEY_SIMILARITY.compare(head, rows[hits[0].doc]), hits[0].score,
            0f);
        WaveField f = WaveVectorsReader.waveField(r.leaves().get(0).reader(), "kv.k.0.0");
        assertNotNull(f);
        assertEquals(3, f.segmentCount(), "three tags, three wave segments");
        assertEquals(5, f.segmentFirstCluster(1), "five cluster ids per wave segment");
        assertThrows(IllegalArgumentException.class, () -> new IndexSearcher(r).search(
            new KnnFloatVectorQuery("kv.k.0.0", head, 10), 10), "a query without the trailing"
            + " components has the wrong dimension");
      }
    }
  }

  @Test
  void badTrailingComponentsAreRefusedAndTheWriterGoesOn() throws Exception {
    int d = 4;
    var type = AssignedLayout.keyType("kv.k.0.0", "kv.v.0.0", d, KvDType.FLOAT32);
    try (Directory dir = new ByteBuffersDirectory();
        IndexWriter w = new IndexWriter(dir, config(1000))) {
      float[][] bad = {
          {1, 2, 3, 4, 0.5f, 0, 0}, // tag not an integer
          {1, 2, 3, 4, 0, 1 << 24, 0}, // low tag half too large
          {1, 2, 3, 4, 0, 0, -2}, // cluster id below -1
          {1, 2, 3, 4, 0, 0, 1.25f}, // cluster id not an integer
      };
      for (float[] v : bad) {
        Document doc = new Document();
        doc.add(new KnnFloatVectorField("kv.k.0.0", v, type));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> w.addDocument(doc));
        assertTrue(e.getMessage().contains("kv.k.0.0"), e.getMessage());
      }
      Document ok = new Document();
      ok.add(new KnnFloatVectorField("kv.k.0.0", new float[] {1, 2, 3, 4, 0, 9, -1}, type));
      w.addDocument(ok);
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(dir)) {
        assertEquals(1, r.numDocs());
        WaveField f = WaveVectorsReader.waveField(r.leaves().get(0).reader(), "kv.k.0.0");
        assertTrue(f.steady(0));
        assertEquals(9, f.tag(0));
      }
    }
    assertThrows(IllegalArgumentException.class,
        () -> AssignedLayout.keyType("k", "v", 0, KvDType.FLOAT32));
  }
}
