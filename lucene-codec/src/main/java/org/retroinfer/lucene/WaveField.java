package org.retroinfer.lucene;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.zip.CRC32;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.KnnCollector;
import org.apache.lucene.search.VectorScorer;
import org.apache.lucene.store.IndexInput;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.FixedBitSet;
import org.retroinfer.wave.index.ClusterSpreads;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.math.KvKernels;
import org.retroinfer.wave.math.TopSelection;
import org.roaringbitmap.RoaringBitmap;

/**
 * The stored wave index of one field in one Lucene segment: the cluster-level API for the attention
 * engine. Obtain it with {@link WaveVectorsReader#waveField(org.apache.lucene.index.LeafReader,
 * String)}.
 *
 * <p>Rows are numbered over all wave segments of the field, cluster-contiguous: wave segment
 * {@code s} is rows {@code [segmentFirstRow(s), segmentFirstRow(s + 1))} and clusters
 * {@code [segmentFirstCluster(s), segmentFirstCluster(s + 1))}; cluster {@code c} is rows
 * {@code [clusterStart(c), clusterStart(c + 1))}, whose doc ids ascend. When the field is paired,
 * {@link #values(int)} holds the values in the same row order and {@link #valueSums(int)} the
 * per-cluster value sums. Every block of vectors is checksum-verified before it is first handed
 * out; a damaged one throws {@link CorruptIndexException}.
 *
 * <p>Thread-safe; valid while the segment's reader is open.
 */
public final class WaveField {
  private final WaveVectorsReader reader;
  private final FieldInfo info;
  private final FieldInfo valueInfo;
  private final int dim;
  /** Trailing assignment components of the field's vectors ({@code assigned} layout), else 0. */
  private final int trailing;
  private final long[] tags;
  private final KvDType storage;
  private final long rowBytes;
  private final int size;

  private final byte[] kind;
  private final int[] segRowStart;
  private final int[] segClusterStart;
  private final long[] clusterBlockOffset;
  private final long[] keyOffset;
  private final int[] keyCrc;
  private final long[] valueOffset;
  private final int[] valueCrc;
  /** Per segment: bit 0 keys verified, bit 1 values verified. */
  private final AtomicIntegerArray verified;

  private final int[] clusterRowStart;
  private final int[] rowToDoc;
  private final int[] ordToRow;
  private final int[] ordToDoc;
  /** All centroids of the field, float32, one row per global cluster id (off-heap). */
  private final VectorStore centroids;
  /** Squared L2 norm of every centroid (ranking for EUCLIDEAN and COSINE fields). */
  private final float[] centroidNorm2;

  WaveField(WaveVectorsReader reader, FieldInfo info, FieldInfo valueInfo, int dim, int trailing,
      KvDType storage, int size, byte[] kind, int[] segRows, int[] segClusters,
      long[] clusterBlockOffset, long[] clusterBlockLength, long[] keyOffset, int[] keyCrc,
      long[] valueOffset, int[] valueCrc, long[] tags, IndexInput clusterInput, int maxDoc)
      throws IOException {
    this.reader = reader;
    this.info = info;
    this.valueInfo = valueInfo;
    this.dim = dim;
    this.trailing = trailing;
    this.tags = tags;
    this.storage = storage;
    this.rowBytes = (long) dim * storage.bytes();
    this.size = size;
    this.kind = kind;
    this.clusterBlockOffset = clusterBlockOffset;
    this.keyOffset = keyOffset;
    this.keyCrc = keyCrc;
    this.valueOffset = valueOffset;
    this.valueCrc = valueCrc;
    int segments = kind.length;
    this.verified = new AtomicIntegerArray(segments);
    this.segRowStart = new int[segments + 1];
    this.segClusterStart = new int[segments + 1];
    for (int s = 0; s < segments; s++) {
      segRowStart[s + 1] = segRowStart[s] + segRows[s];
      segClusterStart[s + 1] = segClusterStart[s] + segClusters[s];
    }
    if (segRowStart[segments] != size) {
      throw new CorruptIndexException("field '" + info.name + "': wave segments hold "
          + segRowStart[segments] + " vectors, the entry says " + size, clusterInput);
    }
    int clusters = segClusterStart[segments];
    this.clusterRowStart = new int[clusters + 1];
    this.rowToDoc = new int[size];
    this.centroids = VectorStore.allocate(dim, KvDType.FLOAT32, Math.max(1, clusters));
    try {
      this.centroidNorm2 = new float[clusters];
      FixedBitSet seen = new FixedBitSet(Math.max(1, maxDoc));
      IndexInput in = clusterInput.clone();
      for (int s = 0; s < segments; s++) {
        readClusterBlock(in, s, segClusters[s], segRows[s], clusterBlockLength[s], seen, maxDoc);
      }
      this.ordToRow = new int[size];
      this.ordToDoc = new int[size];
      int[] docToRow = new int[Math.max(1, maxDoc)];
      Arrays.fill(docToRow, -1);
      for (int row = 0; row < size; row++) {
        docToRow[rowToDoc[row]] = row;
      }
      int ord = 0;
      for (int doc = 0; doc < maxDoc && ord < size; doc++) {
        if (docToRow[doc] >= 0) {
          ordToRow[ord] = docToRow[doc];
          ordToDoc[ord] = doc;
          ord++;
        }
      }
    } catch (IOException | RuntimeException e) {
      centroids.close();
      throw e;
    }
  }

