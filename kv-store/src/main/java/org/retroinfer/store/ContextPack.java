package org.retroinfer.store;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.store.ByteBuffersDirectory;
import org.apache.lucene.store.IOContext;
import org.apache.lucene.store.IndexOutput;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.store.IndexInput;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.ContextWriter;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.lucene.WaveVectorsFormat;
import org.retroinfer.lucene.DocumentChecksum;
import org.retroinfer.lucene.WaveField;
import org.retroinfer.lucene.WaveVectorsReader;

/**
 * One stored context as a single byte string: the files of a context store that holds only that
 * context (its {@code store.properties} and the Lucene index the store wrote with the wave codec,
 * so the K/V and the clusters travel as the codec's own files, never re-clustered). A remote store
 * keeps and serves packs; the host opens one as an ordinary store and reads it with the same code
 * as a local one, so hits, verification and answers are the same.
 *
 * <p>Layout (big-endian): magic {@code "RIPACK01"}; {@code int} file count; per file a
 * {@code short}-prefixed UTF-8 name ({@code store.properties} or {@code index/<lucene file>}),
 * {@code long} length and the bytes; last a {@code long} CRC32 of everything before it.
 */
public final class ContextPack {
  private static final byte[] MAGIC = "RIPACK01".getBytes(StandardCharsets.US_ASCII);
  private static final String PROPERTIES = "store.properties";
  private static final String INDEX = "index/";
  /** Largest pack accepted: the files of one context (a 16K context of the shipped model is 57 MB). */
  public static final long MAX_BYTES = Integer.MAX_VALUE - 64;

  private ContextPack() {}

  /**
   * Packs the store at {@code storeDir}, which must hold exactly the one context to ship (e.g. a
   * temporary store written for it) and no writer.
   */
  public static byte[] pack(Path storeDir) throws IOException {
    Map<String, Path> files = new TreeMap<>();
    files.put(PROPERTIES, storeDir.resolve(PROPERTIES));
    try (Stream<Path> s = Files.list(storeDir.resolve("index"))) {
      s.filter(p -> !p.getFileName().toString().equals("write.lock"))
          .forEach(p -> files.put(INDEX + p.getFileName(), p));
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.write(MAGIC);
      out.writeInt(files.size());
      for (Map.Entry<String, Path> f : files.entrySet()) {
        out.writeUTF(f.getKey());
        out.writeLong(Files.size(f.getValue()));
        Files.copy(f.getValue(), out);
      }
    }
    return seal(bytes.toByteArray());
  }

  /** Appends the CRC32 of {@code body} (magic, count, files). */
  private static byte[] seal(byte[] body) {
    CRC32 crc = new CRC32();
    crc.update(body);
    byte[] packed = new byte[body.length + Long.BYTES];
    System.arraycopy(body, 0, packed, 0, body.length);
    ByteBuffer.wrap(packed, body.length, Long.BYTES).putLong(crc.getValue());
    return packed;
  }

