package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.CodecReader;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FilterLeafReader;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * {@link SegmentChecksums} catches a changed byte in every file that Lucene would decode unverified
 * (stored fields, postings, doc values), naming the file, and leaves the K/V data, which the format
 * verifies block by block, for later; {@link DocumentChecksum} survives the trip through an index
 * and catches a changed stored value.
 */
class SegmentChecksumsTest {
  @TempDir static Path root;
  static Path original;

  @BeforeAll
  static void writeIndex() throws IOException {
    original = root.resolve("original");
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16);
    TestContexts.Built built = TestContexts.build(new AttentionShape(1, 2, 1, 16), config, 500, 0, 7);
    try (Directory d = FSDirectory.open(original); IndexWriter w = TestContexts.writer(d)) {
      new ContextWriter(w).write("c", built.tokens(), built.context());
      w.forceMerge(1);
      w.commit();
    } finally {
      built.context().close();
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

  private static void verifyAll(Path dir) throws IOException {
    try (Directory d = FSDirectory.open(dir); DirectoryReader r = DirectoryReader.open(d)) {
      for (LeafReaderContext leaf : r.leaves()) {
        SegmentChecksums.verify((CodecReader) FilterLeafReader.unwrap(leaf.reader()));
      }
    }
  }

  @Test
  void theOriginalVerifies() throws IOException {
    verifyAll(original);
  }

  @Test
  void aChangedByteInAFileLuceneReadsUnverifiedIsCaughtAndNamed() throws IOException {
    List<String> checked = new ArrayList<>();
    Random random = new Random(11);
    try (Stream<Path> files = Files.list(original)) {
      for (Path f : files.sorted().toList()) {
        String name = f.getFileName().toString();
        String ext = IndexFileNames.getExtension(name);
        // decoded unverified by Lucene: stored fields data, terms, postings, doc values data
        if (ext == null || !List.of("fdt", "tim", "doc", "dvd").contains(ext)) {
          continue;
        }
        Path dir = copy("flip-" + name);
        Path damaged = dir.resolve(name);
        byte[] bytes = Files.readAllBytes(damaged);
        // past the header, before the footer: the bytes a reader decodes
        int at = 40 + random.nextInt(Math.max(1, bytes.length - 40 - 16));
        bytes[at] ^= (byte) (1 + random.nextInt(255));
        Files.write(damaged, bytes);
        CorruptIndexException e = assertThrows(CorruptIndexException.class, () -> verifyAll(dir),
            "a changed byte at " + at + " of " + name);
        assertTrue(e.getMessage().contains(name), e.getMessage());
        checked.add(ext);
      }
    }
    assertEquals(4, checked.size(), "every kind of file was tried: " + checked);
  }

  @Test
  void theKvDataIsLeftToTheFormatsBlockChecks() throws IOException {
    Path dir = copy("flip-wvd");
    Path data;
    try (Stream<Path> files = Files.list(dir)) {
      data = files.filter(p -> p.toString().endsWith("." + WaveVectorsFormat.DATA_EXTENSION))
          .findFirst().orElseThrow();
    }
    byte[] bytes = Files.readAllBytes(data);
    bytes[bytes.length / 2] ^= 0x40;
    Files.write(data, bytes);
    verifyAll(dir); // not read here: the K/V are verified when they are loaded
    try (Directory d = FSDirectory.open(dir); DirectoryReader r = DirectoryReader.open(d)) {
      assertThrows(CorruptIndexException.class, () -> ContextReader.load(r, "c").close());
    }
  }

  @Test
  void aDocumentChecksumSurvivesTheIndexAndCatchesAChangedValue() throws IOException {
    Document d = new Document();
    d.add(new StringField("id", "x1", Field.Store.YES));
    d.add(new StringField("indexed-only", "y", Field.Store.NO));
    d.add(new StoredField("i", 7));
    d.add(new StoredField("l", 1L << 40));
    d.add(new StoredField("f", 0.5f));
    d.add(new StoredField("d", -2.25));
    d.add(new StoredField("b", new byte[] {1, 2, 3}));
    d.add(new StoredField("s", "text"));
    DocumentChecksum.add(d, "crc");
    Path dir = root.resolve("checksummed");
    try (Directory fs = FSDirectory.open(dir)) {
      try (IndexWriter w = new IndexWriter(fs, new org.apache.lucene.index.IndexWriterConfig())) {
        w.addDocument(d);
      }
      try (DirectoryReader r = DirectoryReader.open(fs)) {
        Document back = r.storedFields().document(0);
        DocumentChecksum.verify(back, "crc", "the document");
        back.removeField("i");
        back.add(new StoredField("i", 8));
        CorruptIndexException e = assertThrows(CorruptIndexException.class,
            () -> DocumentChecksum.verify(back, "crc", "the document"));
        assertTrue(e.getMessage().contains("fails its checksum"), e.getMessage());
        back.removeField("crc");
        assertThrows(CorruptIndexException.class,
            () -> DocumentChecksum.verify(back, "crc", "the document"));
      }
    }
  }
}