  private void readClusterBlock(IndexInput in, int s, int clusters, int rows, long length,
      FixedBitSet seen, int maxDoc) throws IOException {
    long start = clusterBlockOffset[s];
    in.seek(start);
    int c0 = segClusterStart[s];
    int r0 = segRowStart[s];
    int prev = -1;
    for (int c = 0; c <= clusters; c++) {
      int o = in.readInt();
      if (c == 0 ? o != 0 : o <= prev) {
        throw new CorruptIndexException("field '" + info.name + "', wave segment " + s
            + ": cluster offsets must start at 0 and increase, got " + o + " after " + prev, in);
      }
      prev = o;
      clusterRowStart[c0 + c] = r0 + o;
    }
    if (prev != rows) {
      throw new CorruptIndexException("field '" + info.name + "', wave segment " + s
          + ": cluster offsets end at " + prev + ", expected " + rows + " rows", in);
    }
    // read in one piece per segment and checked in one pass each: a fresh process opening a
    // context runs this cold, where a call per cluster and value costs more than the values
    float[] cent = new float[clusters * dim];
    in.readFloats(cent, 0, cent.length);
    for (int c = 0; c < clusters; c++) {
      double norm2 = 0;
      for (int t = c * dim; t < (c + 1) * dim; t++) {
        float x = cent[t];
        if (!Float.isFinite(x)) {
          throw new CorruptIndexException("field '" + info.name + "': centroid of cluster "
              + (c0 + c) + " is not finite", in);
        }
        norm2 += (double) x * x;
      }
      centroidNorm2[c0 + c] = (float) norm2;
    }
    centroids.appendFinite(cent, 0, clusters);
    if (valueInfo != null) { // checked here, once: an index takes the value sums as they are
      in.readFloats(cent, 0, cent.length);
      for (int i = 0; i < cent.length; i++) {
        if (!Float.isFinite(cent[i])) {
          throw new CorruptIndexException("field '" + info.name + "': value sum of cluster "
              + (c0 + i / dim) + " is not finite", in);
        }
      }
    }
    if (reader.version() >= WaveVectorsFormat.VERSION_SPREADS) {
      in.seek(in.getFilePointer() + 4L * clusters + 8L * dim);
    }
    byte[] bytes = new byte[0];
    for (int c = 0; c < clusters; c++) {
      int len = in.readVInt();
      if (len <= 0 || len > length) {
        throw new CorruptIndexException("field '" + info.name + "': postings of cluster " + (c0 + c)
            + " claim " + len + " bytes", in);
      }
      if (bytes.length < len) {
        bytes = new byte[len];
      }
      in.readBytes(bytes, 0, len);
      RoaringBitmap postings = new RoaringBitmap();
      try {
        postings.deserialize(ByteBuffer.wrap(bytes, 0, len));
      } catch (IOException | RuntimeException e) {
        throw new CorruptIndexException("field '" + info.name + "': postings of cluster "
            + (c0 + c) + " do not decode: " + e, in, e);
      }
      int from = clusterRowStart[c0 + c];
      int to = clusterRowStart[c0 + c + 1];
      if (postings.getLongCardinality() != to - from) {
        throw new CorruptIndexException("field '" + info.name + "': cluster " + (c0 + c) + " has "
            + (to - from) + " rows but " + postings.getLongCardinality() + " postings", in);
      }
      int row = from;
      for (int doc : postings) {
        if (doc < 0 || doc >= maxDoc || seen.getAndSet(doc)) {
          throw new CorruptIndexException("field '" + info.name + "': doc " + doc
              + " in the postings of cluster " + (c0 + c) + " is out of range or repeated", in);
        }
        rowToDoc[row++] = doc;
      }
    }
    if (in.getFilePointer() != start + length) {
      throw new CorruptIndexException("field '" + info.name + "', wave segment " + s
          + ": cluster block ends at " + in.getFilePointer() + ", expected " + (start + length), in);
    }
  }

