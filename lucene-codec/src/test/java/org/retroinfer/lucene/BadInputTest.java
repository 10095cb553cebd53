package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.FieldType;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * Bad input is rejected when it is indexed, with a message that says what was wrong, and the
 * index stays usable: nothing of the rejected document is stored, keys and values stay paired.
 */
class BadInputTest {
  private static final int DIM = 8;

  @TempDir
  Path dir;

  private static IndexWriter writer(Directory d) throws IOException {
    return new IndexWriter(d, new IndexWriterConfig()
        .setCodec(new WaveCodec(new WaveVectorsFormat(), f -> true)));
  }

  private static FieldType type(int dim, String attr, String partner, String storage) {
    FieldType t = new FieldType();
    t.setVectorAttributes(dim, VectorEncoding.FLOAT32, VectorSimilarityFunction.EUCLIDEAN);
    if (attr != null) {
      t.putAttribute(attr, partner);
    }
    if (storage != null) {
      t.putAttribute(WaveVectorsFormat.ATTR_STORAGE, storage);
    }
    t.freeze();
    return t;
  }

  private static Document pair(int id, float[] key, float[] value, String storage) {
    Document doc = new Document();
    doc.add(new StringField("id", Integer.toString(id), Field.Store.NO));
    doc.add(new NumericDocValuesField("idv", id));
    doc.add(new KnnFloatVectorField("k", key, type(key.length, WaveVectorsFormat.ATTR_VALUES, "v",
        storage)));
    doc.add(new KnnFloatVectorField("v", value, type(value.length, WaveVectorsFormat.ATTR_KEYS, "k",
        storage)));
    return doc;
  }

