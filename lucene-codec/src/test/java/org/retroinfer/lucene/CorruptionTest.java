package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.lucene.codecs.CodecUtil;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.MMapDirectory;
import org.apache.lucene.store.NIOFSDirectory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * A flipped byte or a truncated file, in any file of the format, is reported as corruption
 * ({@link CorruptIndexException}, or {@link EOFException} for a file cut inside its header) and
 * never served: whatever is read before the damage is detected equals the original, and
 * {@code checkIntegrity} then reports it.
 */
class CorruptionTest {
  private static final String[] EXTENSIONS = {WaveVectorsFormat.META_EXTENSION,
      WaveVectorsFormat.CLUSTERS_EXTENSION, WaveVectorsFormat.DATA_EXTENSION};

  @TempDir
  static Path root;
  static Path original;
  static List<String> served;

  @BeforeAll
  static void writeIndex() throws IOException {
    original = root.resolve("original");
    WaveConfig config = WaveConfig.builder().kvType(KvDType.BFLOAT16).segmentTokens(96)
        .updateTokens(48).windowTokens(16).tokensPerCluster(4).build();
    TestContexts.Built built = TestContexts.build(new AttentionShape(1, 2, 1, 16), config, 360, 0, 4);
    try (Directory d = FSDirectory.open(original); IndexWriter w = TestContexts.writer(d)) {
      new ContextWriter(w).write("c", built.tokens(), built.context());
      w.forceMerge(1); // one segment: every file of the format holds every kind of block
      w.commit();
    } finally {
      built.context().close();
    }
    try (Directory d = new MMapDirectory(original)) {
      served = serve(d);
    }
  }

  /** Everything the index serves: all vectors, the loaded context, kNN hits. */
  static List<String> serve(Directory d) throws IOException {
    List<String> out = new ArrayList<>();
    try (DirectoryReader r = DirectoryReader.open(d)) {
      for (LeafReaderContext leaf : r.leaves()) {
        for (FieldInfo fi : leaf.reader().getFieldInfos()) {
          FloatVectorValues v = leaf.reader().getFloatVectorValues(fi.name);
          if (v == null) {
            continue;
          }
          var it = v.iterator();
          for (int doc = it.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = it.nextDoc()) {
            out.add(fi.name + " " + doc + " " + java.util.Arrays.toString(v.vectorValue(it.index())));
          }
        }
        WaveField f = WaveVectorsReader.waveField(leaf.reader(), ContextFields.keyField(0, 0));
        for (int c = 0; c < f.clusterCount(); c++) {
          out.add("centroid " + c + java.util.Arrays.toString(f.centroid(c)) + f.postings(c));
        }
        for (int s = 0; s < f.segmentCount(); s++) {
          out.add("sums " + s + java.util.Arrays.toString(f.valueSums(s)));
        }
      }
      try (LoadedContext c = ContextReader.load(r, "c")) {
        WaveHeadCache h = (WaveHeadCache) c.head(0, 0);
        for (VectorStore s : new VectorStore[] {h.sinkKeys(), h.sinkValues(), h.tailKeys(),
            h.tailValues(), h.index().keys(), h.index().values(), h.index().centroids(),
            h.index().valueSums()}) {
          try (VectorStore all = VectorStore.allocate(s.dim(), s.type(), Math.max(1, s.size()))) {
            all.appendFrom(s, 0, s.size()); // an opened context's rows are in several blocks
            out.add(s + " " + java.util.HexFormat.of().formatHex(all.memory().toArray(
                java.lang.foreign.ValueLayout.JAVA_BYTE)));
          }
        }
      }
      float[] q = new float[16];
      q[3] = 1;
      for (ScoreDoc sd : new IndexSearcher(r).search(
          new KnnFloatVectorQuery(ContextFields.keyField(0, 0), q, 7), 7).scoreDocs) {
        out.add("hit " + sd.doc + " " + sd.score);
      }
    }
    return out;
  }

