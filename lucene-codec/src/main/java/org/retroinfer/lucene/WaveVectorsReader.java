package org.retroinfer.lucene;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import org.apache.lucene.codecs.CodecUtil;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.hnsw.HnswGraphProvider;
import org.apache.lucene.codecs.perfield.PerFieldKnnVectorsFormat;
import org.apache.lucene.index.ByteVectorValues;
import org.apache.lucene.index.CodecReader;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FieldInfos;
import org.apache.lucene.index.FilterLeafReader;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.SegmentReadState;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.search.AcceptDocs;
import org.apache.lucene.search.KnnCollector;
import org.apache.lucene.store.ChecksumIndexInput;
import org.apache.lucene.store.IndexInput;
import org.apache.lucene.store.MemorySegmentAccessInput;
import org.apache.lucene.util.IOUtils;
import org.apache.lucene.util.hnsw.HnswGraph;
import org.retroinfer.wave.kv.KvDType;

/**
 * Reads the files of {@link WaveVectorsFormat}. The meta and cluster files are verified completely
 * on open, the data file's length too; each block of vectors is verified the first time it is read
 * ({@link WaveField}); {@link #checkIntegrity()} verifies everything.
 */
public final class WaveVectorsReader extends KnnVectorsReader implements HnswGraphProvider {
  /** A stored field as Lucene names it: the keys of an entry, or the paired values of one. */
  record FieldRef(WaveField field, boolean values) {}

  private final WaveVectorsFormat format;
  private final Map<String, FieldRef> fields = new HashMap<>();
  private IndexInput clusterInput;
  private IndexInput dataInput;
  private MemorySegment dataMemory;
  private KnnVectorsReader byteReader;
  /** The format version of the segment's files. */
  private int version;

  WaveVectorsReader(WaveVectorsFormat format, SegmentReadState state) throws IOException {
    this.format = format;
    boolean success = false;
    try {
      int version;
      boolean hasBytes;
      PendingEntries entries = new PendingEntries();
      String metaName = IndexFileNames.segmentFileName(state.segmentInfo.name,
          state.segmentSuffix, WaveVectorsFormat.META_EXTENSION);
      try (ChecksumIndexInput meta = state.directory.openChecksumInput(metaName)) {
        Throwable prior = null;
        version = -1;
        hasBytes = false;
        try {
          version = CodecUtil.checkIndexHeader(meta, WaveVectorsFormat.META_CODEC,
              WaveVectorsFormat.VERSION_START, WaveVectorsFormat.VERSION_CURRENT,
              state.segmentInfo.getId(), state.segmentSuffix);
          entries.read(meta, state.fieldInfos, version);
          byte flag = meta.readByte();
          if (flag != 0 && flag != 1) {
            throw new CorruptIndexException("byte delegate flag " + flag, meta);
          }
          hasBytes = flag == 1;
        } catch (Throwable t) {
          prior = t;
        } finally {
          CodecUtil.checkFooter(meta, prior);
        }
      }
      this.version = version;
      clusterInput = open(state, WaveVectorsFormat.CLUSTERS_EXTENSION,
          WaveVectorsFormat.CLUSTERS_CODEC, version);
      CodecUtil.checksumEntireFile(clusterInput);
      dataInput = open(state, WaveVectorsFormat.DATA_EXTENSION, WaveVectorsFormat.DATA_CODEC,
          version);
      CodecUtil.retrieveChecksum(dataInput);
      if (dataInput instanceof MemorySegmentAccessInput msai) {
        dataMemory = msai.segmentSliceOrNull(0, dataInput.length());
      }
      int maxDoc = state.segmentInfo.maxDoc();
      for (PendingEntry e : entries.list) {
        e.checkBounds(dataInput, clusterInput);
        WaveField f = new WaveField(this, e.key, e.value, e.dim, e.trailing, e.storage, e.size,
            e.kind, e.rows, e.clusters, e.clusterOffset, e.clusterLength, e.keyOffset, e.keyCrc,
            e.valueOffset, e.valueCrc, e.tag, clusterInput, maxDoc);
        fields.put(e.key.name, new FieldRef(f, false));
        if (e.value != null) {
          fields.put(e.value.name, new FieldRef(f, true));
        }
      }
      if (hasBytes) {
        byteReader = format.byteDelegate().fieldsReader(state);
      }
      success = true;
    } finally {
      if (!success) {
        IOUtils.closeWhileHandlingException(this);
      }
    }
  }

