package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * Contexts written by earlier versions of the format still open, attend and merge: the indexes in
 * {@code src/test/resources/format-v0} and {@code format-v1} were written by format version 0
 * (cluster blocks without the keys' spread statistics) and 1 (with them; field entries without
 * trailing components, wave segments without tags) from the same synthetic context that this test
 * builds again. A version 0 segment's statistics are computed from the stored keys when it opens;
 * the statistics, the clusters and the outputs equal the in-memory context's bit for bit; a merge
 * rewrites either in the current version.
 */
class FormatCompatibilityTest {
  /**
   * The fixtures' context: commit dfc68dc (format version 0) and commit 8d2c972 (version 1) wrote
   * {@code TestContexts.build(SHAPE, smallConfig(FLOAT16), 800, 100, 41)} with
   * {@link ContextWriter} as context "v0" (and "v1") into an {@code FSDirectory} through
   * {@code TestContexts.writer}, and committed.
   */
  private static final AttentionShape SHAPE = new AttentionShape(1, 2, 1, 32);

  @TempDir
  Path dir;

  @ParameterizedTest
  @ValueSource(ints = {0, 1})
  void anEarlierVersionsContextOpensAttendsAndMergesLikeTheInMemoryOne(int version)
      throws Exception {
    String id = "v" + version;
    Path fixture = Path.of(getClass().getResource("/format-" + id).toURI());
    try (Stream<Path> files = Files.list(fixture)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.copy(f, dir.resolve(f.getFileName()));
      }
    }
    TestContexts.Built built =
        TestContexts.build(SHAPE, TestContexts.smallConfig(KvDType.FLOAT16), 800, 100, 41);
    try (Directory d = new MMapDirectory(dir)) {
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(version, versionOf(r), "the fixture holds version " + version + " segments");
        try (LoadedContext loaded = ContextReader.load(r, id)) {
          ContextRoundTripTest.assertSameCaches(built.context(), loaded);
          ContextRoundTripTest.assertSameAttention(built.context(), loaded, new Random(1), 4);
        }
      }
      try (IndexWriter w = TestContexts.writer(d)) {
        w.forceMerge(1);
        w.commit();
      }
      try (DirectoryReader r = DirectoryReader.open(d)) {
        assertEquals(1, r.leaves().size());
        assertEquals(WaveVectorsFormat.VERSION_CURRENT, versionOf(r),
            "the merged segment is written in the current version, with the statistics");
        try (LoadedContext loaded = ContextReader.load(r, id)) {
          ContextRoundTripTest.assertSameCaches(built.context(), loaded);
          ContextRoundTripTest.assertSameAttention(built.context(), loaded, new Random(2), 4);
        }
      }
    } finally {
      built.context().close();
    }
  }

  /**
   * The format version of the leaves' wave fields (all must agree); checks that a segment has
   * stored statistics exactly when its version stores them.
   */
  private static int versionOf(DirectoryReader r) throws Exception {
    int version = -1;
    for (LeafReaderContext leaf : r.leaves()) {
      WaveField f = WaveVectorsReader.waveField(leaf.reader(), ContextFields.keyField(0, 0));
      if (f == null) {
        continue;
      }
      assertTrue(version == -1 || version == f.formatVersion(), "leaves of different versions");
      version = f.formatVersion();
      for (int s = 0; s < f.segmentCount(); s++) {
        assertEquals(version >= WaveVectorsFormat.VERSION_SPREADS, f.spreads(s) != null,
            "version " + version + ", wave segment " + s + ": stored statistics");
      }
    }
    assertTrue(version >= 0, "no wave field found");
    return version;
  }
}