  // ---- description ----

  /** The (key) field's name. */
  public String name() {
    return info.name;
  }

  public FieldInfo fieldInfo() {
    return info;
  }

  /** The paired value field's name, or null when the field is stored unpaired. */
  public String valueField() {
    return valueInfo == null ? null : valueInfo.name;
  }

  public boolean paired() {
    return valueInfo != null;
  }

  /** The dimension of the stored vectors (for the {@code assigned} layout: the head dim). */
  public int dimension() {
    return dim;
  }

  /**
   * The field's vector dimension as Lucene knows it: {@link #dimension()} plus the trailing
   * assignment components of the {@code assigned} layout.
   */
  public int vectorDimension() {
    return dim + trailing;
  }

  /** Whether the field is stored in the {@code assigned} layout (see {@link AssignedLayout}). */
  public boolean assigned() {
    return trailing > 0;
  }

  /** The tag of wave segment {@code s} in the {@code assigned} layout, else -1. */
  public long tag(int s) {
    return tags[s];
  }

  /** How the vectors are stored on disk. */
  public KvDType storage() {
    return storage;
  }

  public VectorSimilarityFunction similarity() {
    return info.getVectorSimilarityFunction();
  }

  /** Vectors stored (deleted documents included, as everywhere in Lucene). */
  public int size() {
    return size;
  }

  public int segmentCount() {
    return kind.length;
  }

  public int clusterCount() {
    return centroidNorm2.length;
  }

  /** Whether wave segment {@code s} is a steady one (one unclustered cluster, doc order). */
  public boolean steady(int s) {
    return kind[s] == SegmentBlock.STEADY;
  }

  /** First row of wave segment {@code s}; {@code s == segmentCount()} gives the total. */
  public int segmentFirstRow(int s) {
    return segRowStart[s];
  }

  public int segmentRows(int s) {
    return segRowStart[s + 1] - segRowStart[s];
  }

  /** First global cluster id of wave segment {@code s}; {@code s == segmentCount()} gives the total. */
  public int segmentFirstCluster(int s) {
    return segClusterStart[s];
  }

  /** First row of cluster {@code c}; {@code c == clusterCount()} gives the total. */
  public int clusterStart(int c) {
    return clusterRowStart[c];
  }

  public int clusterSize(int c) {
    return clusterRowStart[c + 1] - clusterRowStart[c];
  }

  /** The doc id of row {@code row}. */
  public int rowDoc(int row) {
    return rowToDoc[row];
  }

  /** The centroid of cluster {@code c} (a copy): the mean of its stored vectors. */
  public float[] centroid(int c) {
    return centroids.row(c);
  }

  /** All centroids, one float32 row per global cluster id: a read-only view, do not close. */
  public VectorStore centroidStore() {
    return centroids;
  }

  /** The centroids of wave segment {@code s}, {@code clusters x dim}, row-major. */
  public float[] centroids(int s) {
    int c0 = segClusterStart[s];
    int c1 = segClusterStart[s + 1];
    float[] out = new float[(c1 - c0) * dim];
    for (int c = c0; c < c1; c++) {
      centroids.read(c, out, (c - c0) * dim);
    }
    return out;
  }

  /** The value sums of wave segment {@code s}, {@code clusters x dim}; the field must be paired. */
  public float[] valueSums(int s) throws IOException {
    requirePaired();
    int clusters = segClusterStart[s + 1] - segClusterStart[s];
    float[] out = new float[clusters * dim];
    IndexInput in = reader.clusterInput().clone();
    in.seek(clusterBlockOffset[s] + 4L * (clusters + 1) + 4L * clusters * dim);
    in.readFloats(out, 0, out.length);
    return out;
  }