  private static IndexInput open(SegmentReadState state, String extension, String codec,
      int metaVersion) throws IOException {
    String name = IndexFileNames.segmentFileName(state.segmentInfo.name, state.segmentSuffix,
        extension);
    IndexInput in = state.directory.openInput(name, state.context);
    boolean success = false;
    try {
      int version = CodecUtil.checkIndexHeader(in, codec, WaveVectorsFormat.VERSION_START,
          WaveVectorsFormat.VERSION_CURRENT, state.segmentInfo.getId(), state.segmentSuffix);
      if (version != metaVersion) {
        throw new CorruptIndexException("format versions differ: meta " + metaVersion + ", "
            + codec + " " + version, in);
      }
      success = true;
      return in;
    } finally {
      if (!success) {
        IOUtils.closeWhileHandlingException(in);
      }
    }
  }

  /** One entry of the meta file, before the cluster file is parsed. */
  private static final class PendingEntry {
    FieldInfo key;
    FieldInfo value;
    int dim;
    int trailing;
    KvDType storage;
    int size;
    byte[] kind;
    int[] rows;
    int[] clusters;
    long[] clusterOffset;
    long[] clusterLength;
    long[] keyOffset;
    int[] keyCrc;
    long[] valueOffset;
    int[] valueCrc;
    long[] tag;

    void checkBounds(IndexInput data, IndexInput clusterFile) throws CorruptIndexException {
      long rowBytes = (long) dim * storage.bytes();
      long dataEnd = data.length() - CodecUtil.footerLength();
      long clusterEnd = clusterFile.length() - CodecUtil.footerLength();
      for (int s = 0; s < kind.length; s++) {
        long len = rows[s] * rowBytes;
        if (keyOffset[s] < 0 || keyOffset[s] + len > dataEnd
            || (value != null && (valueOffset[s] < 0 || valueOffset[s] + len > dataEnd))) {
          throw new CorruptIndexException("field '" + key.name + "', wave segment " + s
              + ": vector blocks lie outside the data file of " + data.length() + " bytes", data);
        }
        if (clusterOffset[s] < 0 || clusterOffset[s] + clusterLength[s] > clusterEnd) {
          throw new CorruptIndexException("field '" + key.name + "', wave segment " + s
              + ": cluster block lies outside the cluster file", clusterFile);
        }
      }
    }
  }

  private static final class PendingEntries {
    final java.util.List<PendingEntry> list = new java.util.ArrayList<>();

