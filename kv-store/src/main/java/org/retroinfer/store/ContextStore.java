package org.retroinfer.store;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.zip.CRC32;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FilterLeafReader;
import org.apache.lucene.index.IndexFormatTooNewException;
import org.apache.lucene.index.IndexFormatTooOldException;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.ReaderUtil;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.index.SegmentReader;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.MatchAllDocsQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.store.Directory;
import org.apache.lucene.codecs.CodecUtil;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.IOContext;
import org.apache.lucene.store.IndexInput;
import org.apache.lucene.store.LockObtainFailedException;
import org.apache.lucene.store.SleepingLockWrapper;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.StringHelper;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.ContextReader;
import org.retroinfer.lucene.ContextWriter;
import org.retroinfer.lucene.DocumentChecksum;
import org.retroinfer.lucene.KeyLookup;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.lucene.SegmentChecksums;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
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
 * store is created, with a CRC32 of both) and {@code index/}, one Apache Lucene index written with
 * lucene-codec's {@code WaveCodec}: the K/V documents of {@code ContextWriter}, and per context one
 * record and one prefix key per whole chunk ({@link StoreFields}).
 *
 * <p>Guarantees:
 * <ul>
 *   <li><b>One writer, many readers.</b> A store opened with {@link #open} takes Lucene's write lock
 *       at its first put or delete and keeps it until it closes (one writing process at a time);
 *       a writer that finds the lock held waits for it, up to its lock timeout, and then fails
 *       with a clear error. {@link #openReadOnly} takes no lock, and any number of readers, in this
 *       and other processes, read while a writer writes.
 *   <li><b>All or nothing.</b> A put or a delete is one Lucene commit. Readers see only committed
 *       contexts, each complete; after a crash (kill -9 in the middle of a put) the store opens at its
 *       last commit with nothing of the interrupted put visible.
 *   <li><b>Nothing served unverified.</b> When a reader opens a commit (and for every segment that
 *       a refresh adds), the checksums of everything Lucene would read unverified are checked
 *       ({@link SegmentChecksums}: stored fields, postings, doc values); the K/V are verified block
 *       by block by the codec when they are loaded; every record and every K/V metadata document
 *       carries its own checksum ({@link DocumentChecksum}), checked whenever it is read. Damage
 *       is reported as {@link StoreDamagedException}, naming the context and the file where known,
 *       and nothing of it is served.
 *   <li><b>No foreign K/V.</b> A context is only ever returned to a {@link Scope} with the same
 *       namespace (model fingerprint, K/V type, chunk size, tenant salt), and only for a prompt
 *       whose leading tokens equal the stored token ids: every hash hit is verified token by token,
 *       and the loaded token ids are compared again with the record's. Listing, looking up and
 *       deleting go through a {@link TenantView}: a tenant sees only its own contexts. The empty
 *       tenant salt is the default tenant: it sees the contexts stored without a tenant, and no
 *       one else's.
 * </ul>
 *
 * <p>Thread-safe. Readers refresh to the newest commit with {@link #refresh()} (a writer's own
 * reads see its commits at once).
 */
public final class ContextStore implements AutoCloseable {
  /** Format of {@code store.properties}: 2 since records and K/V metadata carry checksums. */
  public static final int FORMAT = 2;
  /** How long a writer waits by default for another process's write lock. */
  public static final Duration DEFAULT_LOCK_TIMEOUT = Duration.ofSeconds(60);
  private static final String PROPERTIES = "store.properties";
  private static final long LOCK_POLL_MILLIS = 100;

  private final Path root;
  private final Directory directory;
  private final boolean writable;
  private final Duration lockTimeout;
  private final int chunkTokens;
  private final Object writeLock = new Object();
  /** Segments whose checksums were verified (name, ids and generations). */
  private final Set<String> verifiedSegments = ConcurrentHashMap.newKeySet();
  private IndexWriter writer; // null until a put or delete takes the write lock; dropped on failure
  private DirectoryReader reader;
  private boolean closed;

  private ContextStore(Path root, Directory directory, boolean writable, Duration lockTimeout,
      int chunkTokens) throws IOException {
    this.root = root;
    this.directory = directory;
    this.writable = writable;
    this.lockTimeout = lockTimeout;
    this.chunkTokens = chunkTokens;
    this.reader = openVerified(null);
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

  /** Opens a store for writing (see {@link #open(Path, int, Duration)}), waiting up to a minute. */
  public static ContextStore open(Path dir, int chunkTokens) throws IOException {
    return open(dir, chunkTokens, DEFAULT_LOCK_TIMEOUT);
  }

  /**
   * Opens a store for writing, creating it with chunks of {@code chunkTokens} if it does not exist (an
   * existing store keeps its own chunk size). The write lock is taken by the first put or delete
   * (and, for a new store, to write its first, empty commit); if another process holds it, the
   * writer waits up to {@code lockTimeout} for it.
   *
   * @throws IllegalStateException (at the first write) if the lock stayed held for the whole timeout
   * @throws StoreDamagedException if the store's files are damaged
   */
  public static ContextStore open(Path dir, int chunkTokens, Duration lockTimeout)
      throws IOException {
    if (lockTimeout.isNegative()) {
      throw new IllegalArgumentException("lock timeout must be >= 0, got " + lockTimeout);
    }
    requireDirectory(dir);
    try {
      Files.createDirectories(dir);
    } catch (FileSystemException e) {
      throw notWritable(dir, e);
    }
    int chunk = readOrCreateProperties(dir, chunkTokens);
    Directory d = openIndexDirectory(dir, true);
    try {
      if (!DirectoryReader.indexExists(d)) {
        // An empty first commit, so that readers can open the store at once.
        try (IndexWriter w = newWriter(dir, d, lockTimeout)) {
          if (!DirectoryReader.indexExists(d)) {
            w.commit();
          }
        } // closing without commit-on-close releases the lock
      }
      return new ContextStore(dir, d, true, lockTimeout, chunk);
    } catch (IOException | RuntimeException e) {
      d.close();
      throw e;
    }
  }

  private static IndexWriter newWriter(Path root, Directory d, Duration timeout)
      throws IOException {
    IndexWriterConfig c = ContextWriter.indexWriterConfig();
    c.setOpenMode(IndexWriterConfig.OpenMode.CREATE_OR_APPEND);
    c.setCommitOnClose(false);
    try {
      // Lucene's own wait: polls for the lock until the timeout instead of failing at once.
      return new IndexWriter(new SleepingLockWrapper(d, timeout.toMillis(), LOCK_POLL_MILLIS), c);
    } catch (LockObtainFailedException e) {
      throw new IllegalStateException("store " + root + " is being written by another process"
          + " (index/write.lock is held); waited " + describe(timeout) + " for it. Try again when"
          + " that process is done, or wait longer (--lock-timeout); readers are not blocked", e);
    } catch (CorruptIndexException | EOFException | IndexFormatTooOldException
        | IndexFormatTooNewException | NoSuchFileException e) {
      throw StoreDamagedException.of(root, null, e);
    } catch (FileSystemException e) { // not writable: permissions, a read-only file system
      throw notWritable(root, e);
    }
  }

  private static String describe(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
  }

  /** Whether {@code dir} holds a context store (its {@code store.properties}). */
  public static boolean exists(Path dir) {
    return Files.isRegularFile(dir.resolve(PROPERTIES));
  }

  /** Opens an existing store for reading only; takes no lock. */
  public static ContextStore openReadOnly(Path dir) throws IOException {
    requireDirectory(dir);
    if (!Files.isRegularFile(dir.resolve(PROPERTIES))) {
      throw new IllegalArgumentException("no context store at " + dir.toAbsolutePath() + " (no "
          + PROPERTIES + "); create one with a put (e.g. 'retroinfer store put --store " + dir
          + " ...') or pass the right --store DIR");
    }
    int chunk = readOrCreateProperties(dir, -1);
    Directory d = openIndexDirectory(dir, false);
    try {
      if (!DirectoryReader.indexExists(d)) {
        throw new IllegalArgumentException("store " + dir + " has no committed index yet; put a"
            + " context first");
      }
      return new ContextStore(dir, d, false, Duration.ZERO, chunk);
    } catch (IOException | RuntimeException e) {
      d.close();
      throw e;
    }
  }

  private static void requireDirectory(Path dir) {
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new IllegalArgumentException("the store path " + dir.toAbsolutePath() + " is a file,"
          + " not a directory; give a directory (one that does not exist yet is created by a put)");
    }
  }

  private static Directory openIndexDirectory(Path dir, boolean create) throws IOException {
    Path index = dir.resolve("index");
    if (!create && !Files.isDirectory(index)) {
      throw new StoreDamagedException(dir, null, "index/", "its index directory is missing", null);
    }
    try {
      return FSDirectory.open(index);
    } catch (FileSystemException e) {
      throw notWritable(dir, e);
    }
  }

  private static IOException notWritable(Path dir, FileSystemException e) {
    return new IOException("cannot write to the store at " + dir.toAbsolutePath() + ": "
        + (e.getReason() != null ? e.getReason() : "permission denied") + " for " + e.getFile()
        + "; make the directory writable by this user, or choose another store directory"
        + " (reading needs no write access)", e);
  }

  /**
   * Reads {@code store.properties}, or writes it for a new store ({@code chunkTokens >= 1}). The
   * file holds {@code format}, {@code chunkTokens} and {@code checksum}, the CRC32 of the other
   * two, so that a damaged chunk size (which would silently change every prefix key) is detected.
   */
  private static int readOrCreateProperties(Path dir, int chunkTokens) throws IOException {
    Path file = dir.resolve(PROPERTIES);
    Properties p = new Properties();
    if (Files.isRegularFile(file)) {
      try (var in = Files.newInputStream(file)) {
        p.load(in);
      } catch (IllegalArgumentException e) { // a malformed \\uXXXX escape
        throw new StoreDamagedException(dir, null, PROPERTIES, "it cannot be parsed", e);
      }
      String format = p.getProperty("format");
      String chunk = p.getProperty("chunkTokens");
      String checksum = p.getProperty("checksum");
      if ("1".equals(format) && checksum == null) {
        throw new IllegalArgumentException("store " + dir + " was written by an older version"
            + " (format 1), whose records carry no checksums; this version reads format " + FORMAT
            + ": move it aside and put the contexts again");
      }
      if (checksum == null || !checksum.equals(propertiesChecksum(format, chunk))) {
        throw new StoreDamagedException(dir, null, PROPERTIES, "its checksum does not match"
            + " (format=" + format + ", chunkTokens=" + chunk + ", checksum=" + checksum + ")", null);
      }
      if (!Integer.toString(FORMAT).equals(format) || chunk == null
          || !chunk.matches("[1-9][0-9]{0,8}")) {
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
    p.setProperty("checksum", propertiesChecksum(Integer.toString(FORMAT),
        Integer.toString(chunkTokens)));
    // Written to a temporary file and renamed: a crash never leaves a half-written properties file.
    Path tmp;
    try {
      tmp = Files.createTempFile(dir, PROPERTIES, ".tmp");
    } catch (FileSystemException e) {
      throw notWritable(dir, e);
    }
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

  private static String propertiesChecksum(String format, String chunkTokens) {
    CRC32 crc = new CRC32();
    crc.update(("format=" + format + "\nchunkTokens=" + chunkTokens + "\n")
        .getBytes(StandardCharsets.UTF_8));
    return Long.toHexString(crc.getValue());
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

  /** What one tenant sees of the store: its contexts of every model. */
  public TenantView tenant(String tenantSalt) {
    return new TenantView(tenantHash(tenantSalt), null);
  }

  /** What one tenant sees of the store for one model ({@code model} null: every model). */
  public TenantView tenant(String tenantSalt, ModelFingerprint model) {
    return new TenantView(tenantHash(tenantSalt), model == null ? null : model.hex());
  }

  /** What records carry for a tenant salt: the first 16 hex digits of its SHA-256, "" for none. */
  static String tenantHash(String tenantSalt) {
    Objects.requireNonNull(tenantSalt, "tenantSalt (\"\" for the default tenant)");
    return tenantSalt.isEmpty() ? ""
        : HexFormat.of().formatHex(Hashing.sha256(tenantSalt.getBytes(StandardCharsets.UTF_8)))
            .substring(0, 16);
  }

  /** Sees the newest commit (of this or another process). */
  public void refresh() throws IOException {
    synchronized (this) {
      ensureOpen();
      DirectoryReader newer = openVerified(reader);
      if (newer != null) {
        DirectoryReader old = reader;
        reader = newer;
        old.decRef();
      }
    }
  }

  /**
   * Opens the newest commit ({@code current} null) or what changed since {@code current} (null if
   * nothing did), and verifies the checksums of every segment not verified yet.
   */
  private DirectoryReader openVerified(DirectoryReader current) throws IOException {
    DirectoryReader r;
    try {
      r = current == null ? DirectoryReader.open(directory) : DirectoryReader.openIfChanged(current);
    } catch (AccessDeniedException e) {
      throw new IOException("cannot read the store at " + root.toAbsolutePath() + ": permission"
          + " denied for " + e.getFile() + "; make it readable by this user", e);
    } catch (IOException | RuntimeException | AssertionError e) {
      // Opening a commit reads its segment list and every segment's small files; any failure is
      // damage (a raw decoding error included). Find the file whose checksum fails, to name it.
      throw diagnose(e);
    }
    if (r == null) {
      return null;
    }
    boolean ok = false;
    try {
      Set<String> keys = new java.util.HashSet<>();
      for (LeafReaderContext leaf : r.leaves()) {
        if (FilterLeafReader.unwrap(leaf.reader()) instanceof SegmentReader segment) {
          keys.add(verify(segment));
        }
      }
      verifiedSegments.retainAll(keys); // forget segments merged or deleted away
      ok = true;
      return r;
    } finally {
      if (!ok) {
        r.decRef();
      }
    }
  }

  /** Verifies a segment unless it was verified before; returns its key. */
  private String verify(SegmentReader segment) throws IOException {
    SegmentCommitInfo si = segment.getSegmentInfo();
    String key = si.info.name + ":" + StringHelper.idToString(si.info.getId()) + ":"
        + si.getDelGen() + ":" + si.getFieldInfosGen() + ":" + si.getDocValuesGen();
    if (!verifiedSegments.contains(key)) {
      try {
        SegmentChecksums.verify(segment);
      } catch (IOException | RuntimeException | AssertionError e) {
        throw StoreDamagedException.of(root, contextsIn(segment), e);
      }
      verifiedSegments.add(key);
    }
    return key;
  }

  /**
   * The contexts that have documents in a damaged segment, to name them; read only if the
   * segment's postings (the terms that name them) pass their own checksum, else null.
   */
  private static String contextsIn(SegmentReader segment) {
    try {
      segment.getPostingsReader().checkIntegrity();
      Set<String> ids = new TreeSet<>();
      for (String field : new String[] {StoreFields.CONTEXT, ContextFields.CONTEXT}) {
        Terms terms = segment.terms(field);
        if (terms != null) {
          TermsEnum te = terms.iterator();
          for (BytesRef t = te.next(); t != null; t = te.next()) {
            ids.add(t.utf8ToString());
          }
        }
      }
      if (ids.isEmpty()) {
        return null;
      }
      return String.join(", ", ids);
    } catch (IOException | RuntimeException | AssertionError e) {
      return null;
    }
  }

  /**
   * The damage behind a failure to open the newest commit: the first file of it whose checksum
   * fails (reading whole files, compound files included), else the failure itself.
   */
  private StoreDamagedException diagnose(Throwable failure) {
    if (failure instanceof CorruptIndexException c
        && StoreDamagedException.indexFile(c.getResourceDescription()) != null) {
      return StoreDamagedException.of(root, null, failure); // it names its file already
    }
    try {
      SegmentInfos infos = SegmentInfos.readLatestCommit(directory);
      for (SegmentCommitInfo si : infos) {
        for (String f : si.files()) {
          try (IndexInput in = directory.openInput(f, IOContext.READONCE)) {
            CodecUtil.checksumEntireFile(in);
          } catch (CorruptIndexException e) {
            return new StoreDamagedException(root, null, "index/" + f, e.getOriginalMessage(),
                failure);
          } catch (EOFException e) {
            return new StoreDamagedException(root, null, "index/" + f, "it is truncated", failure);
          }
        }
      }
    } catch (IOException | RuntimeException | AssertionError e) {
      return StoreDamagedException.of(root, null, e);
    }
    return StoreDamagedException.of(root, null, failure);
  }

  /** Every stored context, of every tenant, oldest first (for tests; callers use a tenant view). */
  List<ContextInfo> list() throws IOException {
    return listWhere(rec -> true);
  }

  private List<ContextInfo> listWhere(java.util.function.Predicate<Document> visible)
      throws IOException {
    return withReader(r -> {
      IndexSearcher s = searcher(r);
      Query q = kindQuery(StoreFields.KIND_RECORD, new MatchAllDocsQuery());
      // sized by the hits, not the index: a store holds many token documents per context
      TopDocs top = s.search(q, Math.max(1, s.count(q)));
      List<ContextInfo> out = new ArrayList<>();
      for (ScoreDoc sd : top.scoreDocs) {
        Document rec = verifiedRecord(r, sd.doc, null);
        if (visible.test(rec)) {
          out.add(contextInfo(rec));
        }
      }
      out.sort(Comparator.comparing(ContextInfo::created).thenComparing(ContextInfo::id));
      return out;
    });
  }

  /** The context with this id, of any tenant (for tests; callers use a tenant view). */
  Optional<ContextInfo> info(String id) throws IOException {
    return withReader(r -> Optional.ofNullable(record(r, id)).map(ContextStore::contextInfo));
  }

  /** Deletes a context of any tenant (one commit); for tests, callers use a tenant view. */
  boolean delete(String id) throws IOException {
    return deleteWhere(id, rec -> true);
  }

  private boolean deleteWhere(String id, java.util.function.Predicate<Document> visible)
      throws IOException {
    requireWriter("delete");
    synchronized (writeLock) {
      boolean existed = withReader(r -> {
        Document rec = record(r, id);
        return rec != null && visible.test(rec);
      });
      if (!existed) {
        return false;
      }
      commitOrDrop(w -> w.deleteDocuments(new Term(ContextFields.CONTEXT, id),
          new Term(StoreFields.CONTEXT, id)));
      refresh();
      return true;
    }
  }

  /**
   * The operator's view for housekeeping (eviction by capacity): every tenant's contexts, oldest
   * first. Never answer a tenant with it; a tenant's requests go through {@link #tenant} or a
   * {@link Scope}.
   */
  public List<ContextInfo> everyTenantsContexts() throws IOException {
    return list();
  }

  /**
   * Deletes a context of any tenant (one commit): the operator's eviction. Returns whether it
   * existed. A request of a tenant deletes through its {@link TenantView} instead.
   */
  public boolean evict(String id) throws IOException {
    return delete(id);
  }

  /**
   * Bytes of the index files on disk now: the last commit's, and any of an older commit that
   * Lucene has not deleted yet (what the store takes on the file system, which a capacity bounds).
   */
  public long sizeInBytes() throws IOException {
    synchronized (this) {
      ensureOpen();
    }
    long total = 0;
    for (String f : directory.listAll()) {
      if (f.equals(IndexWriter.WRITE_LOCK_NAME)) {
        continue;
      }
      try {
        total += directory.fileLength(f);
      } catch (NoSuchFileException | java.io.FileNotFoundException e) {
        // deleted by the writer between the listing and now: it takes no space any more
      }
    }
    return total;
  }

  /**
   * Frees the bytes of deleted contexts that share a Lucene segment with live ones, by rewriting
   * those segments (one commit; a segment whose contexts were all deleted is already gone). The
   * store's contents do not change.
   */
  public void reclaimDeleted() throws IOException {
    requireWriter("reclaim deleted space");
    synchronized (writeLock) {
      commitOrDrop(w -> w.forceMergeDeletes(true));
    }
    refresh();
  }

  /**
   * Applies {@code change} through the writer and commits it; when either fails, drops everything
   * the change buffered (documents, deletes), so the store stays at its last commit. Holds
   * writeLock.
   */
  private void commitOrDrop(WriterChange change) throws IOException {
    IndexWriter w = writer();
    boolean committed = false;
    try {
      change.apply(w);
      w.commit();
      committed = true;
    } finally {
      if (!committed) {
        dropWriter();
      }
    }
  }

  @FunctionalInterface
  private interface WriterChange {
    void apply(IndexWriter writer) throws IOException;
  }

  /** The writer, taking the write lock (waiting for it) at the first write. Holds writeLock. */
  private IndexWriter writer() throws IOException {
    if (writer == null) {
      writer = newWriter(root, directory, lockTimeout);
    }
    return writer;
  }

  /**
   * Drops everything a failed write buffered (the store stays at its last commit) and the writer
   * with it, releasing the lock; the next write opens a new one. Holds writeLock.
   */
  private void dropWriter() throws IOException {
    IndexWriter w = writer;
    writer = null;
    if (w != null) {
      w.rollback();
    }
  }

  /** The Lucene directory of the index (for inspection). */
  public Directory luceneDirectory() {
    return directory;
  }

  /**
   * Runs {@code action} on the current committed reader, held open for its duration. Lucene's and
   * the codec's reports of damage ({@code CorruptIndexException}, a truncated file) come out as
   * {@link StoreDamagedException}.
   */
  public <T> T withReader(ReaderAction<T> action) throws IOException {
    DirectoryReader r;
    synchronized (this) {
      ensureOpen();
      r = reader;
      r.incRef();
    }
    try {
      return action.apply(r);
    } catch (CorruptIndexException | EOFException | IndexFormatTooOldException
        | IndexFormatTooNewException e) {
      throw StoreDamagedException.of(root, null, e);
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
        dropWriter(); // nothing is pending: every change was committed
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

  private void requireWriter(String what) {
    ensureOpen();
    if (!writable) {
      throw new IllegalStateException("cannot " + what + ": store " + root + " was opened read-only;"
          + " open it with ContextStore.open (one writer at a time)");
    }
  }

  /**
   * The contexts one tenant sees: those stored with its salt (the empty salt: those stored without
   * one), and only one model's when the view has a model. Another tenant's context is, to this
   * view, a context that does not exist.
   */
  public final class TenantView {
    private final String tenantHash;
    private final String modelHex;

    private TenantView(String tenantHash, String modelHex) {
      this.tenantHash = tenantHash;
      this.modelHex = modelHex;
    }

    private boolean sees(Document rec) {
      return tenantHash.equals(rec.get(StoreFields.TENANT))
          && (modelHex == null || modelHex.equals(rec.get(StoreFields.MODEL)));
    }

    /** This tenant's contexts, oldest first. */
    public List<ContextInfo> list() throws IOException {
      return listWhere(this::sees);
    }

    /** This tenant's context with this id, if stored. */
    public Optional<ContextInfo> info(String id) throws IOException {
      return withReader(r -> {
        Document rec = record(r, id);
        return rec != null && sees(rec) ? Optional.of(contextInfo(rec)) : Optional.empty();
      });
    }

    /** Deletes this tenant's context {@code id} (one commit). Returns whether it existed. */
    public boolean delete(String id) throws IOException {
      return deleteWhere(id, this::sees);
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

  /** The record of context {@code id}, verified; null if there is none. */
  private Document record(IndexReader r, String id) throws IOException {
    int[] docs = KeyLookup.liveDocs(r, new Term(StoreFields.KIND, StoreFields.KIND_RECORD),
        new Term(StoreFields.CONTEXT, id));
    return docs.length == 0 ? null : verifiedRecord(r, docs[0], id);
  }

  /**
   * Reads a record and checks its checksum (and, when {@code id} is given, that it is that
   * context's record).
   */
  private Document verifiedRecord(IndexReader r, int doc, String id) throws IOException {
    Document rec = r.storedFields().document(doc);
    String stored = rec.get(StoreFields.CONTEXT);
    try {
      DocumentChecksum.verify(rec, StoreFields.CHECKSUM, "its record");
    } catch (CorruptIndexException e) {
      throw new StoreDamagedException(root, id != null ? id : stored, storedFieldsFile(r, doc),
          e.getOriginalMessage() + " (the record holds its token ids, logits and tenant)", e);
    }
    if (id != null && !id.equals(stored)) {
      throw new StoreDamagedException(root, id, storedFieldsFile(r, doc), "the record found under"
          + " its id is the record of '" + stored + "'", null);
    }
    return rec;
  }

  /** The file that holds the stored fields of {@code doc} (named for errors). */
  private static String storedFieldsFile(IndexReader r, int doc) {
    var leaves = r.leaves();
    LeafReaderContext leaf = leaves.get(ReaderUtil.subIndex(doc, leaves));
    if (!(FilterLeafReader.unwrap(leaf.reader()) instanceof SegmentReader segment)) {
      return null;
    }
    String name = segment.getSegmentName();
    return segment.getSegmentInfo().info.getUseCompoundFile()
        ? "index/" + name + ".cfs (part " + name + ".fdt)" : "index/" + name + ".fdt";
  }

  private static ContextInfo contextInfo(Document d) {
    return new ContextInfo(d.get(StoreFields.CONTEXT), d.get(StoreFields.NAME),
        d.get(StoreFields.CONTEXT_KIND), d.get(StoreFields.NAMESPACE), d.get(StoreFields.MODEL),
        d.get(StoreFields.TENANT), d.getField(StoreFields.TOKENS).numericValue().intValue(),
        d.getBinaryValue(StoreFields.LOGITS) != null,
        Instant.ofEpochMilli(d.getField(StoreFields.CREATED).numericValue().longValue()),
        d.get(StoreFields.SHAPE), d.get(StoreFields.CONFIG));
  }

  /** A context's record document (checksummed) and its prefix key documents. */
  static List<Document> recordDocs(ContextInfo info, int[] tokens, float[] logits,
      List<ContextPack.PrefixKey> prefixKeys) {
    String id = info.id();
    Document rec = new Document();
    rec.add(new StringField(StoreFields.CONTEXT, id, Field.Store.YES));
    rec.add(new StringField(StoreFields.KIND, StoreFields.KIND_RECORD, Field.Store.NO));
    rec.add(new StoredField(StoreFields.NAME, info.name()));
    rec.add(new StoredField(StoreFields.CONTEXT_KIND, info.kind()));
    rec.add(new StringField(StoreFields.NAMESPACE, info.namespace(), Field.Store.YES));
    rec.add(new StoredField(StoreFields.MODEL, info.model()));
    rec.add(new StoredField(StoreFields.TENANT, info.tenant()));
    rec.add(new StoredField(StoreFields.TOKENS, tokens.length));
    rec.add(new StoredField(StoreFields.TOKEN_IDS, intsToBytes(tokens, tokens.length)));
    if (logits != null) {
      rec.add(new StoredField(StoreFields.LOGITS, floatsToBytes(logits)));
    }
    rec.add(new StoredField(StoreFields.CREATED, info.created().toEpochMilli()));
    rec.add(new StoredField(StoreFields.SHAPE, info.shape()));
    rec.add(new StoredField(StoreFields.CONFIG, info.config()));
    DocumentChecksum.add(rec, StoreFields.CHECKSUM);
    List<Document> docs = new ArrayList<>();
    docs.add(rec);
    for (ContextPack.PrefixKey k : prefixKeys) {
      Document p = new Document();
      p.add(new StringField(StoreFields.CONTEXT, id, Field.Store.YES));
      p.add(new StringField(StoreFields.KIND, StoreFields.KIND_PREFIX, Field.Store.NO));
      p.add(new StringField(StoreFields.PREFIX, k.hash(), Field.Store.NO));
      p.add(new StoredField(StoreFields.PREFIX_TOKENS, k.tokens()));
      docs.add(p);
    }
    return docs;
  }

  /** The text of a new store's {@code store.properties} for {@code chunkTokens}. */
  static byte[] propertiesText(int chunkTokens) {
    String format = Integer.toString(FORMAT);
    String chunk = Integer.toString(chunkTokens);
    return ("# retroinfer context store\nformat=" + format + "\nchunkTokens=" + chunk
        + "\nchecksum=" + propertiesChecksum(format, chunk) + "\n")
        .getBytes(StandardCharsets.ISO_8859_1);
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
      this.tenantHash = tenantHash(tenantSalt);
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

    private boolean sees(Document rec) {
      return hasher.namespace().equals(rec.get(StoreFields.NAMESPACE));
    }

    /** The contexts of this scope (model, K/V type, tenant), oldest first. */
    public List<ContextInfo> list() throws IOException {
      return listWhere(this::sees);
    }

    /** The context of this scope with this id, if stored. */
    public Optional<ContextInfo> info(String id) throws IOException {
      return withReader(r -> {
        Document rec = record(r, id);
        return rec != null && sees(rec) ? Optional.of(contextInfo(rec)) : Optional.empty();
      });
    }

    /** The same message for a context that is not stored and one this scope may not see. */
    private IllegalArgumentException notInScope(String contextId) {
      return new IllegalArgumentException("no context " + contextId + " of this model, K/V type"
          + " and tenant in store " + root + " (it was never stored, was deleted, or belongs to"
          + " another model or tenant, which is never served); 'retroinfer store list' shows"
          + " yours");
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
     * @param cache a wave context (heads with a {@link HeadLayout}) of this scope's K/V type
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
      WaveConfig config = HeadLayout.isWave(cache.head(0, 0))
          ? HeadLayout.of(cache.head(0, 0)).config() : null;
      String id = contextId(kind, tokens);
      String[] chain = hasher.chain(tokens);
      synchronized (writeLock) {
        commitOrDrop(writer -> { // takes the write lock, waiting for another writer
          new ContextWriter(writer).write(id, tokens, cache);
          writer.deleteDocuments(new Term(StoreFields.CONTEXT, id));
          List<ContextPack.PrefixKey> keys = new ArrayList<>();
          for (int i = 0; i < chain.length; i++) {
            keys.add(new ContextPack.PrefixKey(chain[i], (i + 1) * chunkTokens));
          }
          ContextInfo info = new ContextInfo(id, name, kind, hasher.namespace(), model.hex(),
              tenantHash, tokens.length, logits != null,
              java.time.Instant.ofEpochMilli(System.currentTimeMillis()),
              shapeText(cache.shape()), String.valueOf(config));
          writer.addDocuments(recordDocs(info, tokens, logits, keys));
          writer.flush();
          if (progress != null) {
            progress.accept("written");
          }
        });
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
     *
     * <p>The prompt's keys are looked up longest first. A context is a candidate at the longest key
     * it shares with the prompt (its claim), and is verified there: its stored tokens must equal
     * the prompt's over the claim, and the match extends token by token beyond it. The first
     * length with a verified candidate wins (among its candidates, the longest match, then the
     * shorter context): every stored context has a key at each of its whole chunks, so a context
     * whose claim is shorter matches less than one chunk beyond it, and never as much as a longer
     * verified claim.
     */
    public Optional<PrefixMatch> find(int[] prompt) throws IOException {
      String[] chain = hasher.chain(prompt);
      if (chain.length == 0) {
        return Optional.empty();
      }
      return withReader(r -> {
        StoredFields fields = r.storedFields();
        Term prefixKind = new Term(StoreFields.KIND, StoreFields.KIND_PREFIX);
        Set<String> tried = new HashSet<>();
        for (int i = chain.length - 1; i >= 0; i--) {
          PrefixMatch found = null;
          for (int doc : KeyLookup.liveDocs(r, prefixKind,
              new Term(StoreFields.PREFIX, chain[i]))) {
            Document d = fields.document(doc, Set.of(StoreFields.CONTEXT, StoreFields.PREFIX_TOKENS));
            String id = d.get(StoreFields.CONTEXT);
            if (!tried.add(id)) {
              continue; // a context is a candidate at its longest key only
            }
            Document rec = record(r, id);
            if (rec == null || !sees(rec)) {
              continue; // deleted in between, or a hash collision across scopes
            }
            int[] stored = bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS));
            int claimed = d.getField(StoreFields.PREFIX_TOKENS).numericValue().intValue();
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
                || (m == found.matchedTokens()
                    && contextInfo(rec).tokens() < found.context().tokens())) {
              found = new PrefixMatch(contextInfo(rec), m, prompt.length);
            }
          }
          if (found != null) {
            return Optional.of(found);
          }
        }
        return Optional.empty();
      });
    }

    /** The token ids of a stored context of this scope, and its stored logits (or null). */
    public Stored stored(String contextId) throws IOException {
      return withReader(r -> {
        Document rec = record(r, contextId);
        if (rec == null || !sees(rec)) {
          throw notInScope(contextId);
        }
        BytesRef lr = rec.getBinaryValue(StoreFields.LOGITS);
        return new Stored(contextInfo(rec), bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS)),
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
     * then {@code endPrefill()} (see {@link HeadLayout#prefix}).
     */
    public ReusedContext load(String contextId, int[] prompt, int tokens, boolean reopenPrefill)
        throws IOException {
      return withReader(r -> {
        Document rec = record(r, contextId);
        if (rec == null || !sees(rec)) {
          throw notInScope(contextId);
        }
        int[] stored = bytesToInts(rec.getBinaryValue(StoreFields.TOKEN_IDS));
        if (tokens < 1 || tokens > stored.length || tokens > prompt.length
            || !Arrays.equals(stored, 0, tokens, prompt, 0, tokens)) {
          throw new IllegalArgumentException("context " + contextId + " does not start with the"
              + " first " + tokens + " tokens of the prompt; reuse only what find() verified");
        }
        LoadedContext loaded;
        try {
          loaded = ContextReader.load(r, contextId);
        } catch (CorruptIndexException | EOFException e) {
          throw StoreDamagedException.of(root, contextId, e);
        } catch (IllegalArgumentException e) { // its record was found in this same reader
          throw new StoreDamagedException(root, contextId, null, "its record is stored but its K/V"
              + " documents are not", e);
        }
        try {
          int[] loadedTokens = loaded.tokens();
          if (!Arrays.equals(loadedTokens, stored)) {
            throw new StoreDamagedException(root, contextId, null, "the token ids of its K/V"
                + " documents differ from its record", null);
          }
          BytesRef lr = rec.getBinaryValue(StoreFields.LOGITS);
          if (tokens == stored.length && !reopenPrefill) {
            return new ReusedContext(contextInfo(rec), loaded.toContextCache(), tokens,
                lr == null ? null : bytesToFloats(lr));
          }
          AttentionShape shape = loaded.shape();
          WaveConfig config = loaded.config();
          HeadCache[][] heads = new HeadCache[shape.layers()][shape.kvHeads()];
          try {
            for (int l = 0; l < shape.layers(); l++) {
              for (int h = 0; h < shape.kvHeads(); h++) {
                heads[l][h] = loaded.layout(l, h).prefix(tokens);
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
          return new ReusedContext(contextInfo(rec),
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
