package org.retroinfer.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.function.Consumer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.MatchAllDocsQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TermInSetQuery;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.LockObtainFailedException;
import org.apache.lucene.util.BytesRef;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.ContextReader;
import org.retroinfer.lucene.ContextWriter;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.HeadwiseContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * A directory of stored contexts (token ids, K/V and wave index per (layer, KV head), for one model
 * and tenant each), found by their longest prefix and loaded ready for decode.
 *
 * <p>Layout of the directory: {@code store.properties} (format version, chunk size: fixed when the
 * store is created) and {@code index/}, one Apache Lucene index written with lucene-codec's
 * {@code WaveCodec}: the K/V documents of {@code ContextWriter}, and per context one record and one
 * prefix key per whole chunk ({@link StoreFields}).
 *
 * <p>Guarantees:
 * <ul>
 *   <li><b>One writer, many readers.</b> {@link #open} takes Lucene's write lock (one writing process
 *       at a time; a second gets a clear error); {@link #openReadOnly} takes no lock, and any number
 *       of readers, in this and other processes, read while a writer writes.
 *   <li><b>All or nothing.</b> A put or a delete is one Lucene commit. Readers see only committed
 *       contexts, each complete; after a crash (kill -9 in the middle of a put) the store opens at its
 *       last commit with nothing of the interrupted put visible.
 *   <li><b>No foreign K/V.</b> A context is only ever returned to a {@link Scope} with the same
 *       namespace (model fingerprint, K/V type, chunk size, tenant salt), and only for a prompt
 *       whose leading tokens equal the stored token ids: every hash hit is verified token by token,
 *       and the loaded token ids are compared again with the record's.
 * </ul>
 *
 * <p>Thread-safe. Readers refresh to the newest commit with {@link #refresh()} (a writer's own
 * reads see its commits at once).
 */
public final class ContextStore implements AutoCloseable {
  /** Format of {@code store.properties}. */
  public static final int FORMAT = 1;
  private static final String PROPERTIES = "store.properties";

  private final Path root;
  private final Directory directory;
  private final boolean writable;
  private IndexWriter writer; // replaced after a failed put (rollback closes it)
  private final int chunkTokens;
  private final Object writeLock = new Object();
  private DirectoryReader reader;
  private boolean closed;

  private ContextStore(Path root, Directory directory, IndexWriter writer, int chunkTokens)
      throws IOException {
    this.root = root;
    this.directory = directory;
    this.writer = writer;
    this.writable = writer != null;
    this.chunkTokens = chunkTokens;
    this.reader = DirectoryReader.open(directory);
  }

  /** The default store directory: {@code $XDG_DATA_HOME/retroinfer/store}, else {@code ~/.local/share/retroinfer/store}. */
  public static Path defaultDirectory() {
    String xdg = System.getenv("XDG_DATA_HOME");
    Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg)
        : Path.of(System.getProperty("user.home"), ".local", "share");
    return base.resolve("retroinfer").resolve("store");
  }

  /** Opens (creating if needed) a store for writing, with the default chunk size for a new store. */
  public static ContextStore open(Path dir) throws IOException {
    return open(dir, PrefixHasher.DEFAULT_CHUNK_TOKENS);
  }

  /**
   * Opens a store for writing, creating it with chunks of {@code chunkTokens} if it does not exist (an
   * existing store keeps its own chunk size).
   *
   * @throws IllegalStateException if another process holds the store's write lock
   */
  public static ContextStore open(Path dir, int chunkTokens) throws IOException {
    Files.createDirectories(dir);
    int chunk = readOrCreateProperties(dir, chunkTokens);
    Directory d = FSDirectory.open(dir.resolve("index"));
    IndexWriter w;
    try {
      w = newWriter(d);
    } catch (LockObtainFailedException e) {
      d.close();
      throw new IllegalStateException("store " + dir + " is open for writing by another process"
          + " (index/write.lock is held); open it read-only, or wait for that process to finish", e);
    } catch (IOException | RuntimeException e) {
      d.close();
      throw e;
    }
    try {
      if (!DirectoryReader.indexExists(d)) {
        w.commit(); // an empty first commit, so that readers can open the store at once
      }
      return new ContextStore(dir, d, w, chunk);
    } catch (IOException | RuntimeException e) {
      w.close();
      d.close();
      throw e;
    }
  }

  private static IndexWriter newWriter(Directory d) throws IOException {
    IndexWriterConfig c = ContextWriter.indexWriterConfig();
    c.setOpenMode(IndexWriterConfig.OpenMode.CREATE_OR_APPEND);
    c.setCommitOnClose(false);
    return new IndexWriter(d, c);
  }

  /** Opens an existing store for reading only; takes no lock. */
  public static ContextStore openReadOnly(Path dir) throws IOException {
    if (!Files.isRegularFile(dir.resolve(PROPERTIES))) {
      throw new IllegalArgumentException("no context store at " + dir.toAbsolutePath() + " (no "
          + PROPERTIES + "); create one with a put (e.g. 'retroinfer store put --store " + dir
          + " ...') or pass the right --store DIR");
    }
    int chunk = readOrCreateProperties(dir, -1);
    Directory d = FSDirectory.open(dir.resolve("index"));
    try {
      if (!DirectoryReader.indexExists(d)) {
        throw new IllegalArgumentException("store " + dir + " has no committed index yet; put a"
            + " context first");
      }
      return new ContextStore(dir, d, null, chunk);
    } catch (IOException | RuntimeException e) {
      d.close();
      throw e;
    }
  }

  private static int readOrCreateProperties(Path dir, int chunkTokens) throws IOException {
    Path file = dir.resolve(PROPERTIES);
    Properties p = new Properties();
    if (Files.isRegularFile(file)) {
      try (var in = Files.newInputStream(file)) {
        p.load(in);
      }
      String format = p.getProperty("format");
      String chunk = p.getProperty("chunkTokens");
      if (!Integer.toString(FORMAT).equals(format) || chunk == null || !chunk.matches("[1-9][0-9]*")) {
        throw new IllegalArgumentException(file + " says format=" + format + ", chunkTokens=" + chunk
            + "; this code reads format " + FORMAT + " with a positive chunk size: the directory"
            + " is not a context store of this version");
      }
      return Integer.parseInt(chunk);
    }
    if (chunkTokens < 1) {
      throw new IllegalArgumentException("chunk size must be at least 1 token, got " + chunkTokens);
    }
    p.setProperty("format", Integer.toString(FORMAT));
    p.setProperty("chunkTokens", Integer.toString(chunkTokens));
    // Written to a temporary file and renamed: a crash never leaves a half-written properties file.
    Path tmp = Files.createTempFile(dir, PROPERTIES, ".tmp");
    try (var out = Files.newOutputStream(tmp)) {
      p.store(out, "retroinfer context store");
    }
    try {
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
    }
    return chunkTokens;
  }

  public Path directory() {
    return root;
  }

  /** Tokens per prefix-key chunk, fixed when the store was created. */
  public int chunkTokens() {
    return chunkTokens;
  }

  public boolean writable() {
    return writable;
  }

  /** The part of the store that belongs to one model, K/V type and tenant. */
  public Scope scope(ModelFingerprint model, String tenantSalt, KvDType kvType) {
    return new Scope(model, tenantSalt, kvType);
  }

  /** Sees the newest commit (of this or another process). */
  public void refresh() throws IOException {
    synchronized (this) {
      ensureOpen();
      DirectoryReader newer = DirectoryReader.openIfChanged(reader);
      if (newer != null) {
        DirectoryReader old = reader;
        reader = newer;
        old.decRef();
      }
    }
  }

  /** Every stored context, oldest first. */
  public List<ContextInfo> list() throws IOException {
    return withReader(r -> {
      IndexSearcher s = searcher(r);
      Query q = kindQuery(StoreFields.KIND_RECORD, new MatchAllDocsQuery());
      // sized by the hits, not the index: a store holds many token documents per context
      TopDocs top = s.search(q, Math.max(1, s.count(q)));
      List<ContextInfo> out = new ArrayList<>();
      for (ScoreDoc sd : top.scoreDocs) {
        out.add(info(s.storedFields().document(sd.doc)));
      }
      out.sort(Comparator.comparing(ContextInfo::created).thenComparing(ContextInfo::id));
      return out;
    });
  }

  /** The context with this id, if stored. */
  public Optional<ContextInfo> info(String id) throws IOException {
    return withReader(r -> Optional.ofNullable(record(searcher(r), id)).map(ContextStore::info));
  }

  /** Deletes a context (one commit). Returns whether it existed. */
  public boolean delete(String id) throws IOException {
    requireWriter("delete");
    synchronized (writeLock) {
      ensureWriterOpen();
      boolean existed = info(id).isPresent();
      writer.deleteDocuments(new Term(ContextFields.CONTEXT, id), new Term(StoreFields.CONTEXT, id));
      writer.commit();
      refresh();
      return existed;
    }
  }

  /** The Lucene directory of the index (for inspection). */
  public Directory luceneDirectory() {
    return directory;
  }

  /** Runs {@code action} on the current committed reader, held open for its duration. */
  public <T> T withReader(ReaderAction<T> action) throws IOException {
    DirectoryReader r;
    synchronized (this) {
      ensureOpen();
      r = reader;
      r.incRef();
    }
    try {
      return action.apply(r);
    } finally {
      r.decRef();
    }
  }

  /** Something done with a reader. */
  @FunctionalInterface
  public interface ReaderAction<T> {
    T apply(DirectoryReader reader) throws IOException;
  }

  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    try {
      reader.decRef();
      synchronized (writeLock) {
        if (writer != null) {
          writer.rollback(); // nothing is pending: every change was committed
        }
      }
    } finally {
      directory.close();
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("context store " + root + " is closed");
    }
  }

  private void ensureWriterOpen() {
    if (writer == null || !writer.isOpen()) {
      throw new IllegalStateException("the writer of store " + root + " was lost after a failed"
          + " put; reopen the store");
    }
  }

  private void requireWriter(String what) {
    ensureOpen();
    if (!writable) {
      throw new IllegalStateException("cannot " + what + ": store " + root + " was opened read-only;"
          + " open it with ContextStore.open (one writer at a time)");
    }
  }

  // ------------------------------------------------------------------ documents

  private static IndexSearcher searcher(DirectoryReader r) {
    IndexSearcher s = new IndexSearcher(r);
    s.setQueryCache(null);
    return s;
  }

  private static Query kindQuery(String kind, Query q) {
    return new BooleanQuery.Builder()
        .add(new TermQuery(new Term(StoreFields.KIND, kind)), BooleanClause.Occur.FILTER)
        .add(q, BooleanClause.Occur.FILTER)
        .build();
  }

  private static Document record(IndexSearcher s, String id) throws IOException {
    TopDocs top = s.search(kindQuery(StoreFields.KIND_RECORD,
        new TermQuery(new Term(StoreFields.CONTEXT, id))), 2);
    return top.scoreDocs.length == 0 ? null : s.storedFields().document(top.scoreDocs[0].doc);
  }

  private static ContextInfo info(Document d) {
    return new ContextInfo(d.get(StoreFields.CONTEXT), d.get(StoreFields.NAME),
        d.get(StoreFields.CONTEXT_KIND), d.get(StoreFields.NAMESPACE), d.get(StoreFields.MODEL),
        d.get(StoreFields.TENANT), d.getField(StoreFields.TOKENS).numericValue().intValue(),
        d.getBinaryValue(StoreFields.LOGITS) != null,
        Instant.ofEpochMilli(d.getField(StoreFields.CREATED).numericValue().longValue()),
        d.get(StoreFields.SHAPE), d.get(StoreFields.CONFIG));
  }

  static byte[] intsToBytes(int[] a, int n) {
    ByteBuffer b = ByteBuffer.allocate(n * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      b.putInt(a[i]);
    }
    return b.array();
  }

  static int[] bytesToInts(BytesRef r) {
    ByteBuffer b = ByteBuffer.wrap(r.bytes, r.offset, r.length).order(ByteOrder.LITTLE_ENDIAN);
    int[] a = new int[r.length / Integer.BYTES];
    for (int i = 0; i < a.length; i++) {
      a[i] = b.getInt();
    }
    return a;
  }

  static byte[] floatsToBytes(float[] a) {
    ByteBuffer b = ByteBuffer.allocate(a.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : a) {
      b.putFloat(f);
    }
    return b.array();
  }

  static float[] bytesToFloats(BytesRef r) {
    ByteBuffer b = ByteBuffer.wrap(r.bytes, r.offset, r.length).order(ByteOrder.LITTLE_ENDIAN);
    float[] a = new float[r.length / Float.BYTES];
    for (int i = 0; i < a.length; i++) {
      a[i] = b.getFloat();
    }
    return a;
  }

  private static String shapeText(AttentionShape s) {
    return "layers=" + s.layers() + ",queryHeads=" + s.queryHeads() + ",kvHeads=" + s.kvHeads()
        + ",headDim=" + s.headDim();
  }

  /**
   * The part of a store that one model, K/V type and tenant may see: put, find and load go through
   * a scope, whose prefix keys and namespace are seeded with all three.
   */
  public final class Scope {
    private final ModelFingerprint model;
    private final KvDType kvType;
    private final PrefixHasher hasher;
    private final String tenantHash;

    private Scope(ModelFingerprint model, String tenantSalt, KvDType kvType) {
      this.model = Objects.requireNonNull(model, "model");
      this.kvType = Objects.requireNonNull(kvType, "kvType");
      this.hasher = new PrefixHasher(model, tenantSalt, kvType, chunkTokens);
      this.tenantHash = tenantSalt.isEmpty() ? ""
          : HexFormat.of().formatHex(Hashing.sha256(tenantSalt.getBytes(StandardCharsets.UTF_8)))
              .substring(0, 16);
    }

    public ContextStore store() {
      return ContextStore.this;
    }

    public ModelFingerprint model() {
      return model;
    }

    /** The prefix chain's seed: what records of this scope carry. */
    public String namespace() {
      return hasher.namespace();
    }

    public PrefixHasher hasher() {
      return hasher;
    }

    /** The id a context of these tokens and kind gets in this scope. */
    public String contextId(String kind, int[] tokens) {
      MessageDigest md = Hashing.sha256();
      md.update((hasher.namespace() + "\n" + kind + "\n").getBytes(StandardCharsets.UTF_8));
      md.update(intsToBytes(tokens, tokens.length));
      return "c" + HexFormat.of().formatHex(md.digest()).substring(0, 31);
    }

    /**
     * Stores a context (one commit), replacing one with the same tokens and kind in this scope.
     *
     * @param name a label (e.g. a document's name), may be ""
     * @param kind {@code "prompt"} or {@code "document"}
     * @param tokens token ids by position; {@code tokens.length} must equal the cache's length
     * @param cache a wave context ({@code WaveHeadCache} heads) of this scope's K/V type
     * @param logits the logits after the last token, or null
     * @param progress told {@code "written"} once the K/V are written but not committed, and
     *     {@code "committed"} at the end; may be null
     */
    public ContextInfo put(String name, String kind, int[] tokens, ContextCache cache, float[] logits,
        Consumer<String> progress) throws IOException {
      requireWriter("put");
      Objects.requireNonNull(name, "name");
      if (!"prompt".equals(kind) && !"document".equals(kind)) {
        throw new IllegalArgumentException("context kind must be \"prompt\" or \"document\", got '"
            + kind + "'");
      }
      if (cache.backend().kvType() != kvType) {
        throw new IllegalArgumentException("the cache stores K/V as " + cache.backend().kvType()
            + " but this scope is for " + kvType + "; open the scope with the cache's type");
      }
      if (tokens.length == 0 || cache.length(0) != tokens.length) {
        throw new IllegalArgumentException(tokens.length + " token ids for a cache of "
            + cache.length(0) + " tokens; give one id per cached token (at least one)");
      }
      WaveConfig config = null;
      if (cache.head(0, 0) instanceof WaveHeadCache w) {
        config = w.config();
      }
      String id = contextId(kind, tokens);
      String[] chain = hasher.chain(tokens);
      synchronized (writeLock) {
        ensureWriterOpen();
        boolean committed = false;
        try {
          new ContextWriter(writer).write(id, tokens, cache);
          writer.deleteDocuments(new Term(StoreFields.CONTEXT, id));
          Document rec = new Document();
          rec.add(new StringField(StoreFields.CONTEXT, id, Field.Store.YES));
          rec.add(new StringField(StoreFields.KIND, StoreFields.KIND_RECORD, Field.Store.NO));
          rec.add(new StoredField(StoreFields.NAME, name));
          rec.add(new StoredField(StoreFields.CONTEXT_KIND, kind));
          rec.add(new StringField(StoreFields.NAMESPACE, hasher.namespace(), Field.Store.YES));
          rec.add(new StoredField(StoreFields.MODEL, model.hex()));
          rec.add(new StoredField(StoreFields.TENANT, tenantHash));
          rec.add(new StoredField(StoreFields.TOKENS, tokens.length));
          rec.add(new StoredField(StoreFields.TOKEN_IDS, intsToBytes(tokens, tokens.length)));
          if (logits != null) {
            rec.add(new StoredField(StoreFields.LOGITS, floatsToBytes(logits)));
          }
          rec.add(new StoredField(StoreFields.CREATED, System.currentTimeMillis()));
          rec.add(new StoredField(StoreFields.SHAPE, shapeText(cache.shape())));
          rec.add(new StoredField(StoreFields.CONFIG, String.valueOf(config)));
          List<Document> docs = new ArrayList<>();
          docs.add(rec);
          for (int i = 0; i < chain.length; i++) {
            Document p = new Document();
            p.add(new StringField(StoreFields.CONTEXT, id, Field.Store.YES));
            p.add(new StringField(StoreFields.KIND, StoreFields.KIND_PREFIX, Field.Store.NO));
            p.add(new StringField(StoreFields.PREFIX, chain[i], Field.Store.NO));
            p.add(new StoredField(StoreFields.PREFIX_TOKENS, (i + 1) * chunkTokens));
            docs.add(p);
          }
          writer.addDocuments(docs);
          writer.flush();
          if (progress != null) {
            progress.accept("written");
          }
          writer.commit();
          committed = true;
        } finally {
          if (!committed) {
            // Drop everything the failed put buffered (its documents and its delete of an older
            // version): the store stays at its last commit. Rollback closes the writer; reopen it.
            writer.rollback();
            writer = newWriter(directory);
          }
        }
        refresh();
        if (progress != null) {
          progress.accept("committed");
        }
        return info(id).orElseThrow(() -> new IllegalStateException("context " + id
            + " is not visible after its commit"));
      }
    }

    /**
     * The longest stored prefix of {@code prompt} in this scope, verified against the stored token
     * ids; empty if no whole chunk matches.
     */
    public Optional<PrefixMatch> find(int[] prompt) throws IOException {
      String[] chain = hasher.chain(prompt);
      if (chain.length == 0) {
        return Optional.empty();
      }
      return withReader(r -> {
        IndexSearcher s = searcher(r);
        List<BytesRef> terms = new ArrayList<>();
        for (String h : chain) {
          terms.add(new BytesRef(h));
        }
        Query q = kindQuery(StoreFields.KIND_PREFIX, new TermInSetQuery(StoreFields.PREFIX, terms));
        TopDocs top = s.search(q, Math.max(1, s.count(q)));
        Map<String, Integer> best = new HashMap<>();
        for (ScoreDoc sd : top.scoreDocs) {
          Document d = s.storedFields().document(sd.doc);
          best.merge(d.get(StoreFields.CONTEXT),
              d.getField(StoreFields.PREFIX_TOKENS).numericValue().intValue(), Math::max);
        }
        PrefixMatch found = null;
        for (Map.Entry<String, Integer> e : best.entrySet()) {
          Document rec = record(s, e.getKey());
          if (rec == null || !hasher.namespace().equals(rec.get(StoreFields.NAMESPACE))) {
            continue; // deleted in between, or a hash collision across scopes
          }
          int[] stored = bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS));
          int claimed = e.getValue();
          if (claimed > stored.length || claimed > prompt.length
              || !Arrays.equals(stored, 0, claimed, prompt, 0, claimed)) {
            continue; // the hash matched but the tokens do not: never served
          }
          int m = claimed;
          int limit = Math.min(stored.length, prompt.length);
          while (m < limit && stored[m] == prompt[m]) {
            m++;
          }
          if (found == null || m > found.matchedTokens()
              || (m == found.matchedTokens() && info(rec).tokens() < found.context().tokens())) {
            found = new PrefixMatch(info(rec), m, prompt.length);
          }
        }
        return Optional.ofNullable(found);
      });
    }

    /** The token ids of a stored context of this scope, and its stored logits (or null). */
    public Stored stored(String contextId) throws IOException {
      return withReader(r -> {
        Document rec = record(searcher(r), contextId);
        if (rec == null) {
          throw new IllegalArgumentException("no context " + contextId + " in store " + root
              + "; 'retroinfer store list' shows the stored ones");
        }
        if (!hasher.namespace().equals(rec.get(StoreFields.NAMESPACE))) {
          throw new IllegalArgumentException("context " + contextId + " belongs to another model,"
              + " K/V type or tenant; it is not served to this scope");
        }
        BytesRef lr = rec.getBinaryValue(StoreFields.LOGITS);
        return new Stored(info(rec), bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS)),
            lr == null ? null : bytesToFloats(lr));
      });
    }

    /**
     * Loads the first {@code tokens} tokens of a stored context of this scope, after checking again
     * that they equal {@code prompt}'s.
     *
     * <p>If {@code tokens} is the whole context and {@code reopenPrefill} is false, the context comes
     * back exactly as it was stored (same index, same prefill state; it attends bit for bit as the
     * cache that was put) with its logits. Otherwise whole wave segments inside the prefix are kept,
     * the rest of the prefix becomes the tail, and the prefill is open: append the rest of the prompt,
     * then {@code endPrefill()} (see {@link HeadSlices#prefix}).
     */
    public ReusedContext load(String contextId, int[] prompt, int tokens, boolean reopenPrefill)
        throws IOException {
      return withReader(r -> {
        IndexSearcher s = searcher(r);
        Document rec = record(s, contextId);
        if (rec == null) {
          throw new IllegalArgumentException("no context " + contextId + " in store " + root
              + " (deleted, or not committed yet)");
        }
        if (!hasher.namespace().equals(rec.get(StoreFields.NAMESPACE))) {
          throw new IllegalArgumentException("context " + contextId + " belongs to another model,"
              + " K/V type or tenant; it is not served to this scope");
        }
        int[] stored = bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS));
        if (tokens < 1 || tokens > stored.length || tokens > prompt.length
            || !Arrays.equals(stored, 0, tokens, prompt, 0, tokens)) {
          throw new IllegalArgumentException("context " + contextId + " does not start with the"
              + " first " + tokens + " tokens of the prompt; reuse only what find() verified");
        }
        LoadedContext loaded = ContextReader.load(r, contextId);
        try {
          int[] loadedTokens = loaded.tokens();
          if (!Arrays.equals(loadedTokens, stored)) {
            throw new IllegalStateException("context " + contextId + ": the token ids of its K/V"
                + " documents differ from its record; the store is damaged (run 'retroinfer inspect')");
          }
          BytesRef lr = rec.getBinaryValue(StoreFields.LOGITS);
          if (tokens == stored.length && !reopenPrefill) {
            return new ReusedContext(info(rec), loaded.toContextCache(), tokens,
                lr == null ? null : bytesToFloats(lr));
          }
          AttentionShape shape = loaded.shape();
          WaveConfig config = loaded.config();
          HeadCache[][] heads = new HeadCache[shape.layers()][shape.kvHeads()];
          try {
            for (int l = 0; l < shape.layers(); l++) {
              for (int h = 0; h < shape.kvHeads(); h++) {
                heads[l][h] = HeadSlices.prefix(loaded.head(l, h), tokens, config);
              }
            }
          } catch (RuntimeException e) {
            for (HeadCache[] layer : heads) {
              for (HeadCache h : layer) {
                if (h != null) {
                  h.close();
                }
              }
            }
            throw e;
          }
          return new ReusedContext(info(rec),
              new HeadwiseContextCache(new WaveAttention(config), shape, heads), tokens, null);
        } finally {
          loaded.close();
        }
      });
    }
  }

  /** A stored context's token ids and logits after its last token (null if not stored). */
  public record Stored(ContextInfo info, int[] tokens, float[] logits) {}

  static UncheckedIOException unchecked(IOException e) {
    return new UncheckedIOException(e);
  }
}
