package org.retroinfer.lucene;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.zip.CRC32;
import org.apache.lucene.codecs.CodecUtil;
import org.apache.lucene.codecs.KnnFieldVectorsWriter;
import org.apache.lucene.codecs.KnnVectorsWriter;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.MergeState;
import org.apache.lucene.index.SegmentWriteState;
import org.apache.lucene.index.Sorter;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.store.IndexOutput;
import org.apache.lucene.util.IOUtils;
import org.apache.lucene.util.RamUsageEstimator;
import org.retroinfer.wave.index.ClusterSpreads;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.roaringbitmap.RoaringBitmap;

/**
 * Writes the files described in {@link WaveVectorsFormat}: clusters float fields at flush with
 * wave-core, keeps clusters at merge ({@link WaveMerger}), delegates byte fields.
 */
final class WaveVectorsWriter extends KnnVectorsWriter {
  private static final long SHALLOW = RamUsageEstimator.shallowSizeOfInstance(WaveVectorsWriter.class);
  private static final int ALIGNMENT = 64;
  private static final int COPY_CHUNK = 1 << 16;

  private final WaveVectorsFormat format;
  private final SegmentWriteState state;
  private final List<WaveFieldWriter> fields = new ArrayList<>();
  private final Set<String> mergedFields = new HashSet<>();
  private IndexOutput meta;
  private IndexOutput clusters;
  private IndexOutput data;
  private KnnVectorsWriter byteWriter;
  private boolean finished;

  WaveVectorsWriter(WaveVectorsFormat format, SegmentWriteState state) throws IOException {
    this.format = format;
    this.state = state;
    boolean success = false;
    try {
      meta = create(WaveVectorsFormat.META_EXTENSION, WaveVectorsFormat.META_CODEC);
      clusters = create(WaveVectorsFormat.CLUSTERS_EXTENSION, WaveVectorsFormat.CLUSTERS_CODEC);
      data = create(WaveVectorsFormat.DATA_EXTENSION, WaveVectorsFormat.DATA_CODEC);
      success = true;
    } finally {
      if (!success) {
        IOUtils.closeWhileHandlingException(this);
      }
    }
  }

  private IndexOutput create(String extension, String codec) throws IOException {
    String name = IndexFileNames.segmentFileName(state.segmentInfo.name, state.segmentSuffix,
        extension);
    IndexOutput out = state.directory.createOutput(name, state.context);
    boolean success = false;
    try {
      CodecUtil.writeIndexHeader(out, codec, WaveVectorsFormat.VERSION_CURRENT,
          state.segmentInfo.getId(), state.segmentSuffix);
      success = true;
      return out;
    } finally {
      if (!success) {
        IOUtils.closeWhileHandlingException(out);
      }
    }
  }

  private KnnVectorsWriter byteWriter() throws IOException {
    if (byteWriter == null) {
      byteWriter = format.byteDelegate().fieldsWriter(state);
    }
    return byteWriter;
  }

  WaveVectorsFormat.Settings settings() {
    return format.settings();
  }

  @Override
  public KnnFieldVectorsWriter<?> addField(FieldInfo fieldInfo) throws IOException {
    if (fieldInfo.getVectorEncoding() == VectorEncoding.BYTE) {
      return byteWriter().addField(fieldInfo);
    }
    WaveFieldWriter w = new WaveFieldWriter(fieldInfo, FieldParams.of(fieldInfo, format.settings()));
    for (WaveFieldWriter other : fields) {
      if (pairs(other, w) || pairs(w, other)) {
        other.partner = w;
        w.partner = other;
      }
    }
    fields.add(w);
    return w;
  }

  /** Whether {@code key} names {@code value} as its value field and vice versa, same shape. */
  private static boolean pairs(WaveFieldWriter key, WaveFieldWriter value) {
    return isPair(key.info, value.info) && key.params.storage() == value.params.storage();
  }