  /**
   * A pack of one context from its parts, as a server that keeps the K/V as vector fields builds it
   * back: the record ({@code info}, token ids, logits or null), the chunk size and prefix keys of the
   * store it came from, and the K/V ({@code context}, e.g. put back together by
   * {@link org.retroinfer.lucene.AssignedLayout#restore}), written in the assigned layout
   * ({@link ContextWriter#writeAssigned}), so nothing is clustered again. The host opens it like
   * any pack: the same record, keys, clusters and attention as the pack the context was put with.
   */
  public static byte[] build(ContextInfo info, int chunkTokens, List<PrefixKey> prefixKeys,
      int[] tokens, float[] logits, LoadedContext context) throws IOException {
    if (tokens.length != info.tokens() || tokens.length != context.length()
        || (logits != null) != info.hasLogits()) {
      throw new IllegalArgumentException("the record says " + info.tokens() + " tokens"
          + (info.hasLogits() ? " with logits" : "") + ", got " + tokens.length + " token ids"
          + (logits != null ? " with logits" : "") + " and a context of " + context.length());
    }
    byte[] properties = ContextStore.propertiesText(chunkTokens);
    try (ByteBuffersDirectory dir = new ByteBuffersDirectory()) {
      IndexWriterConfig config = ContextWriter.indexWriterConfig();
      config.setUseCompoundFile(false);
      try (IndexWriter w = new IndexWriter(dir, config)) {
        org.retroinfer.wave.attention.AttentionShape shape = context.shape();
        org.retroinfer.wave.HeadLayout[][] heads =
            new org.retroinfer.wave.HeadLayout[shape.layers()][shape.kvHeads()];
        for (int l = 0; l < shape.layers(); l++) {
          for (int h = 0; h < shape.kvHeads(); h++) {
            heads[l][h] = context.layout(l, h);
          }
        }
        new ContextWriter(w).writeAssigned(info.id(), tokens, shape, heads, 0);
        w.addDocuments(ContextStore.recordDocs(info, tokens, logits, prefixKeys));
        w.commit();
      }
      // the files in name order, read straight into one array of the pack's final size (a 16K
      // context's pack is tens of MB)
      TreeMap<String, String> names = new TreeMap<>(); // pack name -> directory name
      names.put(PROPERTIES, null);
      for (String name : dir.listAll()) {
        if (!name.equals("write.lock")) {
          names.put(INDEX + name, name);
        }
      }
      long size = MAGIC.length + Integer.BYTES + Long.BYTES;
      for (Map.Entry<String, String> f : names.entrySet()) {
        size += Short.BYTES + f.getKey().getBytes(StandardCharsets.UTF_8).length + Long.BYTES
            + (f.getValue() == null ? properties.length : dir.fileLength(f.getValue()));
      }
      if (size > MAX_BYTES) {
        throw new IllegalArgumentException("the context's pack would be " + size + " bytes, more"
            + " than " + MAX_BYTES);
      }
      byte[] packed = new byte[(int) size];
      ByteBuffer b = ByteBuffer.wrap(packed).order(ByteOrder.BIG_ENDIAN);
      b.put(MAGIC).putInt(names.size());
      for (Map.Entry<String, String> f : names.entrySet()) {
        byte[] name = f.getKey().getBytes(StandardCharsets.UTF_8);
        b.putShort((short) name.length).put(name);
        if (f.getValue() == null) {
          b.putLong(properties.length).put(properties);
          continue;
        }
        try (IndexInput in = dir.openInput(f.getValue(), IOContext.READONCE)) {
          int length = Math.toIntExact(in.length());
          b.putLong(length);
          in.readBytes(packed, b.position(), length);
          b.position(b.position() + length);
        }
      }
      CRC32 crc = new CRC32();
      crc.update(packed, 0, b.position());
      b.putLong(crc.getValue());
      return packed;
    }
  }

  /**
   * The Lucene index of a pack, in memory, after checking its framing and CRC32 (not the Lucene
   * checksums: {@link #describe} checks those); the caller closes it.
   */
  public static DirectoryReader open(byte[] pack) throws IOException {
    return DirectoryReader.open(directory(files(pack)));
  }

  /** Writes the files of a pack into {@code storeDir} (a new, empty directory), checked first. */
  public static void unpack(byte[] pack, Path storeDir) throws IOException {
    Files.createDirectories(storeDir.resolve("index"));
    for (Map.Entry<String, byte[]> f : files(pack).entrySet()) {
      Files.write(storeDir.resolve(f.getKey()), f.getValue());
    }
  }

  /** The files of a pack by name, after checking its framing and checksum. */
  static Map<String, byte[]> files(byte[] pack) throws CorruptIndexException {
    if (pack.length < MAGIC.length + Integer.BYTES + Long.BYTES) {
      throw bad("it has " + pack.length + " bytes, fewer than any pack");
    }
    for (int i = 0; i < MAGIC.length; i++) {
      if (pack[i] != MAGIC[i]) {
        throw bad("it does not start with the pack magic RIPACK01");
      }
    }
    CRC32 crc = new CRC32();
    crc.update(pack, 0, pack.length - Long.BYTES);
    ByteBuffer b = ByteBuffer.wrap(pack).order(ByteOrder.BIG_ENDIAN);
    long stored = b.getLong(pack.length - Long.BYTES);
    if (stored != crc.getValue()) {
      throw bad("its CRC32 is " + Long.toHexString(crc.getValue()) + " but it says "
          + Long.toHexString(stored) + " (truncated or changed in transit)");
    }
    b.position(MAGIC.length);
    int count = b.getInt();
    if (count < 2 || count > 10_000) {
      throw bad("it says it holds " + count + " files");
    }
    Map<String, byte[]> files = new LinkedHashMap<>();
    int end = pack.length - Long.BYTES;
    for (int i = 0; i < count; i++) {
      if (b.position() + Short.BYTES > end) {
        throw bad("file " + i + " of " + count + " is cut off");
      }
      int nameLength = Short.toUnsignedInt(b.getShort());
      if (b.position() + nameLength + Long.BYTES > end) {
        throw bad("file " + i + " of " + count + " is cut off");
      }
      String name = new String(pack, b.position(), nameLength, StandardCharsets.UTF_8);
      b.position(b.position() + nameLength);
      long length = b.getLong();
      if (!name.equals(PROPERTIES) && !(name.startsWith(INDEX)
          && name.substring(INDEX.length()).matches("[A-Za-z0-9_.\\-]+"))) {
        throw bad("it holds a file named '" + name + "', which no store has");
      }
      if (length < 0 || length > end - b.position()) {
        throw bad("file " + name + " says " + length + " bytes, more than the pack has");
      }
      byte[] data = new byte[(int) length];
      b.get(data);
      files.put(name, data);
    }
    if (b.position() != end) {
      throw bad((end - b.position()) + " bytes follow its last file");
    }
    if (!files.containsKey(PROPERTIES)) {
      throw bad("it has no " + PROPERTIES);
    }
    return files;
  }

