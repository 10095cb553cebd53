package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.function.IntPredicate;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.IntPoint;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.search.knn.KnnSearchStrategy;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.kv.KvDType;

/**
 * {@code KnnFloatVectorQuery} on a key field: IVF over the centroids, exact scores inside the probed
 * clusters. Checked against a float64 brute force over the same keys: probing every cluster gives
 * the exact top k, the default probing a high recall, filters and deletions are honoured.
 */
class IvfSearchTest {
  private static final int N = 6000;
  private static final int D = 64;
  private static final int K = 10;

  @TempDir
  static Path dir;
  static SyntheticKv kv;
  static Set<Integer> deleted = new HashSet<>();

  @BeforeAll
  static void index() throws IOException {
    kv = new SyntheticKv(99, N, D, 4, 16);
    WaveVectorsFormat format = new WaveVectorsFormat(new WaveVectorsFormat.Settings(2048, 16, 10,
        KvDType.FLOAT32, 0.02, 8));
    IndexWriterConfig c = new IndexWriterConfig().setCodec(new WaveCodec(format, f -> true))
        .setMaxBufferedDocs(2500);
    Random rnd = new Random(1);
    try (Directory d = new MMapDirectory(dir); IndexWriter w = new IndexWriter(d, c)) {
      for (int i = 0; i < N; i++) {
        Document doc = new Document();
        doc.add(new StringField("id", Integer.toString(i), Field.Store.NO));
        doc.add(new StoredField("idv", i));
        doc.add(new IntPoint("mod", i % 3));
        doc.add(new KnnFloatVectorField("k", Arrays.copyOfRange(kv.keys, i * D, (i + 1) * D),
            VectorSimilarityFunction.MAXIMUM_INNER_PRODUCT));
        w.addDocument(doc);
      }
      for (int i = 0; i < 200; i++) {
        int id = rnd.nextInt(N);
        deleted.add(id);
        w.deleteDocuments(new Term("id", Integer.toString(id)));
      }
      w.commit();
    }
  }

  /** Ids of the exact top k by float64 inner product among accepted, live keys. */
  private static int[] exactTopK(float[] q, IntPredicate accept) {
    double[] score = new double[N];
    Integer[] ids = new Integer[N];
    for (int i = 0; i < N; i++) {
      double s = 0;
      for (int t = 0; t < D; t++) {
        s += (double) q[t] * kv.keys[i * D + t];
      }
      score[i] = s;
      ids[i] = i;
    }
    return Arrays.stream(ids).filter(i -> !deleted.contains(i) && accept.test(i))
        .sorted((a, b) -> Double.compare(score[b], score[a])).limit(K).mapToInt(i -> i).toArray();
  }

  private static int[] search(IndexSearcher s, Query q) throws IOException {
    TopDocs td = s.search(q, K);
    int[] ids = new int[td.scoreDocs.length];
    for (int i = 0; i < ids.length; i++) {
      ScoreDoc sd = td.scoreDocs[i];
      ids[i] = s.storedFields().document(sd.doc).getField("idv").numericValue().intValue();
    }
    return ids;
  }

  private static float[] query(Random rnd) {
    float[] q = kv.query(1);
    for (int t = 0; t < D; t++) {
      q[t] += (float) rnd.nextGaussian() * 0.2f;
    }
    return q;
  }

  @Test
  void probingEveryClusterGivesTheExactTopK() throws IOException {
    Random rnd = new Random(2);
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      assertTrue(r.leaves().size() >= 2, "several segments");
      IndexSearcher s = new IndexSearcher(r);
      for (int i = 0; i < 20; i++) {
        float[] q = query(rnd);
        int[] got = search(s, new KnnFloatVectorQuery("k", q, K, null,
            new WaveSearchStrategy(1.0, 1)));
        assertArrayEquals(exactTopK(q, id -> true), got);
      }
    }
  }

  @Test
  void defaultProbingHasHighRecallAndMoreProbesNeverHurt() throws IOException {
    Random rnd = new Random(3);
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      IndexSearcher s = new IndexSearcher(r);
      int queries = 40;
      double recallDefault = 0;
      double recallFew = 0;
      double recallMany = 0;
      for (int i = 0; i < queries; i++) {
        float[] q = query(rnd);
        Set<Integer> truth = new HashSet<>();
        for (int id : exactTopK(q, x -> true)) {
          truth.add(id);
        }
        recallDefault += overlap(truth, search(s, new KnnFloatVectorQuery("k", q, K)));
        recallFew += overlap(truth, search(s, new KnnFloatVectorQuery("k", q, K, null,
            WaveSearchStrategy.exactly(1))));
        recallMany += overlap(truth, search(s, new KnnFloatVectorQuery("k", q, K, null,
            new WaveSearchStrategy(0.2, 8))));
      }
      recallDefault /= queries * K;
      recallFew /= queries * K;
      recallMany /= queries * K;
      assertTrue(recallDefault >= 0.85, "recall@10 with default probing " + recallDefault);
      assertTrue(recallMany >= recallDefault && recallDefault >= recallFew,
          "recall grows with probes: " + recallFew + " <= " + recallDefault + " <= " + recallMany);
      assertTrue(recallFew < recallMany, "one probe is worse than many: " + recallFew);
    }
  }

  @Test
  void filtersAndDeletionsAreHonoured() throws IOException {
    Random rnd = new Random(4);
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      IndexSearcher s = new IndexSearcher(r);
      for (int i = 0; i < 10; i++) {
        float[] q = query(rnd);
        int[] got = search(s, new KnnFloatVectorQuery("k", q, K, IntPoint.newExactQuery("mod", 1),
            new WaveSearchStrategy(1.0, 1)));
        assertArrayEquals(exactTopK(q, id -> id % 3 == 1), got);
        for (int id : search(s, new KnnFloatVectorQuery("k", q, K))) {
          assertTrue(!deleted.contains(id), "deleted doc " + id + " returned");
        }
      }
    }
  }

  @Test
  void otherStrategiesFallBackToTheDefaultProbing() throws IOException {
    Random rnd = new Random(5);
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      IndexSearcher s = new IndexSearcher(r);
      float[] q = query(rnd);
      assertArrayEquals(search(s, new KnnFloatVectorQuery("k", q, K)),
          search(s, new KnnFloatVectorQuery("k", q, K, null, KnnSearchStrategy.Hnsw.DEFAULT)));
      assertEquals(K, search(s, new KnnFloatVectorQuery("k", q, K)).length);
    }
  }

  private static int overlap(Set<Integer> truth, int[] got) {
    int n = 0;
    for (int id : got) {
      if (truth.contains(id)) {
        n++;
      }
    }
    return n;
  }
}