  static boolean isPair(FieldInfo key, FieldInfo value) {
    return value.name.equals(key.getAttribute(WaveVectorsFormat.ATTR_VALUES))
        && key.name.equals(value.getAttribute(WaveVectorsFormat.ATTR_KEYS))
        && key.getVectorDimension() == value.getVectorDimension()
        && key.getVectorEncoding() == VectorEncoding.FLOAT32
        && value.getVectorEncoding() == VectorEncoding.FLOAT32;
  }

  @Override
  public void flush(int maxDoc, Sorter.DocMap sortMap) throws IOException {
    if (byteWriter != null) {
      byteWriter.flush(maxDoc, sortMap);
    }
    List<WaveFieldWriter[]> entries = new ArrayList<>(); // {key, value or null}
    Set<WaveFieldWriter> done = new HashSet<>();
    for (WaveFieldWriter w : fields) {
      if (done.contains(w)) {
        continue;
      }
      WaveFieldWriter key = w;
      WaveFieldWriter value = null;
      WaveFieldWriter p = w.partner;
      if (p != null && !done.contains(p)) {
        boolean wIsKey = p.info.name.equals(w.info.getAttribute(WaveVectorsFormat.ATTR_VALUES));
        WaveFieldWriter k = wIsKey ? w : p;
        WaveFieldWriter v = wIsKey ? p : w;
        if (Arrays.equals(k.docs(), v.docs())) {
          key = k;
          value = v;
        }
      }
      done.add(key);
      if (value != null) {
        done.add(value);
      }
      entries.add(new WaveFieldWriter[] {key, value});
    }
    // Clustering dominates the cost of a flush: cluster a few fields at a time in parallel (so that
    // at most that many fields are held twice in memory), then write them in order.
    int parallel = Math.max(1, Runtime.getRuntime().availableProcessors());
    for (int i = 0; i < entries.size(); i += parallel) {
      List<WaveFieldWriter[]> batch = entries.subList(i, Math.min(entries.size(), i + parallel));
      List<CompletableFuture<List<SegmentBlock>>> futures = new ArrayList<>();
      for (WaveFieldWriter[] e : batch) {
        futures.add(CompletableFuture.supplyAsync(() -> cluster(e[0], e[1], sortMap)));
      }
      // Wait for every task, failed or not, so that no block is built after the cleanup below.
      List<List<SegmentBlock>> built = new ArrayList<>();
      RuntimeException failure = null;
      for (CompletableFuture<List<SegmentBlock>> f : futures) {
        try {
          built.add(f.join());
        } catch (CompletionException e) {
          built.add(null);
          if (failure == null) {
            failure = e.getCause() instanceof RuntimeException re ? re : e;
          }
        }
      }
      try {
        if (failure != null) {
          throw failure;
        }
        for (int j = 0; j < batch.size(); j++) {
          WaveFieldWriter key = batch.get(j)[0];
          WaveFieldWriter value = batch.get(j)[1];
          try (EntryWriter entry = beginEntry(key.info, value == null ? null : value.info, key.dim,
              key.params.storage())) {
            for (SegmentBlock b : built.get(j)) {
              entry.add(b);
            }
          }
        }
      } finally {
        for (List<SegmentBlock> blocks : built) {
          if (blocks != null) {
            for (SegmentBlock b : blocks) {
              b.close();
            }
          }
        }
      }
    }
  }