  private static CorruptIndexException bad(String what) {
    return new CorruptIndexException("not a context pack: " + what, "context pack");
  }

  /**
   * Opens a pack in memory and checks it whole: framing, every Lucene file's checksum, one record
   * with a valid checksum, and every K/V field of the head dim its record states. What a server
   * keeps about a context to find it (its record and prefix keys) and to describe it (its clusters)
   * comes from here, never from what a caller claims.
   *
   * @throws CorruptIndexException (or another IOException) when the pack is not a valid context
   */
  public static Description describe(byte[] pack) throws IOException {
    try (Checked checked = check(pack)) {
      return checked.description();
    }
  }

  /**
   * {@link #describe}, keeping the pack's index open: for a caller that goes on to read the
   * context (e.g. {@code ContextReader.load(checked.reader(), id)}) without copying the pack into
   * memory a second time. Close it.
   */
  public static Checked check(byte[] pack) throws IOException {
    Map<String, byte[]> files = files(pack);
    java.util.Properties p = new java.util.Properties();
    p.load(new java.io.StringReader(new String(files.get(PROPERTIES), StandardCharsets.ISO_8859_1)));
    int chunkTokens = Integer.parseInt(p.getProperty("chunkTokens", "0"));
    ByteBuffersDirectory dir = directory(files);
    DirectoryReader reader = null;
    boolean ok = false;
    try {
      reader = DirectoryReader.open(dir);
      Checked checked = new Checked(describe(reader, chunkTokens, pack.length), reader);
      ok = true;
      return checked;
    } finally {
      if (!ok) {
        org.apache.lucene.util.IOUtils.closeWhileHandlingException(reader, dir);
      }
    }
  }

  /** A checked pack: its description and its index, open in memory. */
  public record Checked(Description description, DirectoryReader reader) implements AutoCloseable {
    @Override
    public void close() throws IOException {
      org.apache.lucene.store.Directory dir = reader.directory();
      try {
        reader.close();
      } finally {
        dir.close();
      }
    }
  }

  /** The Lucene files of a pack in a new in-memory directory. */
  private static ByteBuffersDirectory directory(Map<String, byte[]> files) throws IOException {
    ByteBuffersDirectory dir = new ByteBuffersDirectory();
    for (Map.Entry<String, byte[]> f : files.entrySet()) {
      if (f.getKey().startsWith(INDEX)) {
        try (IndexOutput out = dir.createOutput(f.getKey().substring(INDEX.length()),
            IOContext.DEFAULT)) {
          out.writeBytes(f.getValue(), f.getValue().length);
        }
      }
    }
    return dir;
  }

