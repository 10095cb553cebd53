package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.FieldType;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.CheckIndex;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NoMergePolicy;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.TieredMergePolicy;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.kv.KvDType;

/**
 * Merges keep the clusters of the merged segments: every merged cluster is a source cluster minus
 * its deleted documents, its centroid is the float64 mean of its surviving keys (bit-identical to
 * the source when nothing was deleted), its value sum the sum of their values; CheckIndex passes
 * on written and merged indexes.
 */
class MergeAndCheckIndexTest {
  private static final int DIM = 12;

  @TempDir
  Path dir;

  @Test
  void mergeKeepsClustersDropsDeletedDocsAndRecomputesSummaries() throws IOException {
    Random rnd = new Random(42);
    int n = 700;
    float[][] keys = new float[n][];
    float[][] values = new float[n][];
    WaveVectorsFormat format = new WaveVectorsFormat(
        new WaveVectorsFormat.Settings(96, 6, 4, KvDType.FLOAT32, 0.1, 2));
    try (Directory d = new MMapDirectory(dir)) {
      IndexWriterConfig c = new IndexWriterConfig()
          .setCodec(new WaveCodec(format, f -> true))
          .setMaxBufferedDocs(60)
          .setMergePolicy(NoMergePolicy.INSTANCE)
          .setUseCompoundFile(false);
      Set<Integer> deleted = new HashSet<>();
      Map<Set<Integer>, float[]> sourceCentroids = new HashMap<>();
      Set<Set<Integer>> sourceClusters = new HashSet<>();
      Set<Set<Integer>> sourceSegments = new HashSet<>();
      try (IndexWriter w = new IndexWriter(d, c)) {
        for (int i = 0; i < n; i++) {
          keys[i] = gaussian(rnd, DIM, 1 + i % 3);
          values[i] = gaussian(rnd, DIM, 1);
          w.addDocument(doc(i, keys[i], values[i]));
        }
        w.commit();
      }
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertTrue(r.leaves().size() >= 8, "several flushed segments");
        for (LeafReaderContext leaf : r.leaves()) {
          WaveField f = WaveVectorsReader.waveField(leaf.reader(), "k");
          assertTrue(f.paired(), "keys and values are stored paired");
          int[] ids = ids(leaf.reader());
          for (int s = 0; s < f.segmentCount(); s++) {
            Set<Integer> seg = new HashSet<>();
            for (int cl = f.segmentFirstCluster(s); cl < f.segmentFirstCluster(s + 1); cl++) {
              Set<Integer> members = members(f, cl, ids);
              sourceClusters.add(members);
              sourceCentroids.put(members, f.centroid(cl));
              seg.addAll(members);
            }
            sourceSegments.add(seg);
          }
        }
      }
      try (CheckIndex check = new CheckIndex(d)) {
        assertTrue(check.checkIndex().clean, "CheckIndex on the flushed index");
      }
      IndexWriterConfig mergeConfig = new IndexWriterConfig()
          .setCodec(new WaveCodec(format, f -> true))
          .setMergePolicy(new TieredMergePolicy())
          .setUseCompoundFile(false);
      try (IndexWriter w = new IndexWriter(d, mergeConfig)) {
        for (int i = 0; i < n / 4; i++) {
          int id = rnd.nextInt(n);
          deleted.add(id);
          w.deleteDocuments(new Term("id", Integer.toString(id)));
        }
        w.forceMerge(1);
        w.commit();
      }
      try (CheckIndex check = new CheckIndex(d)) {
        assertTrue(check.checkIndex().clean, "CheckIndex on the merged index");
      }
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(1, r.leaves().size());
        LeafReader leaf = r.leaves().get(0).reader();
        WaveField f = WaveVectorsReader.waveField(leaf, "k");
        assertTrue(f.paired());
        assertEquals(n - deleted.size(), f.size());
        int[] ids = ids(leaf);
        Set<Set<Integer>> expected = new HashSet<>();
        for (Set<Integer> cl : sourceClusters) {
          Set<Integer> live = new TreeSet<>(cl);
          live.removeAll(deleted);
          if (!live.isEmpty()) {
            expected.add(live);
          }
        }
        Set<Set<Integer>> merged = new HashSet<>();
        int unchanged = 0;
        List<Set<Integer>> segmentsAfter = new ArrayList<>();
        for (int s = 0; s < f.segmentCount(); s++) {
          float[] sums = f.valueSums(s);
          Set<Integer> seg = new HashSet<>();
          for (int cl = f.segmentFirstCluster(s); cl < f.segmentFirstCluster(s + 1); cl++) {
            Set<Integer> members = members(f, cl, ids);
            merged.add(new TreeSet<>(members));
            seg.addAll(members);
            double[] mean = new double[DIM];
            double[] sum = new double[DIM];
            for (int id : members) {
              for (int t = 0; t < DIM; t++) {
                mean[t] += keys[id][t] / members.size();
                sum[t] += values[id][t];
              }
            }
            float[] centroid = f.centroid(cl);
            int local = cl - f.segmentFirstCluster(s);
            for (int t = 0; t < DIM; t++) {
              assertEquals(mean[t], centroid[t], 1e-5, "centroid of cluster " + cl);
              assertEquals(sum[t], sums[local * DIM + t], 1e-4, "value sum of cluster " + cl);
            }
            float[] source = sourceCentroids.get(members);
            if (source != null) {
              unchanged++;
              assertArrayEquals(source, centroid, 0f, "an untouched cluster keeps its centroid");
            }
          }
          segmentsAfter.add(seg);
        }
        assertEquals(expected, merged, "merged clusters = source clusters minus deleted docs");
        assertTrue(unchanged > 0 && unchanged < merged.size(), "some clusters lost members");
        for (Set<Integer> seg : segmentsAfter) {
          boolean fromOneSource = false;
          for (Set<Integer> src : sourceSegments) {
            fromOneSource |= src.containsAll(seg);
          }
          assertTrue(fromOneSource, "a merged wave segment comes from one source wave segment");
        }
        // A kNN search on the paired value field is exact (its clusters are the keys').
        float[] target = gaussian(new Random(9), DIM, 1);
        var hits = new org.apache.lucene.search.IndexSearcher(r).search(
            new org.apache.lucene.search.KnnFloatVectorQuery("v", target, 5), 5).scoreDocs;
        java.util.List<Double> dists = new java.util.ArrayList<>();
        for (int id = 0; id < n; id++) {
          if (!deleted.contains(id)) {
            double dd = 0;
            for (int t = 0; t < DIM; t++) {
              dd += (values[id][t] - (double) target[t]) * (values[id][t] - target[t]);
            }
            dists.add(dd);
          }
        }
        java.util.Collections.sort(dists);
        for (int i = 0; i < 5; i++) {
          int id = ids[hits[i].doc];
          double dd = 0;
          for (int t = 0; t < DIM; t++) {
            dd += (values[id][t] - (double) target[t]) * (values[id][t] - target[t]);
          }
          assertEquals(dists.get(i), dd, 1e-4, "value-field hit " + i + " is the exact neighbour");
        }
        // The values read back are the indexed ones, for the surviving docs.
        var vv = leaf.getFloatVectorValues("v");
        var it = vv.iterator();
        for (int doc = it.nextDoc(); doc != org.apache.lucene.search.DocIdSetIterator.NO_MORE_DOCS;
            doc = it.nextDoc()) {
          assertArrayEquals(values[ids[doc]], vv.vectorValue(it.index()), 0f);
        }
      }
    }
  }

  static Document doc(int id, float[] key, float[] value) {
    Document doc = new Document();
    doc.add(new StringField("id", Integer.toString(id), Field.Store.NO));
    doc.add(new NumericDocValuesField("idv", id));
    doc.add(new KnnFloatVectorField("k", key, pairType(WaveVectorsFormat.ATTR_VALUES, "v")));
    doc.add(new KnnFloatVectorField("v", value, pairType(WaveVectorsFormat.ATTR_KEYS, "k")));
    return doc;
  }

  static FieldType pairType(String attr, String partner) {
    FieldType t = new FieldType();
    t.setVectorAttributes(DIM, VectorEncoding.FLOAT32, VectorSimilarityFunction.EUCLIDEAN);
    t.putAttribute(attr, partner);
    t.freeze();
    return t;
  }

  static float[] gaussian(Random rnd, int d, double scale) {
    float[] v = new float[d];
    for (int i = 0; i < d; i++) {
      v[i] = (float) (rnd.nextGaussian() * scale);
    }
    return v;
  }

  static int[] ids(LeafReader leaf) throws IOException {
    int[] ids = new int[leaf.maxDoc()];
    NumericDocValues dv = leaf.getNumericDocValues("idv");
    for (int doc = 0; doc < leaf.maxDoc(); doc++) {
      assertTrue(dv.advanceExact(doc));
      ids[doc] = (int) dv.longValue();
    }
    return ids;
  }

  static Set<Integer> members(WaveField f, int cluster, int[] ids) {
    Set<Integer> s = new TreeSet<>();
    for (int doc : f.postings(cluster)) {
      s.add(ids[doc]);
    }
    assertEquals(f.clusterSize(cluster), s.size());
    return s;
  }
}