  private static float[] random(Random rnd, int d) {
    float[] v = new float[d];
    for (int i = 0; i < d; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return v;
  }

  /** Indexes good pairs around a bad one; checks that exactly the good ones are stored, paired. */
  private void assertRejectedAndUsable(String storage, java.util.function.Consumer<Document> spoil,
      String messagePart) throws IOException {
    Random rnd = new Random(messagePart.hashCode());
    try (Directory d = new MMapDirectory(dir.resolve(Integer.toString(rnd.nextInt(1 << 20))));
        IndexWriter w = writer(d)) {
      for (int i = 0; i < 20; i++) {
        w.addDocument(pair(i, random(rnd, DIM), random(rnd, DIM), storage));
      }
      Document bad = pair(99, random(rnd, DIM), random(rnd, DIM), storage);
      spoil.accept(bad);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> w.addDocument(bad));
      assertTrue(e.getMessage().contains(messagePart), "message: " + e.getMessage());
      for (int i = 20; i < 40; i++) {
        w.addDocument(pair(i, random(rnd, DIM), random(rnd, DIM), storage));
      }
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(40, r.numDocs(), "the rejected document is not visible");
        int vectors = 0;
        for (LeafReaderContext leaf : r.leaves()) {
          WaveField f = WaveVectorsReader.waveField(leaf.reader(), "k");
          assertTrue(f.paired(), "keys and values are still paired");
          vectors += f.size();
        }
        assertEquals(40, vectors, "no vector of the rejected document was stored");
        var hits = new IndexSearcher(r).search(
            new KnnFloatVectorQuery("k", random(rnd, DIM), 5), 5);
        assertEquals(5, hits.scoreDocs.length, "the index still answers queries");
      }
    }
  }

  private static float[] vectorOf(Document doc, String field) {
    return ((KnnFloatVectorField) doc.getField(field)).vectorValue();
  }

  @Test
  void nanValueAfterAGoodKeyIsRejectedAndTheKeyTakenBack() throws IOException {
    // Lucene checks finiteness when a field is built; the array is shared, so spoil it afterwards
    // to reach the format's own check, after the document's key was already accepted.
    assertRejectedAndUsable(null, doc -> vectorOf(doc, "v")[3] = Float.NaN, "component 3 is NaN");
  }

  @Test
  void infiniteKeyIsRejected() throws IOException {
    assertRejectedAndUsable(null, doc -> vectorOf(doc, "k")[0] = Float.POSITIVE_INFINITY,
        "must have finite components");
  }

  @Test
  void float16OverflowIsRejected() throws IOException {
    assertRejectedAndUsable("FLOAT16", doc -> vectorOf(doc, "v")[1] = 1e6f, "overflows float16");
  }

  @Test
  void luceneRejectsNanWhenTheFieldIsBuilt() {
    float[] v = new float[DIM];
    v[2] = Float.NaN;
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new KnnFloatVectorField("k", v, type(DIM, null, null, null)));
    assertTrue(e.getMessage().toLowerCase(java.util.Locale.ROOT).contains("finite"), e.getMessage());
  }

  @Test
  void wrongDimensionIsRejectedAndTheIndexStaysUsable() throws IOException {
    Random rnd = new Random(5);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = writer(d)) {
      for (int i = 0; i < 10; i++) {
        w.addDocument(pair(i, random(rnd, DIM), random(rnd, DIM), null));
      }
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> w.addDocument(pair(10, random(rnd, DIM + 2), random(rnd, DIM + 2), null)));
      assertTrue(e.getMessage().contains("dimension"), e.getMessage());
      w.addDocument(pair(11, random(rnd, DIM), random(rnd, DIM), null));
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(11, r.numDocs());
        assertEquals(11, WaveVectorsReader.waveField(r.leaves().get(0).reader(), "k").size());
      }
    }
  }

  @Test
  void badFieldAttributeIsRejectedWithItsName() throws IOException {
    assertRejectedAndUsableWithBadLayout();
  }

  private void assertRejectedAndUsableWithBadLayout() throws IOException {
    Random rnd = new Random(6);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = writer(d)) {
      FieldType bogus = new FieldType(type(DIM, null, null, null));
      bogus.putAttribute(WaveVectorsFormat.ATTR_LAYOUT, "bogus");
      Document doc = new Document();
      doc.add(new KnnFloatVectorField("x", random(rnd, DIM), bogus));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> w.addDocument(doc));
      assertTrue(e.getMessage().contains("'bogus' is not one of split, segment, steady"),
          e.getMessage());
      w.addDocument(pair(1, random(rnd, DIM), random(rnd, DIM), null));
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(1, r.numDocs());
      }
    }
  }

  @Test
  void contextOfAnotherHeadDimIsRejectedAndStoredContextsStayLoadable() throws IOException {
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16);
    AttentionShape small = new AttentionShape(1, 2, 1, 32);
    AttentionShape other = new AttentionShape(1, 2, 1, 16);
    TestContexts.Built a = TestContexts.build(small, config, 600, 0, 1);
    TestContexts.Built b = TestContexts.build(other, config, 600, 0, 2);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      ContextWriter cw = new ContextWriter(w);
      cw.write("a", a.tokens(), a.context());
      w.commit();
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> cw.write("b", b.tokens(), b.context()));
      assertTrue(e.getMessage().contains("context 'b' was not stored")
          && e.getMessage().contains("head dim"), e.getMessage());
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertTrue(!ContextReader.contains(r, "b"));
        try (LoadedContext loaded = ContextReader.load(r, "a")) {
          assertEquals(a.tokens().length, loaded.length());
        }
      }
    } finally {
      a.context().close();
      b.context().close();
    }
  }

  @Test
  void contextWriterRejectsWritersThatCouldSplitAWaveSegment() throws IOException {
    try (Directory d = new MMapDirectory(dir)) {
      IndexWriterConfig c = new IndexWriterConfig().setCodec(new WaveCodec());
      try (IndexWriter w = new IndexWriter(d, c)) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> new ContextWriter(w));
        assertTrue(e.getMessage().contains("flushes by RAM usage"), e.getMessage());
      }
      try (IndexWriter w = new IndexWriter(d, new IndexWriterConfig())) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> new ContextWriter(w));
        assertTrue(e.getMessage().contains("does not store the context fields"), e.getMessage());
      }
    }
  }

  @Test
  void aFlushInsideAWaveSegmentIsDetectedAndLeavesNothing() throws IOException {
    // One wave segment of ~3400 tokens x 64 dims: 0.87 MB of bf16 K/V, under a 1 MB per-thread
    // limit, but the buffers (capacity doubling, doc values, postings) exceed it: Lucene flushes
    // in the middle, which would cluster two halves instead of wave-core's segment.
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16).toBuilder().segmentTokens(3600)
        .build();
    TestContexts.Built a = TestContexts.build(new AttentionShape(1, 1, 1, 64), config, 3500, 0, 5);
    try (Directory d = new MMapDirectory(dir)) {
      IndexWriterConfig c = ContextWriter.indexWriterConfig().setRAMPerThreadHardLimitMB(1);
      try (IndexWriter w = new IndexWriter(d, c)) {
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> new ContextWriter(w).write("a", a.tokens(), a.context()));
        assertTrue(e.getMessage().contains("flushed in the middle of wave segment 0"),
            e.getMessage());
        w.commit();
        try (DirectoryReader r = DirectoryReader.open(d)) {
          assertEquals(0, r.numDocs(), "nothing of the context is visible");
        }
      }
    } finally {
      a.context().close();
    }
  }

  @Test
  void contextWithMismatchedTokenIdsIsRejectedBeforeAnythingIsWritten() throws IOException {
    WaveConfig config = TestContexts.smallConfig(KvDType.FLOAT32);
    TestContexts.Built a = TestContexts.build(new AttentionShape(1, 1, 1, 16), config, 300, 0, 3);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = TestContexts.writer(d)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> new ContextWriter(w).write("a", new int[5], a.context()));
      assertTrue(e.getMessage().contains("5 token ids for a context of 300 tokens"),
          e.getMessage());
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(0, r.numDocs());
      }
    } finally {
      a.context().close();
    }
  }
}