  /** Where wave segment {@code s}'s block starts in the cluster file (for tests). */
  long clusterBlockOffset(int s) {
    return clusterBlockOffset[s];
  }

  /** The format version of the segment files this field was read from. */
  int formatVersion() {
    return reader.version();
  }

  /**
   * The keys' spread statistics of wave segment {@code s}, as stored with it; null for a segment
   * written before the format stored them (version {@value WaveVectorsFormat#VERSION_START}).
   *
   * @throws CorruptIndexException if the stored statistics are not finite and non-negative
   */
  public ClusterSpreads spreads(int s) throws IOException {
    if (reader.version() < WaveVectorsFormat.VERSION_SPREADS) {
      return null;
    }
    int clusters = segClusterStart[s + 1] - segClusterStart[s];
    IndexInput in = reader.clusterInput().clone();
    in.seek(clusterBlockOffset[s] + 4L * (clusters + 1) + 4L * clusters * dim
        + (valueInfo != null ? 4L * clusters * dim : 0));
    float[] spreads = new float[clusters];
    in.readFloats(spreads, 0, clusters);
    double[] deviations = new double[dim];
    for (int t = 0; t < dim; t++) {
      deviations[t] = Double.longBitsToDouble(in.readLong());
    }
    try {
      return new ClusterSpreads(spreads, deviations);
    } catch (IllegalArgumentException e) {
      throw new CorruptIndexException("field '" + info.name + "', wave segment " + s
          + ": bad spread statistics: " + e.getMessage(), in, e);
    }
  }

  /** The postings of cluster {@code c}: its member doc ids. */
  public RoaringBitmap postings(int c) {
    return RoaringBitmap.bitmapOf(Arrays.copyOfRange(rowToDoc, clusterRowStart[c],
        clusterRowStart[c + 1]));
  }

  /** The doc ids of wave segment {@code s} in row order. */
  public int[] segmentDocs(int s) {
    return Arrays.copyOfRange(rowToDoc, segRowStart[s], segRowStart[s + 1]);
  }

  /**
   * The keys of wave segment {@code s}, rows in cluster-contiguous order: a read-only view of the
   * mapped file when the directory maps files (no copy), else an off-heap copy. Close it when done.
   */
  public VectorStore keys(int s) throws IOException {
    return block(s, false);
  }

  /** The values of wave segment {@code s}, in the same row order as {@link #keys(int)}. */
  public VectorStore values(int s) throws IOException {
    requirePaired();
    return block(s, true);
  }

  /**
   * The keys of cluster {@code c}, rows in ascending doc order, as one contiguous block of the
   * storage type (little-endian): a slice of the mapped file when the directory maps files (no
   * copy at all), else an off-heap copy freed by the garbage collector.
   */
  public MemorySegment clusterKeys(int c) throws IOException {
    return clusterBlock(c, false);
  }

  /** The values of cluster {@code c}, in the row order of {@link #clusterKeys(int)}. */
  public MemorySegment clusterValues(int c) throws IOException {
    requirePaired();
    return clusterBlock(c, true);
  }

  private MemorySegment clusterBlock(int c, boolean values) throws IOException {
    int s = segmentOfRow(clusterRowStart[c]);
    verify(s, values);
    long offset = blockOffset(s, values) + (clusterRowStart[c] - segRowStart[s]) * rowBytes;
    long length = clusterSize(c) * rowBytes;
    MemorySegment memory = reader.dataMemory();
    if (memory != null) {
      return memory.asSlice(offset, length).asReadOnly();
    }
    MemorySegment copy = java.lang.foreign.Arena.ofAuto().allocate(length, 64);
    IndexInput in = reader.dataInput().clone();
    in.seek(offset);
    byte[] chunk = new byte[(int) Math.min(1 << 16, Math.max(1, length))];
    for (long done = 0; done < length; done += chunk.length) {
      int len = (int) Math.min(chunk.length, length - done);
      in.readBytes(chunk, 0, len);
      MemorySegment.copy(MemorySegment.ofArray(chunk), 0, copy, done, len);
    }
    return copy.asReadOnly();
  }

