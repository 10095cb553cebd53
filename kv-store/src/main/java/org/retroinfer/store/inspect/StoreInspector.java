package org.retroinfer.store.inspect;

import java.io.IOException;
import java.io.OutputStream;
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
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.NoLockFactory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.FixedBitSet;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.WaveField;
import org.retroinfer.lucene.WaveVectorsReader;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.StoreDamagedException;

/**
 * What a store directory holds, read from its last commit without taking the write lock: one
 * tenant's contexts (of one model, if given) and, per key field (layer, KV head), the clusters of
 * those contexts and a histogram of their sizes; the store's Lucene segments and the bytes of every
 * file; and an integrity check (Lucene's CheckIndex, which verifies every file's checksum and the
 * codec's structures). Segments, files and the check are the whole store's: they name no context
 * and no tenant, and a damaged file concerns every tenant.
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
   * @param tenantSalt whose contexts to show ("" for the default tenant)
   * @param model only this model's contexts, or null for every model of the tenant
   */
  public static InspectReport inspect(Path dir, boolean checkIntegrity, String tenantSalt,
      ModelFingerprint model) throws IOException {
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      List<ContextInfo> contexts = store.tenant(tenantSalt, model).list();
      List<BytesRef> visible = new ArrayList<>();
      for (ContextInfo c : contexts) {
        visible.add(new BytesRef(c.id()));
      }
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
          Bits mine = documentsOf(leaf.reader(), visible);
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
              if (!mine.get(f.segmentDocs(s)[0])) {
                continue; // another tenant's or model's context (a wave segment is one context's)
              }
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
        InspectReport.Integrity integrity = checkIntegrity ? check(dir)
            : new InspectReport.Integrity(false, true, "not checked");
        return new InspectReport(dir.toAbsolutePath().toString(), store.chunkTokens(), contexts,
            segments, fields, all, files, totalBytes, integrity);
      });
    }
  }

  /** The documents of {@code leaf} that belong to one of the {@code contexts}. */
  private static Bits documentsOf(LeafReader leaf, List<BytesRef> contexts) throws IOException {
    FixedBitSet docs = new FixedBitSet(Math.max(1, leaf.maxDoc()));
    Terms terms = leaf.terms(ContextFields.CONTEXT);
    if (terms != null) {
      TermsEnum te = terms.iterator();
      for (BytesRef id : contexts) {
        if (te.seekExact(id)) {
          PostingsEnum p = te.postings(null, PostingsEnum.NONE);
          for (int d = p.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = p.nextDoc()) {
            docs.set(d);
          }
        }
      }
    }
    return docs;
  }

  /**
   * Lucene's CheckIndex over the last commit, without the write lock (a writer may be active). A
   * damaged store is summarised per damaged segment: the file and what is wrong with it, in the
   * words of {@link StoreDamagedException} (Lucene's own report, with its stack traces, is not
   * shown).
   */
  public static InspectReport.Integrity check(Path store) throws IOException {
    try (Directory d = FSDirectory.open(store.resolve("index"), NoLockFactory.INSTANCE);
        CheckIndex ci = new CheckIndex(d)) {
      ci.setInfoStream(new PrintStream(OutputStream.nullOutputStream(), true,
          StandardCharsets.UTF_8), false);
      CheckIndex.Status status = ci.checkIndex();
      if (status.clean) {
        return new InspectReport.Integrity(true, true, "clean: " + status.segmentInfos.size()
            + " segments, every checksum verified");
      }
      List<String> problems = new ArrayList<>();
      if (status.missingSegments) {
        problems.add("the segments file of the last commit cannot be read");
      }
      for (CheckIndex.Status.SegmentInfoStatus seg : status.segmentInfos) {
        Throwable t = firstError(seg);
        if (t != null) {
          StoreDamagedException e = StoreDamagedException.of(store, null, t);
          problems.add("segment " + seg.name + ": " + e.file().map(f -> "file " + f + ", ")
              .orElse("") + e.what());
        }
      }
      if (problems.isEmpty()) {
        problems.add("CheckIndex reports it not clean");
      }
      return new InspectReport.Integrity(true, false, "NOT clean (" + status.totLoseDocCount
          + " documents would be lost): " + String.join("; ", problems));
    }
  }

  /** The first error CheckIndex found in a segment: in one of its parts, or the segment's own. */
  private static Throwable firstError(CheckIndex.Status.SegmentInfoStatus seg) {
    List<Throwable> parts = new ArrayList<>();
    if (seg.liveDocStatus != null) parts.add(seg.liveDocStatus.error);
    if (seg.fieldInfoStatus != null) parts.add(seg.fieldInfoStatus.error);
    if (seg.fieldNormStatus != null) parts.add(seg.fieldNormStatus.error);
    if (seg.termIndexStatus != null) parts.add(seg.termIndexStatus.error);
    if (seg.storedFieldStatus != null) parts.add(seg.storedFieldStatus.error);
    if (seg.termVectorStatus != null) parts.add(seg.termVectorStatus.error);
    if (seg.docValuesStatus != null) parts.add(seg.docValuesStatus.error);
    if (seg.pointsStatus != null) parts.add(seg.pointsStatus.error);
    if (seg.vectorValuesStatus != null) parts.add(seg.vectorValuesStatus.error);
    for (Throwable t : parts) {
      if (t != null) {
        return t;
      }
    }
    return seg.error;
  }
}