  private static Path fileOf(Path dir, String extension) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      List<Path> matches = files.filter(p -> p.toString().endsWith("." + extension)).toList();
      assertEquals(1, matches.size(), "one ." + extension + " file in " + dir);
      return matches.get(0);
    }
  }

  private static Path copy(String name) throws IOException {
    Path dst = root.resolve(name);
    Files.createDirectories(dst);
    try (Stream<Path> files = Files.list(original)) {
      for (Path p : files.toList()) {
        Files.copy(p, dst.resolve(p.getFileName()));
      }
    }
    return dst;
  }

  /** Either the damage is reported, or only original data is served and checkIntegrity reports. */
  private static void assertDetected(Path dir, boolean mmap, String what) throws IOException {
    try (Directory d = mmap ? new MMapDirectory(dir) : new NIOFSDirectory(dir)) {
      List<String> got;
      try {
        got = serve(d);
      } catch (CorruptIndexException | EOFException e) {
        return; // reported
      }
      assertEquals(served, got, what + ": damaged data was served");
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertThrows(CorruptIndexException.class, () -> r.leaves().get(0).reader().checkIntegrity(),
            what + ": checkIntegrity missed the damage");
      }
    } catch (CorruptIndexException | EOFException e) {
      // reported while opening or checking
    }
  }

  @Test
  void everyFileDetectsFlippedBytes() throws IOException {
    Random rnd = new Random(17);
    int trial = 0;
    for (String ext : EXTENSIONS) {
      long length = Files.size(fileOf(original, ext));
      List<Long> positions = new ArrayList<>(List.of(0L, 20L, length / 2, length - 1,
          length - CodecUtil.footerLength()));
      for (int i = 0; i < 25; i++) {
        positions.add((long) rnd.nextInt((int) length));
      }
      for (long pos : positions) {
        Path dir = copy("flip" + trial++);
        Path file = fileOf(dir, ext);
        byte[] bytes = Files.readAllBytes(file);
        bytes[(int) pos] ^= (byte) (1 << rnd.nextInt(8));
        Files.write(file, bytes);
        assertDetected(dir, trial % 2 == 0, "flip at " + pos + " of ." + ext);
      }
    }
  }

  @Test
  void everyFileDetectsTruncation() throws IOException {
    int trial = 0;
    for (String ext : EXTENSIONS) {
      long length = Files.size(fileOf(original, ext));
      for (long keep : new long[] {0, 10, length / 2, length - 1}) {
        Path dir = copy("cut" + trial++);
        Path file = fileOf(dir, ext);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, (int) keep));
        assertDetected(dir, trial % 2 == 0, "truncated ." + ext + " to " + keep);
      }
    }
  }

  /**
   * A cluster file whose checksum is right but that holds a non-finite value sum (a writer's bug,
   * not a flipped bit) is refused when the segment opens: an index takes the summaries it reads
   * without checking them again.
   */
  @Test
  void aNonFiniteValueSumWithAValidChecksumIsRefusedAtOpen() throws IOException {
    Path dir = copy("nan-sum");
    String key = ContextFields.keyField(0, 0);
    long at;
    try (Directory d = FSDirectory.open(dir); DirectoryReader r = DirectoryReader.open(d)) {
      WaveField f = WaveVectorsReader.waveField(r.leaves().get(0).reader(), key);
      int clusters = f.segmentFirstCluster(1) - f.segmentFirstCluster(0);
      assertTrue(clusters >= 2, "the test needs two clusters in wave segment 0");
      // wave segment 0's block: offsets, centroids, then the value sums; the 3rd component of
      // the 2nd cluster's sum
      at = f.clusterBlockOffset(0) + 4L * (clusters + 1) + 4L * clusters * f.dimension()
          + 4L * (f.dimension() + 2);
    }
    Path file = fileOf(dir, WaveVectorsFormat.CLUSTERS_EXTENSION);
    byte[] bytes = Files.readAllBytes(file);
    java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN)
        .putFloat((int) at, Float.NaN);
    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
    crc.update(bytes, 0, bytes.length - 8); // the footer's checksum covers all before it
    java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.BIG_ENDIAN)
        .putLong(bytes.length - 8, crc.getValue());
    Files.write(file, bytes);
    try (Directory d = FSDirectory.open(dir)) {
      CorruptIndexException e = assertThrows(CorruptIndexException.class,
          () -> DirectoryReader.open(d).close());
      assertTrue(e.getMessage().contains("value sum of cluster 1 is not finite"), e.getMessage());
    }
  }

  @Test
  void aDamagedVectorBlockIsNeverServedEvenBeforeCheckIntegrity() throws IOException {
    // A flip inside the key block of the data file: open succeeds (the data file is verified
    // lazily, block by block), but the first read of that block fails.
    Path dir = copy("lazy");
    Path file = fileOf(dir, WaveVectorsFormat.DATA_EXTENSION);
    byte[] bytes = Files.readAllBytes(file);
    int pos = CodecUtil.indexHeaderLength(WaveVectorsFormat.DATA_CODEC, "") + 100;
    bytes[pos + 64] ^= 0x10; // somewhere in the first blocks, past the header and alignment
    Files.write(file, bytes);
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      assertThrows(CorruptIndexException.class, () -> {
        for (LeafReaderContext leaf : r.leaves()) {
          for (FieldInfo fi : leaf.reader().getFieldInfos()) {
            FloatVectorValues v = leaf.reader().getFloatVectorValues(fi.name);
            if (v != null) {
              for (int ord = 0; ord < v.size(); ord++) {
                v.vectorValue(ord);
              }
            }
          }
        }
      });
      assertThrows(CorruptIndexException.class, () -> ContextReader.load(r, "c").close());
      assertFalse(served.isEmpty());
    }
  }

  @Test
  void originalIndexIsClean() throws IOException {
    try (Directory d = new MMapDirectory(original)) {
      assertEquals(served, serve(d));
      try (org.apache.lucene.index.CheckIndex check = new org.apache.lucene.index.CheckIndex(d)) {
        assertTrue(check.checkIndex().clean);
      }
    } catch (CorruptIndexException e) {
      fail(e);
    }
  }
}