  private static Description describe(DirectoryReader reader, int chunkTokens, long bytes)
      throws IOException {
    for (LeafReaderContext leaf : reader.leaves()) {
      leaf.reader().checkIntegrity();
    }
    IndexSearcher s = new IndexSearcher(reader);
    ScoreDoc[] records = s.search(new TermQuery(new Term(StoreFields.KIND,
        StoreFields.KIND_RECORD)), 2).scoreDocs;
    if (records.length != 1) {
      throw bad("it holds " + records.length + " context records; a pack holds exactly one");
    }
    Document rec = s.storedFields().document(records[0].doc);
    DocumentChecksum.verify(rec, StoreFields.CHECKSUM, "its record");
    ContextInfo info = new ContextInfo(rec.get(StoreFields.CONTEXT), rec.get(StoreFields.NAME),
        rec.get(StoreFields.CONTEXT_KIND), rec.get(StoreFields.NAMESPACE),
        rec.get(StoreFields.MODEL), rec.get(StoreFields.TENANT),
        rec.getField(StoreFields.TOKENS).numericValue().intValue(),
        rec.getBinaryValue(StoreFields.LOGITS) != null,
        Instant.ofEpochMilli(rec.getField(StoreFields.CREATED).numericValue().longValue()),
        rec.get(StoreFields.SHAPE), rec.get(StoreFields.CONFIG));
    int headDim = shapeValue(info.shape(), "headDim");
    int layers = shapeValue(info.shape(), "layers");
    int kvHeads = shapeValue(info.shape(), "kvHeads");
    List<PrefixKey> prefixes = prefixKeys(reader, s);
    Map<String, FieldStats> fields = new TreeMap<>();
    for (LeafReaderContext leaf : reader.leaves()) {
      for (FieldInfo fi : leaf.reader().getFieldInfos()) {
        if (!ContextFields.isKvField(fi.name)) {
          continue;
        }
        int trailing = WaveVectorsFormat.Layout.ASSIGNED.attribute().equals(
            fi.getAttribute(WaveVectorsFormat.ATTR_LAYOUT)) ? AssignedLayout.TRAILING : 0;
        if (fi.getVectorDimension() - trailing != headDim) {
          throw new IllegalArgumentException("K/V field " + fi.name + " has vectors of dim "
              + fi.getVectorDimension() + " but the context's record says head dim " + headDim
              + " (" + info.shape() + "); pack the context again from its cache");
        }
        WaveField f = WaveVectorsReader.waveField(leaf.reader(), fi.name);
        if (f != null && f.name().equals(fi.name)) {
          fields.computeIfAbsent(fi.name, n -> new FieldStats(n)).add(f);
        }
      }
    }
    if (fields.size() != layers * kvHeads) {
      throw new IllegalArgumentException("the pack holds wave K/V for " + fields.size()
          + " (layer, KV head) pairs but its shape says " + layers + " x " + kvHeads);
    }
    BytesRef logits = rec.getBinaryValue(StoreFields.LOGITS);
    int[] tokenIds = ContextStore.bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS));
    if (tokenIds.length != info.tokens()) {
      throw bad("its record holds " + tokenIds.length + " token ids for " + info.tokens()
          + " tokens");
    }
    return new Description(info, chunkTokens, prefixes, List.copyOf(fields.values()),
        reader.leaves().size(), bytes, tokenIds,
        logits == null ? null : ContextStore.bytesToFloats(logits));
  }

  private static int shapeValue(String shape, String key) {
    for (String part : shape.split(",")) {
      String[] kv = part.split("=");
      if (kv.length == 2 && kv[0].equals(key)) {
        return Integer.parseInt(kv[1]);
      }
    }
    throw new IllegalArgumentException("the context's shape '" + shape + "' names no " + key);
  }

  private static List<PrefixKey> prefixKeys(DirectoryReader reader, IndexSearcher s)
      throws IOException {
    List<PrefixKey> keys = new ArrayList<>();
    for (LeafReaderContext leaf : reader.leaves()) {
      LeafReader r = leaf.reader();
      Terms terms = r.terms(StoreFields.PREFIX);
      if (terms == null) {
        continue;
      }
      TermsEnum te = terms.iterator();
      PostingsEnum pe = null;
      for (BytesRef t = te.next(); t != null; t = te.next()) {
        pe = te.postings(pe, PostingsEnum.NONE);
        for (int d = pe.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = pe.nextDoc()) {
          Document doc = r.storedFields().document(d);
          keys.add(new PrefixKey(t.utf8ToString(),
              doc.getField(StoreFields.PREFIX_TOKENS).numericValue().intValue()));
        }
      }
    }
    keys.sort(java.util.Comparator.comparingInt(PrefixKey::tokens));
    return keys;
  }

  /** One prefix key of a context: the chained hash of its first {@code tokens} tokens. */
  public record PrefixKey(String hash, int tokens) {}

  /** The clusters of one K/V key field (with its paired values), over the pack's segments. */
  public static final class FieldStats {
    private final String field;
    private int vectors;
    private int waveSegments;
    private int steadySegments;
    private int clusters;
    private int minCluster = Integer.MAX_VALUE;
    private int maxCluster;
    private String storage = "";
    private int dim;

    FieldStats(String field) {
      this.field = field;
    }

    void add(WaveField f) {
      vectors += f.size();
      dim = f.dimension();
      storage = f.storage().name();
      for (int s = 0; s < f.segmentCount(); s++) {
        waveSegments++;
        if (f.steady(s)) {
          steadySegments++;
        }
      }
      for (int c = 0; c < f.clusterCount(); c++) {
        int size = f.clusterSize(c);
        clusters++;
        minCluster = Math.min(minCluster, size);
        maxCluster = Math.max(maxCluster, size);
      }
    }

    public String field() {
      return field;
    }

    public int vectors() {
      return vectors;
    }

    public int dim() {
      return dim;
    }

    public String storage() {
      return storage;
    }

    public int waveSegments() {
      return waveSegments;
    }

    public int steadySegments() {
      return steadySegments;
    }

    public int clusters() {
      return clusters;
    }

    public int minClusterSize() {
      return clusters == 0 ? 0 : minCluster;
    }

    public int maxClusterSize() {
      return maxCluster;
    }
  }

  /**
   * What a valid pack holds: its context's record, the store's chunk size, its prefix keys by
   * length, the clusters of every K/V key field, the number of Lucene segments, its size, and the
   * record's token ids and logits (null if none were stored).
   */
  public record Description(ContextInfo info, int chunkTokens, List<PrefixKey> prefixKeys,
      List<FieldStats> fields, int luceneSegments, long bytes, int[] tokenIds, float[] logits) {}
}
