package org.retroinfer.lucene;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.CheckIndex;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.SegmentReader;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;

/**
 * Prints what an index holds: per Lucene segment its codec and, per wave field, the wave segments,
 * clusters, storage and pairing; the stored contexts; with {@code --check}, Lucene's CheckIndex
 * verdict (every checksum verified). Opens the index through SPI only, so it also shows that an
 * index written elsewhere reopens with nothing but this jar on the class path.
 *
 * <p>Usage: {@code java -cp ... org.retroinfer.lucene.WaveIndexInspector <index dir> [--check]};
 * exit status 0 when the index opened (and checked clean), 1 otherwise, 2 on bad arguments.
 */
public final class WaveIndexInspector {
  private WaveIndexInspector() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 1 || args.length > 2 || (args.length == 2 && !args[1].equals("--check"))) {
      System.err.println("usage: WaveIndexInspector <index dir> [--check]");
      System.exit(2);
    }
    Path path = Path.of(args[0]);
    if (!Files.isDirectory(path)) {
      System.err.println("no index directory at " + path.toAbsolutePath()
          + "; pass the directory an IndexWriter wrote");
      System.exit(2);
    }
    boolean clean = inspect(path, args.length == 2, System.out);
    System.exit(clean ? 0 : 1);
  }

  /** Prints the report for the index at {@code path}; returns false if CheckIndex found damage. */
  public static boolean inspect(Path path, boolean check, PrintStream out) throws IOException {
    try (Directory dir = FSDirectory.open(path)) {
      try (DirectoryReader reader = DirectoryReader.open(dir)) {
        out.println("index " + path + ": " + reader.leaves().size() + " segments, "
            + reader.numDocs() + " live documents");
        for (LeafReaderContext leaf : reader.leaves()) {
          String codec = leaf.reader() instanceof SegmentReader sr
              ? sr.getSegmentInfo().info.getCodec().getName() : "?";
          out.println("segment " + leaf.ord + " (" + codec + "): " + leaf.reader().maxDoc()
              + " docs");
          for (FieldInfo fi : leaf.reader().getFieldInfos()) {
            WaveVectorsReader wr = WaveVectorsReader.of(leaf.reader(), fi.name);
            WaveField f = wr == null ? null : wr.field(fi.name);
            if (f == null || !f.name().equals(fi.name)) {
              continue; // not a wave field, or the value side of a pair (shown with its keys)
            }
            int steady = 0;
            for (int s = 0; s < f.segmentCount(); s++) {
              steady += f.steady(s) ? 1 : 0;
            }
            out.printf("  %-14s %6d x %-4d %-8s %3d wave segments (%d steady) %6d clusters%s%n",
                f.name(), f.size(), f.dimension(), f.storage(), f.segmentCount(), steady,
                f.clusterCount(), f.paired() ? ", values in " + f.valueField() : "");
          }
        }
        IndexSearcher searcher = new IndexSearcher(reader);
        for (ScoreDoc sd : searcher.search(new TermQuery(new Term(ContextFields.KIND,
            ContextFields.KIND_META)), Integer.MAX_VALUE).scoreDocs) {
          Document m = searcher.storedFields().document(sd.doc);
          out.println("context '" + m.get(ContextFields.CONTEXT) + "': "
              + m.get(ContextFields.META_TOKENS) + " tokens, " + m.get(ContextFields.META_LAYERS)
              + " layers x " + m.get(ContextFields.META_KV_HEADS) + " KV heads x head dim "
              + m.get(ContextFields.META_HEAD_DIM) + ", " + m.get(ContextFields.META_CONFIG));
        }
      }
      if (!check) {
        return true;
      }
      try (CheckIndex checker = new CheckIndex(dir)) {
        CheckIndex.Status status = checker.checkIndex();
        out.println("CheckIndex: " + (status.clean ? "clean" : "DAMAGED"));
        return status.clean;
      }
    }
  }
}