  /** The wave segments of one field (and its paired values), in the (sorted) segment's doc order. */
  private static List<SegmentBlock> cluster(WaveFieldWriter key, WaveFieldWriter value,
      Sorter.DocMap sortMap) {
    int[] docs = key.docs();
    VectorStore keys = key.store;
    VectorStore values = value == null ? null : value.store;
    boolean assigned = key.trailing > 0;
    long[] tags = assigned ? key.tags() : null;
    int[] clusterIds = assigned ? key.clusterIds() : null;
    boolean sorted = false;
    if (sortMap != null && docs.length > 0) {
      // Lay the vectors out in the order of the sorted segment, then cluster in that order.
      Integer[] perm = new Integer[docs.length];
      int[] newDocs = new int[docs.length];
      for (int i = 0; i < docs.length; i++) {
        perm[i] = i;
        newDocs[i] = sortMap.oldToNew(docs[i]);
      }
      Arrays.sort(perm, (a, b) -> Integer.compare(newDocs[a], newDocs[b]));
      keys = permuted(keys, perm);
      values = values == null ? null : permuted(values, perm);
      long[] oldTags = tags;
      int[] oldIds = clusterIds;
      for (int i = 0; i < docs.length; i++) {
        docs[i] = newDocs[perm[i]];
      }
      if (assigned) {
        tags = new long[docs.length];
        clusterIds = new int[docs.length];
        for (int i = 0; i < docs.length; i++) {
          tags[i] = oldTags[perm[i]];
          clusterIds[i] = oldIds[perm[i]];
        }
      }
      sorted = true;
    }
    try {
      return assigned
          ? WaveClustering.assigned(keys, values, docs, tags, clusterIds)
          : WaveClustering.build(keys, values, docs, key.params);
    } finally {
      if (sorted) {
        keys.close();
        if (values != null) {
          values.close();
        }
      }
    }
  }

  private static VectorStore permuted(VectorStore src, Integer[] perm) {
    VectorStore out = VectorStore.allocate(src.dim(), src.type(), perm.length);
    for (Integer row : perm) {
      out.appendFrom(src, row, row + 1);
    }
    return out;
  }

  @Override
  public void mergeOneField(FieldInfo fieldInfo, MergeState mergeState) throws IOException {
    if (fieldInfo.getVectorEncoding() == VectorEncoding.BYTE) {
      byteWriter().mergeOneField(fieldInfo, mergeState);
      return;
    }
    WaveMerger.mergeField(fieldInfo, mergeState, this, mergedFields);
  }

  /** Starts the meta entry of a field (and its paired value field, if any). */
  EntryWriter beginEntry(FieldInfo key, FieldInfo value, int dim, KvDType storage) {
    return new EntryWriter(key, value, dim, storage);
  }

  /**
   * Writes one field entry: every added wave segment goes to the cluster and data files at once;
   * the meta entry, which needs the totals, is written by {@link #close()}.
   */
  final class EntryWriter implements AutoCloseable {
    private final FieldInfo key;
    private final FieldInfo value;
    private final int dim;
    private final KvDType storage;
    private final ByteArrayOutputStream descriptors = new ByteArrayOutputStream();
    private final List<long[]> segments = new ArrayList<>();
    private long vectors;

    EntryWriter(FieldInfo key, FieldInfo value, int dim, KvDType storage) {
      this.key = key;
      this.value = value;
      this.dim = dim;
      this.storage = storage;
    }

    void add(SegmentBlock b) throws IOException {
      if (b.keys().dim() != dim || b.keys().type() != storage
          || b.paired() != (value != null)) {
        throw new IllegalStateException("wave segment of " + b.keys() + (b.paired() ? " paired" : "")
            + " does not fit the entry of field '" + key.name + "' (" + dim + " x " + storage + ")");
      }
      long clusterOffset = clusters.getFilePointer();
      writeClusterBlock(b);
      long clusterLength = clusters.getFilePointer() - clusterOffset;
      long keyOffset = alignData();
      int keyCrc = writeRows(b.keys());
      long valueOffset = -1;
      int valueCrc = 0;
      if (b.paired()) {
        valueOffset = alignData();
        valueCrc = writeRows(b.values());
      }
      segments.add(new long[] {b.kind(), b.rows(), b.clusters(), clusterOffset, clusterLength,
          keyOffset, keyCrc, valueOffset, valueCrc, key.getVectorDimension() > dim ? b.tag() : -1});
      vectors += b.rows();
    }