  /**
   * Wave segment {@code s} as wave-core's {@link ClusteredSegment}: {@code localIndex[i]} is the
   * segment-local token index (position minus {@code firstPosition}) of row {@code segmentFirstRow(s)
   * + i}.
   */
  public ClusteredSegment clusteredSegment(int s, int firstPosition, int[] localIndex)
      throws IOException {
    requirePaired();
    int rows = segmentRows(s);
    if (localIndex.length != rows) {
      throw new IllegalArgumentException("wave segment " + s + " has " + rows + " rows, got "
          + localIndex.length + " token indices");
    }
    int c0 = segClusterStart[s];
    int c1 = segClusterStart[s + 1];
    int[] offsets = new int[c1 - c0 + 1];
    for (int c = c0; c <= c1; c++) {
      offsets[c - c0] = clusterRowStart[c] - segRowStart[s];
    }
    return new ClusteredSegment(dim, firstPosition, localIndex.clone(), offsets, centroids(s),
        valueSums(s), spreads(s));
  }

  private void requirePaired() {
    if (valueInfo == null) {
      throw new IllegalStateException("field '" + info.name + "' is stored without paired values"
          + " in this segment; write keys and values through ContextWriter");
    }
  }

  // ---- data access ----

  private long blockOffset(int s, boolean values) {
    return values ? valueOffset[s] : keyOffset[s];
  }

  /** Nanoseconds this process spent checking K/V blocks' CRC32s (for the benchmarks' breakdown). */
  private static final java.util.concurrent.atomic.LongAdder VERIFY_NANOS =
      new java.util.concurrent.atomic.LongAdder();

  /** Nanoseconds this process has spent checking K/V blocks' checksums so far, over all threads. */
  public static long verifyNanos() {
    return VERIFY_NANOS.sum();
  }

  /** Verifies the CRC32 of a block the first time it is used. */
  void verify(int s, boolean values) throws IOException {
    int bit = values ? 2 : 1;
    if ((verified.get(s) & bit) != 0) {
      return;
    }
    long t0 = System.nanoTime();
    try {
      verifyBlock(s, values, bit);
    } finally {
      VERIFY_NANOS.add(System.nanoTime() - t0);
    }
  }

  private void verifyBlock(int s, boolean values, int bit) throws IOException {
    long offset = blockOffset(s, values);
    long length = segmentRows(s) * rowBytes;
    CRC32 crc = new CRC32();
    MemorySegment memory = reader.dataMemory();
    if (memory != null) {
      crc.update(memory.asSlice(offset, length).asByteBuffer());
    } else {
      IndexInput in = reader.dataInput().clone();
      in.seek(offset);
      byte[] chunk = new byte[(int) Math.min(1 << 16, Math.max(1, length))];
      for (long done = 0; done < length; done += chunk.length) {
        int len = (int) Math.min(chunk.length, length - done);
        in.readBytes(chunk, 0, len);
        crc.update(chunk, 0, len);
      }
    }
    int expected = values ? valueCrc[s] : keyCrc[s];
    if ((int) crc.getValue() != expected) {
      throw new CorruptIndexException("checksum failed for the " + (values ? "values" : "keys")
          + " of wave segment " + s + " of field '" + info.name + "' (expected crc32 "
          + Integer.toHexString(expected) + ", found " + Integer.toHexString((int) crc.getValue())
          + ")", reader.dataInput());
    }
    int cur;
    do {
      cur = verified.get(s);
    } while (!verified.compareAndSet(s, cur, cur | bit));
  }

  private VectorStore block(int s, boolean values) throws IOException {
    verify(s, values);
    int rows = segmentRows(s);
    long offset = blockOffset(s, values);
    MemorySegment memory = reader.dataMemory();
    if (memory != null) {
      return VectorStore.wrap(memory.asSlice(offset, rows * rowBytes), dim, storage, rows);
    }
    VectorStore out = VectorStore.allocate(dim, storage, Math.max(1, rows));
    IndexInput in = reader.dataInput().clone();
    in.seek(offset);
    int chunkRows = (int) Math.max(1, (1 << 16) / rowBytes);
    byte[] chunk = new byte[(int) (chunkRows * rowBytes)];
    MemorySegment heap = MemorySegment.ofArray(chunk);
    for (int done = 0; done < rows; done += chunkRows) {
      int n = Math.min(chunkRows, rows - done);
      in.readBytes(chunk, 0, (int) (n * rowBytes));
      out.appendRaw(heap, 0, n);
    }
    return out;
  }

