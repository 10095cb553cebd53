package org.retroinfer.store.inspect;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.lucene.index.CheckIndex;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.NoLockFactory;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.WaveField;
import org.retroinfer.lucene.WaveVectorsReader;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;

/**
 * What a store directory holds, read from its last commit without taking the write lock: its
 * contexts, its Lucene segments, per key field (layer, KV head) the clusters and a histogram of their
 * sizes, the bytes of every file, and an integrity check (Lucene's CheckIndex, which verifies every
 * file's checksum and the codec's structures).
 */
public final class StoreInspector {
  /** Cluster-size histogram bins: sizes 1, 2-3, 4-7, ..., 256 and more (powers of two). */
  public static final int BINS = 10;

  private StoreInspector() {}

  /** Lower bound of histogram bin {@code b}. */
  public static int binStart(int b) {
    return 1 << b;
  }

  static int bin(int size) {
    return Math.min(BINS - 1, 31 - Integer.numberOfLeadingZeros(Math.max(1, size)));
  }

  /**
   * @param checkIntegrity whether to run CheckIndex (reads every byte)
   */
  public static InspectReport inspect(Path dir, boolean checkIntegrity) throws IOException {
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      List<ContextInfo> contexts = store.list();
      Directory d = store.luceneDirectory();
      List<InspectReport.FileBytes> files = new ArrayList<>();
      long total = 0;
      for (String f : d.listAll()) {
        if (f.endsWith(".lock")) {
          continue;
        }
        try {
          long len = d.fileLength(f);
          files.add(new InspectReport.FileBytes(f, len));
          total += len;
        } catch (IOException gone) {
          // deleted by a writer since the listing
        }
      }
      long totalBytes = total;
      return store.withReader(reader -> {
        List<InspectReport.Segment> segments = new ArrayList<>();
        SegmentInfos infos = reader instanceof DirectoryReader dr
            ? SegmentInfos.readCommit(d, dr.getIndexCommit().getSegmentsFileName()) : null;
        if (infos != null) {
          for (SegmentCommitInfo si : infos) {
            segments.add(new InspectReport.Segment(si.info.name, si.info.maxDoc(), si.getDelCount(),
                si.sizeInBytes(), si.info.getCodec().getName()));
          }
        }
        Map<String, long[]> perField = new TreeMap<>(); // field -> [clusters, tokens, steady, hist...]
        for (LeafReaderContext leaf : reader.leaves()) {
          for (FieldInfo fi : leaf.reader().getFieldInfos()) {
            if (!ContextFields.isKvField(fi.name) || !fi.name.startsWith("kv.k.")) {
              continue;
            }
            WaveField f = WaveVectorsReader.waveField(leaf.reader(), fi.name);
            if (f == null) {
              continue;
            }
            long[] acc = perField.computeIfAbsent(fi.name, k -> new long[3 + BINS]);
            for (int s = 0; s < f.segmentCount(); s++) {
              if (f.steady(s)) {
                acc[2] += f.segmentRows(s);
                continue;
              }
              int c0 = f.segmentFirstCluster(s);
              int c1 = s + 1 < f.segmentCount() ? f.segmentFirstCluster(s + 1) : f.clusterCount();
              for (int c = c0; c < c1; c++) {
                int size = f.clusterSize(c);
                acc[0]++;
                acc[1] += size;
                acc[3 + bin(size)]++;
              }
            }
          }
        }
        List<InspectReport.FieldClusters> fields = new ArrayList<>();
        long[] all = new long[BINS];
        perField.forEach((name, acc) -> {
          long[] hist = java.util.Arrays.copyOfRange(acc, 3, 3 + BINS);
          for (int b = 0; b < BINS; b++) {
            all[b] += hist[b];
          }
          fields.add(new InspectReport.FieldClusters(name, acc[0], acc[1], acc[2], hist));
        });
        InspectReport.Integrity integrity = checkIntegrity ? check(dir.resolve("index"))
            : new InspectReport.Integrity(false, true, "not checked");
        return new InspectReport(dir.toAbsolutePath().toString(), store.chunkTokens(), contexts,
            segments, fields, all, files, totalBytes, integrity);
      });
    }
  }

  /** Lucene's CheckIndex over the last commit, without the write lock (a writer may be active). */
  static InspectReport.Integrity check(Path index) throws IOException {
    try (Directory d = FSDirectory.open(index, NoLockFactory.INSTANCE);
        CheckIndex ci = new CheckIndex(d)) {
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      ci.setInfoStream(new PrintStream(buf, true, StandardCharsets.UTF_8), false);
      CheckIndex.Status status = ci.checkIndex();
      String text = buf.toString(StandardCharsets.UTF_8);
      String summary = status.clean ? "clean: " + status.segmentInfos.size() + " segments, every"
          + " checksum verified" : "NOT clean: " + status.totLoseDocCount + " documents would be lost;"
          + " details:\n" + text;
      return new InspectReport.Integrity(true, status.clean, summary);
    }
  }
}