    @Override
    public void close() throws IOException {
      if (vectors > Integer.MAX_VALUE) {
        throw new IllegalStateException("field '" + key.name + "' has " + vectors + " vectors");
      }
      meta.writeInt(key.number);
      meta.writeInt(value == null ? -1 : value.number);
      meta.writeInt(dim);
      meta.writeByte((byte) (key.getVectorDimension() - dim)); // trailing assignment components
      meta.writeByte(StorageType.code(storage));
      meta.writeInt((int) vectors);
      meta.writeInt(segments.size());
      for (long[] s : segments) {
        meta.writeByte((byte) s[0]);
        meta.writeInt((int) s[1]);
        meta.writeInt((int) s[2]);
        meta.writeLong(s[3]);
        meta.writeLong(s[4]);
        meta.writeLong(s[5]);
        meta.writeInt((int) s[6]);
        meta.writeLong(s[7]);
        meta.writeInt((int) s[8]);
        meta.writeLong(s[9]);
      }
    }
  }

  private void writeClusterBlock(SegmentBlock b) throws IOException {
    int[] offsets = b.offsets();
    for (int o : offsets) {
      clusters.writeInt(o);
    }
    for (float f : b.centroids()) {
      clusters.writeInt(Float.floatToRawIntBits(f));
    }
    if (b.paired()) {
      for (float f : b.valueSums()) {
        clusters.writeInt(Float.floatToRawIntBits(f));
      }
    }
    ClusterSpreads spreads = ClusterSpreads.of(b.keys(), 0, offsets, b.centroids());
    for (float f : spreads.spreads()) {
      clusters.writeInt(Float.floatToRawIntBits(f));
    }
    for (double d : spreads.deviationSums()) {
      clusters.writeLong(Double.doubleToRawLongBits(d));
    }
    int[] rowDocs = b.rowDocs();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int c = 0; c < b.clusters(); c++) {
      RoaringBitmap postings = RoaringBitmap.bitmapOf(
          Arrays.copyOfRange(rowDocs, offsets[c], offsets[c + 1]));
      postings.runOptimize();
      bytes.reset();
      try (DataOutputStream out = new DataOutputStream(bytes)) {
        postings.serialize(out);
      }
      clusters.writeVInt(bytes.size());
      clusters.writeBytes(bytes.toByteArray(), bytes.size());
    }
  }

  private long alignData() throws IOException {
    long fp = data.getFilePointer();
    long pad = (ALIGNMENT - fp % ALIGNMENT) % ALIGNMENT;
    for (long i = 0; i < pad; i++) {
      data.writeByte((byte) 0);
    }
    return fp + pad;
  }

  /** Copies the rows of {@code store} to the data file; returns their CRC32. */
  private int writeRows(VectorStore store) throws IOException {
    CRC32 crc = new CRC32();
    MemorySegment rows = store.memory();
    long size = rows.byteSize();
    byte[] chunk = new byte[(int) Math.min(COPY_CHUNK, Math.max(1, size))];
    MemorySegment heap = MemorySegment.ofArray(chunk);
    for (long at = 0; at < size; at += chunk.length) {
      int len = (int) Math.min(chunk.length, size - at);
      MemorySegment.copy(rows, at, heap, 0, len);
      crc.update(chunk, 0, len);
      data.writeBytes(chunk, 0, len);
    }
    return (int) crc.getValue();
  }

  @Override
  public void finish() throws IOException {
    if (finished) {
      throw new IllegalStateException("already finished");
    }
    finished = true;
    meta.writeInt(-1);
    meta.writeByte((byte) (byteWriter == null ? 0 : 1));
    CodecUtil.writeFooter(meta);
    CodecUtil.writeFooter(clusters);
    CodecUtil.writeFooter(data);
    if (byteWriter != null) {
      byteWriter.finish();
    }
  }

  @Override
  public long ramBytesUsed() {
    long total = SHALLOW;
    for (WaveFieldWriter w : fields) {
      total += w.ramBytesUsed();
    }
    if (byteWriter != null) {
      total += byteWriter.ramBytesUsed();
    }
    return total;
  }

  @Override
  public void close() throws IOException {
    try {
      IOUtils.close(meta, clusters, data, byteWriter);
    } finally {
      for (WaveFieldWriter w : fields) {
        w.close();
      }
      fields.clear();
    }
  }
}