    void read(ChecksumIndexInput meta, FieldInfos infos, int version) throws IOException {
      while (true) {
        int number = meta.readInt();
        if (number == -1) {
          return;
        }
        PendingEntry e = new PendingEntry();
        e.key = field(meta, infos, number);
        int valueNumber = meta.readInt();
        e.value = valueNumber == -1 ? null : field(meta, infos, valueNumber);
        e.dim = meta.readInt();
        e.trailing = version >= WaveVectorsFormat.VERSION_ASSIGNED ? meta.readByte() : 0;
        if ((e.trailing != 0 && e.trailing != AssignedLayout.TRAILING) || e.dim < 1
            || e.dim + e.trailing != e.key.getVectorDimension()
            || (e.value != null && e.dim + e.trailing != e.value.getVectorDimension())) {
          throw new CorruptIndexException("field '" + e.key.name + "': stored dimension " + e.dim
              + " with " + e.trailing + " trailing components does not make the field's "
              + e.key.getVectorDimension(), meta);
        }
        e.storage = StorageType.decode(meta.readByte(), meta);
        e.size = meta.readInt();
        int segments = meta.readInt();
        if (e.size < 0 || segments < 0 || segments > Math.max(1, e.size)) {
          throw new CorruptIndexException("field '" + e.key.name + "': " + e.size + " vectors in "
              + segments + " wave segments", meta);
        }
        e.kind = new byte[segments];
        e.rows = new int[segments];
        e.clusters = new int[segments];
        e.clusterOffset = new long[segments];
        e.clusterLength = new long[segments];
        e.keyOffset = new long[segments];
        e.keyCrc = new int[segments];
        e.valueOffset = new long[segments];
        e.valueCrc = new int[segments];
        e.tag = new long[segments];
        for (int s = 0; s < segments; s++) {
          e.kind[s] = meta.readByte();
          e.rows[s] = meta.readInt();
          e.clusters[s] = meta.readInt();
          if ((e.kind[s] != SegmentBlock.CLUSTERED && e.kind[s] != SegmentBlock.STEADY)
              || e.rows[s] <= 0 || e.clusters[s] <= 0 || e.clusters[s] > e.rows[s]
              || (e.kind[s] == SegmentBlock.STEADY && e.clusters[s] != 1)) {
            throw new CorruptIndexException("field '" + e.key.name + "', wave segment " + s
                + ": kind " + e.kind[s] + " with " + e.rows[s] + " vectors in " + e.clusters[s]
                + " clusters", meta);
          }
          e.clusterOffset[s] = meta.readLong();
          e.clusterLength[s] = meta.readLong();
          e.keyOffset[s] = meta.readLong();
          e.keyCrc[s] = meta.readInt();
          e.valueOffset[s] = meta.readLong();
          e.valueCrc[s] = meta.readInt();
          e.tag[s] = version >= WaveVectorsFormat.VERSION_ASSIGNED ? meta.readLong() : -1;
          if (e.trailing > 0 ? e.tag[s] < 0 || e.tag[s] >= AssignedLayout.TAG_LIMIT
              : e.tag[s] != -1) {
            throw new CorruptIndexException("field '" + e.key.name + "', wave segment " + s
                + ": tag " + e.tag[s], meta);
          }
        }
        list.add(e);
      }
    }

    private static FieldInfo field(IndexInput meta, FieldInfos infos, int number)
        throws CorruptIndexException {
      FieldInfo info = infos.fieldInfo(number);
      if (info == null) {
        throw new CorruptIndexException("unknown field number " + number, meta);
      }
      if (info.getVectorEncoding() != VectorEncoding.FLOAT32) {
        throw new CorruptIndexException("field '" + info.name + "' is not a float vector field",
            meta);
      }
      return info;
    }
  }

  // ---- access for WaveField ----

  /** The format version of this segment's files ({@link WaveVectorsFormat#VERSION_CURRENT}...). */
  int version() {
    return version;
  }

  IndexInput clusterInput() {
    return clusterInput;
  }

  IndexInput dataInput() {
    return dataInput;
  }

  MemorySegment dataMemory() {
    return dataMemory;
  }

  RowSource rowSource() {
    return new RowSource(dataMemory, dataInput);
  }

  WaveVectorsFormat format() {
    return format;
  }

  // ---- the cluster-level API ----

  /**
   * The stored wave index of {@code field} (a key field, or a field stored on its own) in this
   * segment, or null if the field has no vectors here. For a paired value field, this is the entry
   * of its key field.
   */
  public WaveField field(String field) {
    FieldRef ref = fields.get(field);
    return ref == null ? null : ref.field();
  }

  FieldRef fieldRef(String field) {
    return fields.get(field);
  }