  /** The global cluster id of row {@code row}. */
  private int clusterOfRow(int row) {
    int c = Arrays.binarySearch(clusterRowStart, row);
    if (c >= 0) {
      while (c + 1 < clusterRowStart.length && clusterRowStart[c + 1] == row) {
        c++;
      }
      return c;
    }
    return -c - 2;
  }

  private int segmentOfRow(int row) {
    int s = Arrays.binarySearch(segRowStart, row);
    if (s >= 0) {
      while (s + 1 < segRowStart.length && segRowStart[s + 1] == row) {
        s++; // skip empty segments (none are written, but stay safe)
      }
      return s;
    }
    return -s - 2;
  }

  /** Reads row {@code row} of the keys (or values) into {@code dst}. */
  void readRow(RowSource src, int row, boolean values, float[] dst) throws IOException {
    int s = segmentOfRow(row);
    verify(s, values);
    src.read(blockOffset(s, values) + (row - segRowStart[s]) * rowBytes, storage, dim, dst);
  }

  long dataBytes(boolean values) {
    return (long) size * rowBytes;
  }

  /** Lucene's view of the keys (or of the paired values). */
  FloatVectorValues vectorValues(boolean values) {
    return new Values(values);
  }

  private final class Values extends FloatVectorValues {
    private final boolean values;
    private final RowSource source;
    private final float[] buffer = new float[dim + trailing];
    private int bufferedOrd = -1;

    Values(boolean values) {
      this.values = values;
      this.source = reader.rowSource();
    }

    @Override
    public float[] vectorValue(int ord) throws IOException {
      if (ord != bufferedOrd) {
        int row = ordToRow[ord];
        readRow(source, row, values, buffer);
        if (trailing > 0) {
          int s = segmentOfRow(row);
          int cluster = steady(s) ? AssignedLayout.STEADY
              : clusterOfRow(row) - segClusterStart[s];
          AssignedLayout.encodeTrailing(tags[s], cluster, buffer, dim);
        }
        bufferedOrd = ord;
      }
      return buffer;
    }

    @Override
    public FloatVectorValues copy() {
      return new Values(values);
    }

    @Override
    public int dimension() {
      return dim + trailing;
    }

    @Override
    public int size() {
      return size;
    }

    @Override
    public int ordToDoc(int ord) {
      return ordToDoc[ord];
    }

    @Override
    public DocIndexIterator iterator() {
      return new DocIndexIterator() {
        private int ord = -1;
        private int doc = -1;

        @Override
        public int index() {
          return ord;
        }

        @Override
        public int docID() {
          return doc;
        }

        @Override
        public int nextDoc() {
          return moveTo(ord + 1);
        }

        @Override
        public int advance(int target) {
          int at = Arrays.binarySearch(ordToDoc, Math.max(ord + 1, 0), size, target);
          return moveTo(at >= 0 ? at : -at - 1);
        }

        private int moveTo(int o) {
          if (o >= size) {
            ord = NO_MORE_DOCS;
            return doc = NO_MORE_DOCS;
          }
          ord = o;
          return doc = ordToDoc[o];
        }

        @Override
        public long cost() {
          return size;
        }
      };
    }

    @Override
    public VectorScorer scorer(float[] target) {
      if (size == 0) {
        return null;
      }
      if (target.length != dim + trailing) {
        throw new IllegalArgumentException("query vector of " + target.length
            + " dimensions, field '" + info.name + "' has " + (dim + trailing));
      }
      Values copy = new Values(values);
      DocIndexIterator it = copy.iterator();
      VectorSimilarityFunction sim = (values ? valueInfo : info).getVectorSimilarityFunction();
      float[] query = trailing > 0 ? Arrays.copyOf(target, dim) : target;
      float[] row = new float[dim];
      return new VectorScorer() {
        @Override
        public float score() throws IOException {
          float[] v = copy.vectorValue(it.index());
          if (trailing == 0) {
            return sim.compare(query, v);
          }
          System.arraycopy(v, 0, row, 0, dim); // the trailing components are not scored
          return sim.compare(query, row);
        }

        @Override
        public DocIdSetIterator iterator() {
          return it;
        }
      };
    }
  }