  /**
   * The wave reader behind {@code field} of a leaf (a segment reader, possibly wrapped in filter
   * readers), or null when the field is not stored by {@link WaveVectorsFormat} in that segment.
   */
  public static WaveVectorsReader of(LeafReader leaf, String field) {
    LeafReader r = FilterLeafReader.unwrap(leaf);
    if (!(r instanceof CodecReader codecReader)) {
      return null;
    }
    return of(codecReader.getVectorReader(), field);
  }

  /** The wave reader behind {@code field} of a codec's vectors reader, or null. */
  static WaveVectorsReader of(KnnVectorsReader reader, String field) {
    if (reader instanceof PerFieldKnnVectorsFormat.FieldsReader perField) {
      reader = perField.getFieldReader(field);
    }
    return reader instanceof WaveVectorsReader w ? w : null;
  }

  /** Shortcut: the {@link WaveField} of {@code field} in {@code leaf}, or null. */
  public static WaveField waveField(LeafReader leaf, String field) {
    WaveVectorsReader r = of(leaf, field);
    return r == null ? null : r.field(field);
  }

  // ---- KnnVectorsReader ----

  @Override
  public void checkIntegrity() throws IOException {
    CodecUtil.checksumEntireFile(clusterInput);
    CodecUtil.checksumEntireFile(dataInput);
    if (byteReader != null) {
      byteReader.checkIntegrity();
    }
  }

  @Override
  public FloatVectorValues getFloatVectorValues(String field) throws IOException {
    FieldRef ref = fields.get(field);
    if (ref == null) {
      return null;
    }
    return ref.field().vectorValues(ref.values());
  }

  @Override
  public ByteVectorValues getByteVectorValues(String field) throws IOException {
    return byteReader == null ? null : byteReader.getByteVectorValues(field);
  }

  @Override
  public void search(String field, float[] target, KnnCollector knnCollector, AcceptDocs acceptDocs)
      throws IOException {
    FieldRef ref = fields.get(field);
    if (ref == null) {
      return;
    }
    WaveField f = ref.field();
    if (target.length != f.vectorDimension()) {
      throw new IllegalArgumentException("query vector of " + target.length
          + " dimensions, field '" + field + "' has " + f.vectorDimension());
    }
    if (target.length > f.dimension()) {
      target = java.util.Arrays.copyOf(target, f.dimension()); // trailing components: ignored
    }
    int probes = knnCollector.getSearchStrategy() instanceof WaveSearchStrategy ws
        ? ws.probeCount(f.clusterCount())
        : format.settings().probes(f.clusterCount());
    f.search(target, knnCollector, acceptDocs == null ? null : acceptDocs.bits(), ref.values(),
        probes);
  }

  @Override
  public void search(String field, byte[] target, KnnCollector knnCollector, AcceptDocs acceptDocs)
      throws IOException {
    if (byteReader != null) {
      byteReader.search(field, target, knnCollector, acceptDocs);
    }
  }

  @Override
  public HnswGraph getGraph(String field) throws IOException {
    return byteReader instanceof HnswGraphProvider p ? p.getGraph(field) : null;
  }

  @Override
  public Map<String, Long> getOffHeapByteSize(FieldInfo fieldInfo) {
    if (fieldInfo.getVectorEncoding() == VectorEncoding.BYTE) {
      return byteReader == null ? Map.of() : byteReader.getOffHeapByteSize(fieldInfo);
    }
    FieldRef ref = fields.get(fieldInfo.name);
    if (ref == null || ref.field().size() == 0) {
      return Map.of();
    }
    // "vec" as Lucene names raw vector data; the summaries live in the cluster file.
    return Map.of("vec", ref.field().dataBytes(ref.values()), WaveVectorsFormat.CLUSTERS_EXTENSION,
        clusterInput.length());
  }

  @Override
  public void close() throws IOException {
    try {
      IOUtils.close(clusterInput, dataInput, byteReader);
    } finally {
      for (FieldRef ref : fields.values()) {
        if (!ref.values()) {
          ref.field().close();
        }
      }
    }
  }
}