  // ---- IVF search ----

  /**
   * Probes the clusters in descending centroid score (for the paired values, whose clusters are the
   * keys', every cluster) and scores their accepted members exactly; stops after {@code probes}
   * clusters once {@code 2k} documents were scored, or when the collector's visit limit is hit.
   */
  void search(float[] target, KnnCollector collector, Bits accept, boolean values, int probes)
      throws IOException {
    int clusters = centroidNorm2.length;
    if (size == 0 || clusters == 0) {
      return;
    }
    VectorSimilarityFunction sim = (values ? valueInfo : info).getVectorSimilarityFunction();
    long[] order = new long[clusters];
    int first;
    if (values) {
      // The clusters are the keys': their centroids say nothing about values. Scan them all.
      for (int c = 0; c < clusters; c++) {
        order[c] = rankKey(0f, c);
      }
      first = clusters;
      probes = clusters;
    } else {
      // One vectorised pass of dot products over all centroids (wave-core's ranking kernel), turned
      // into an order-preserving proxy of the field's similarity.
      float[] dots = new float[clusters];
      KvKernels.scores(centroids, 0, clusters, target, 0, 1, 1f, dots, 0, clusters);
      for (int c = 0; c < clusters; c++) {
        order[c] = rankKey(rankScore(sim, dots[c], centroidNorm2[c]), c);
      }
      first = Math.min(clusters, Math.max(1, probes));
      TopSelection.selectLargest(order, 0, clusters, first);
      Arrays.sort(order, 0, first);
    }
    RowSource source = reader.rowSource();
    float[] row = new float[dim];
    // The top k of barely k candidates is a poor estimate: score at least 2k before stopping.
    long wanted = 2L * collector.k();
    int collected = 0;
    int probed = 0;
    int sortedUpTo = first;
    for (int i = 0; i < clusters; i++) {
      if (probed >= probes && collected >= wanted) {
        break;
      }
      if (i == sortedUpTo) {
        // Too few accepted documents so far: rank the remaining clusters too.
        Arrays.sort(order, i, clusters);
        sortedUpTo = clusters;
      }
      // Sorted ascending: walk from the end (largest score first).
      int pick = i < first ? first - 1 - i : clusters - 1 - (i - first);
      int c = rankId(order[pick]);
      int s = segmentOfRow(clusterRowStart[c]);
      verify(s, values);
      long base = blockOffset(s, values) - segRowStart[s] * rowBytes;
      for (int r = clusterRowStart[c]; r < clusterRowStart[c + 1]; r++) {
        int doc = rowToDoc[r];
        if (accept != null && !accept.get(doc)) {
          continue;
        }
        if (collector.earlyTerminated()) {
          return;
        }
        source.read(base + r * rowBytes, storage, dim, row);
        collector.incVisitedCount(1);
        collector.collect(doc, sim.compare(target, row));
        collected++;
      }
      probed++;
    }
  }

  /**
   * A score that orders centroids as the field's similarity orders them for one query: the query's
   * norm is the same for every centroid, so cosine ranks by {@code q.c / |c|} and Euclidean
   * distance by {@code 2 q.c - |c|^2}.
   */
  private static float rankScore(VectorSimilarityFunction sim, float dot, float norm2) {
    return switch (sim) {
      case EUCLIDEAN -> 2 * dot - norm2;
      case COSINE -> norm2 > 0 ? dot / (float) Math.sqrt(norm2) : Float.NEGATIVE_INFINITY;
      default -> dot;
    };
  }

  /** Packs a score (any sign) and a cluster id: larger score first, then smaller id. */
  private static long rankKey(float score, int c) {
    int bits = Float.floatToIntBits(score + 0f); // -0 becomes +0
    int sortable = bits ^ ((bits >> 31) & 0x7FFFFFFF); // signed ints ordered like the floats
    return ((long) sortable << 32) | (Integer.MAX_VALUE - c);
  }

  private static int rankId(long key) {
    return Integer.MAX_VALUE - (int) key;
  }

  void close() {
    centroids.close();
  }
}
