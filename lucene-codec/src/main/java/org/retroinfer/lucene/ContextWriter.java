package org.retroinfer.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
import org.apache.lucene.codecs.Codec;
import org.apache.lucene.codecs.perfield.PerFieldKnnVectorsFormat;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LiveIndexWriterConfig;
import org.apache.lucene.index.Term;
import org.retroinfer.lucene.WaveVectorsFormat.Layout;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.WaveIndex;

/**
 * Writes a context (the K/V of every layer and KV head, its wave index, its token ids) into an
 * {@link IndexWriter}, in the document mapping of {@link ContextFields}; {@link ContextReader}
 * loads it back, ready for wave attention, without re-clustering.
 *
 * <p>How the wave index survives: Lucene segments are made to coincide with the wave segments of
 * the in-memory index. For each wave segment (in position order) the writer adds its tokens and
 * flushes, with the {@code segment} layout, so {@link WaveVectorsFormat} clusters exactly those
 * tokens, with the same parameters, in the same order, and wave-core's deterministic k-means gives
 * the same clusters bit for bit. Then the steady zone (attention sinks and tail) is added with the
 * {@code steady} layout (stored, not clustered), together with the metadata document, and flushed.
 * Merges later keep every wave segment intact. The metadata document goes last: a reader that sees
 * it sees the whole context.
 *
 * <p>Requirements on the writer, checked: its codec routes the {@link ContextFields} to
 * {@link WaveVectorsFormat} (e.g. {@link WaveCodec}); it never flushes on its own in the middle of a
 * wave segment (auto-flush by RAM disabled, by doc count above the largest flush, per-thread RAM
 * limit large enough: a flush that happens anyway is detected and the write fails, leaving
 * nothing of the context), and it has no index sort. {@link #indexWriterConfig()} gives such a
 * configuration. Writing a context replaces any context stored under the same id. Calls on the
 * same {@link IndexWriter} are serialized; nothing else should add documents with context fields to
 * that writer at the same time. Nothing is committed: call {@link IndexWriter#commit()} to make the
 * context durable.
 */
public final class ContextWriter {
  /** One lock per IndexWriter (Lucene forbids holding the writer's own monitor while it flushes). */
  private static final Map<IndexWriter, Object> LOCKS =
      Collections.synchronizedMap(new WeakHashMap<>());

  private final IndexWriter writer;
  private final Object lock;

  public ContextWriter(IndexWriter writer) {
    this.writer = Objects.requireNonNull(writer, "writer");
    this.lock = LOCKS.computeIfAbsent(writer, w -> new Object());
    LiveIndexWriterConfig config = writer.getConfig();
    Codec codec = config.getCodec();
    if (!(codec.knnVectorsFormat() instanceof PerFieldKnnVectorsFormat perField)
        || !(perField.getKnnVectorsFormatForField(ContextFields.keyField(0, 0))
            instanceof WaveVectorsFormat)) {
      throw new IllegalArgumentException("the writer's codec " + codec.getName() + " does not store"
          + " the context fields with " + WaveVectorsFormat.NAME + "; configure it with"
          + " ContextWriter.indexWriterConfig() or new WaveCodec()");
    }
    if (config.getIndexSort() != null) {
      throw new IllegalArgumentException("the writer sorts its index (" + config.getIndexSort()
          + "), which would reorder the tokens of a wave segment; use a writer without index sort");
    }
    if (config.getRAMBufferSizeMB() != IndexWriterConfig.DISABLE_AUTO_FLUSH) {
      throw new IllegalArgumentException("the writer flushes by RAM usage ("
          + config.getRAMBufferSizeMB() + " MB), which could split a wave segment; disable it with"
          + " setRAMBufferSizeMB(IndexWriterConfig.DISABLE_AUTO_FLUSH) or use"
          + " ContextWriter.indexWriterConfig()");
    }
  }

  /**
   * A writer configuration that satisfies this class: {@link WaveCodec}, flushes only when asked
   * (or beyond 2^30 buffered documents), the largest per-thread RAM limit, no index sort.
   */
  public static IndexWriterConfig indexWriterConfig() {
    IndexWriterConfig c = new IndexWriterConfig();
    c.setCodec(new WaveCodec());
    c.setMaxBufferedDocs(1 << 30);
    c.setRAMBufferSizeMB(IndexWriterConfig.DISABLE_AUTO_FLUSH);
    c.setRAMPerThreadHardLimitMB(2047);
    return c;
  }

  /**
   * Writes a context whose every head has a wave layout (a context of
   * {@code AttentionBackends.create("wave", config)}).
   */
  public void write(String contextId, int[] tokens, ContextCache context) throws IOException {
    write(contextId, tokens, context.shape(), waveHeads(context));
  }

  /** Every head's wave layout; refuses a context whose heads are not wave caches. */
  private static HeadLayout[][] waveHeads(ContextCache context) {
    AttentionShape shape = context.shape();
    HeadLayout[][] heads = new HeadLayout[shape.layers()][shape.kvHeads()];
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        HeadCache head = context.head(l, h);
        if (!HeadLayout.isWave(head)) {
          throw new IllegalArgumentException("layer " + l + ", KV head " + h + " is a "
              + head.getClass().getSimpleName() + ", not a wave cache: only wave contexts"
              + " (attention method \"wave\") can be stored with their index");
        }
        heads[l][h] = HeadLayout.of(head);
      }
    }
    return heads;
  }

  /**
   * Writes a context: {@code heads[layer][kvHead]}, all with the same configuration, length,
   * prefill state and wave segments; {@code tokens[p]} is the token id at position {@code p}.
   */
  public void write(String contextId, int[] tokens, AttentionShape shape, HeadLayout[][] heads)
      throws IOException {
    Plan plan = Plan.of(contextId, tokens, shape, heads);
    checkFlushLimits(plan);
    synchronized (lock) {
      // Pending documents of others must not share a Lucene segment with a wave segment.
      writer.flush();
      writer.deleteDocuments(new Term(ContextFields.CONTEXT, contextId));
      boolean success = false;
      try {
        WaveIndex index0 = heads[0][0].index();
        for (int s = 0; s < index0.segmentCount(); s++) {
          int first = index0.segmentFirstPosition(s);
          TokenDocs docs = new TokenDocs(plan, Layout.SEGMENT);
          int buffered = writer.numRamDocs();
          int len = index0.segmentTokens(s);
          for (int p = first; p < first + len; p++) {
            writer.addDocument(docs.token(p));
          }
          if (writer.numRamDocs() - buffered < len) {
            // The writer flushed on its own inside the wave segment (per-thread RAM limit): the
            // format would cluster two halves, not wave-core's segment.
            throw new IllegalStateException("the writer flushed in the middle of wave segment " + s
                + " (" + len + " tokens), probably at its per-thread RAM limit of "
                + writer.getConfig().getRAMPerThreadHardLimitMB() + " MB; lower"
                + " WaveConfig.segmentTokens or raise setRAMPerThreadHardLimitMB");
          }
          writer.flush();
        }
        TokenDocs steady = new TokenDocs(plan, Layout.STEADY);
        for (int p = 0; p < plan.sinks; p++) {
          writer.addDocument(steady.token(p));
        }
        for (int p = plan.tailStart; p < plan.length; p++) {
          writer.addDocument(steady.token(p));
        }
        writer.addDocument(metaDocument(plan));
        writer.flush();
        success = true;
      } catch (IllegalStateException e) {
        throw new IllegalStateException("context '" + contextId + "' was not stored: "
            + e.getMessage(), e);
      } catch (IllegalArgumentException e) {
        String hint = e.getMessage() != null && e.getMessage().contains("dimension")
            ? " (a field keeps the head dim of the first context stored in the index: store"
                + " contexts of another model shape in another index)"
            : "";
        throw new IllegalArgumentException("context '" + contextId + "' was not stored: "
            + e.getMessage() + hint, e);
      } finally {
        if (!success) {
          // Leave no half-written context behind.
          writer.deleteDocuments(new Term(ContextFields.CONTEXT, contextId));
        }
      }
    }
  }

  /**
   * Writes a context in the {@code assigned} layout ({@link AssignedLayout}): every wave segment,
   * then the steady zone, as one block of adjacent token documents
   * ({@link IndexWriter#addDocuments}) whose K/V carry the wave segment's tag
   * ({@code firstTag + block}) and each row's cluster id, then the metadata document. The format
   * groups the rows by what they carry and never clusters, so the writer may flush whenever it
   * likes: the clusters on disk are the cache's, bit for bit, and so are the ones
   * {@link ContextReader} loads. An index holds the K/V fields of one layout: do not mix this with
   * {@link #write} in one index (their fields have different dimensions).
   */
  public void writeAssigned(String contextId, int[] tokens, ContextCache context, long firstTag)
      throws IOException {
    writeAssigned(contextId, tokens, context.shape(), waveHeads(context), firstTag);
  }

  /** {@link #writeAssigned(String, int[], ContextCache, long)} of a context given as its heads. */
  public void writeAssigned(String contextId, int[] tokens, AttentionShape shape,
      HeadLayout[][] heads, long firstTag) throws IOException {
    Plan plan = Plan.of(contextId, tokens, shape, heads);
    List<AssignedLayout.Block> blocks = AssignedLayout.blocks(heads, firstTag);
    synchronized (lock) {
      writer.deleteDocuments(new Term(ContextFields.CONTEXT, contextId));
      boolean success = false;
      try {
        for (AssignedLayout.Block b : blocks) {
          writer.addDocuments(assignedDocs(plan, b));
        }
        writer.addDocument(metaDocument(plan));
        success = true;
      } finally {
        if (!success) {
          writer.deleteDocuments(new Term(ContextFields.CONTEXT, contextId));
        }
      }
    }
  }

  /**
   * The token documents of one assigned block, in position order, made as the writer takes them:
   * one document and one set of fields, refilled for each position (the writer indexes a document
   * before it asks for the next, and the format copies every vector it is given).
   */
  private static Iterable<Document> assignedDocs(Plan plan, AssignedLayout.Block block) {
    AttentionShape shape = plan.shape;
    int d = shape.headDim();
    int heads = shape.layers() * shape.kvHeads();
    int n = block.size();
    org.retroinfer.wave.kv.KvDType storage = plan.config.kvType();
    float[][] keyRows = new float[heads][n * d];
    float[][] valueRows = new float[heads][n * d];
    int[][] clusterIds = new int[heads][n];
    Document doc = new Document();
    doc.add(new StringField(ContextFields.CONTEXT, plan.contextId, Field.Store.NO));
    doc.add(new StringField(ContextFields.KIND, ContextFields.KIND_TOKEN, Field.Store.NO));
    NumericDocValuesField position = new NumericDocValuesField(ContextFields.POSITION, 0);
    NumericDocValuesField token = new NumericDocValuesField(ContextFields.TOKEN, 0);
    doc.add(position);
    doc.add(token);
    KnnFloatVectorField[] keyFields = new KnnFloatVectorField[heads];
    KnnFloatVectorField[] valueFields = new KnnFloatVectorField[heads];
    float[][] key = new float[heads][d + AssignedLayout.TRAILING];
    float[][] value = new float[heads][d + AssignedLayout.TRAILING];
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        int x = l * shape.kvHeads() + h;
        block.readRows(l, h, keyRows[x], valueRows[x]);
        for (int i = 0; i < n; i++) {
          clusterIds[x][i] = block.cluster(l, h, i);
        }
        String k = ContextFields.keyField(l, h);
        String v = ContextFields.valueField(l, h);
        keyFields[x] = new KnnFloatVectorField(k, key[x], AssignedLayout.keyType(k, v, d, storage));
        valueFields[x] = new KnnFloatVectorField(v, value[x],
            AssignedLayout.valueType(v, k, d, storage));
        doc.add(keyFields[x]);
        doc.add(valueFields[x]);
      }
    }
    int[] positions = block.positions();
    return () -> new java.util.Iterator<>() {
      private int i;

      @Override
      public boolean hasNext() {
        return i < n;
      }

      @Override
      public Document next() {
        if (i >= n) {
          throw new java.util.NoSuchElementException();
        }
        position.setLongValue(positions[i]);
        token.setLongValue(plan.tokens[positions[i]]);
        for (int x = 0; x < heads; x++) {
          System.arraycopy(keyRows[x], i * d, key[x], 0, d);
          System.arraycopy(valueRows[x], i * d, value[x], 0, d);
          AssignedLayout.encodeTrailing(block.tag(), clusterIds[x][i], key[x], d);
          AssignedLayout.encodeTrailing(block.tag(), clusterIds[x][i], value[x], d);
          keyFields[x].setVectorValue(key[x]);
          valueFields[x].setVectorValue(value[x]);
        }
        i++;
        return doc;
      }
    };
  }

  /**
   * Deletes context {@code contextId} (all its token documents and its metadata document); a no-op
   * if there is none. Like every delete, visible to readers after a commit or NRT reopen.
   */
  public void delete(String contextId) throws IOException {
    Objects.requireNonNull(contextId, "contextId");
    synchronized (lock) {
      writer.deleteDocuments(new Term(ContextFields.CONTEXT, contextId));
    }
  }

  private void checkFlushLimits(Plan plan) {
    LiveIndexWriterConfig config = writer.getConfig();
    int largest = plan.sinks + (plan.length - plan.tailStart) + 1;
    WaveIndex index = plan.heads[0][0].index();
    for (int s = 0; s < index.segmentCount(); s++) {
      largest = Math.max(largest, index.segmentTokens(s));
    }
    int maxDocs = config.getMaxBufferedDocs();
    if (maxDocs != IndexWriterConfig.DISABLE_AUTO_FLUSH && maxDocs <= largest) {
      throw new IllegalArgumentException("the writer flushes every " + maxDocs + " documents, but a"
          + " wave segment of this context has " + largest + " tokens; raise setMaxBufferedDocs"
          + " above it or use ContextWriter.indexWriterConfig()");
    }
    // The writer flushes a thread's buffer at its per-thread RAM limit; a wave segment must fit.
    // This is the certain case; write() also detects a flush that happened anyway.
    long bytes = 2L * plan.shape.layers() * plan.shape.kvHeads() * plan.shape.headDim()
        * plan.config.kvType().bytes() * largest;
    long limit = config.getRAMPerThreadHardLimitMB() * 1024L * 1024L;
    if (bytes > limit) {
      throw new IllegalArgumentException("a wave segment of " + largest + " tokens holds "
          + (bytes >> 20) + " MB of K/V, more than the writer's per-thread RAM limit of "
          + config.getRAMPerThreadHardLimitMB() + " MB; lower WaveConfig.segmentTokens or raise"
          + " setRAMPerThreadHardLimitMB");
    }
  }

  private static Document metaDocument(Plan plan) {
    Document d = new Document();
    d.add(new StringField(ContextFields.CONTEXT, plan.contextId, Field.Store.YES));
    d.add(new StringField(ContextFields.KIND, ContextFields.KIND_META, Field.Store.NO));
    d.add(new StoredField(ContextFields.META_VERSION, ContextFields.META_VERSION_CURRENT));
    d.add(new StoredField(ContextFields.META_TOKENS, plan.length));
    d.add(new StoredField(ContextFields.META_SINKS, plan.sinks));
    d.add(new StoredField(ContextFields.META_PREFILL_DONE, plan.prefillDone ? 1 : 0));
    d.add(new StoredField(ContextFields.META_LAYERS, plan.shape.layers()));
    d.add(new StoredField(ContextFields.META_QUERY_HEADS, plan.shape.queryHeads()));
    d.add(new StoredField(ContextFields.META_KV_HEADS, plan.shape.kvHeads()));
    d.add(new StoredField(ContextFields.META_HEAD_DIM, plan.shape.headDim()));
    d.add(new StoredField(ContextFields.META_CONFIG, ConfigText.format(plan.config)));
    byte[] centres = centres(plan);
    if (centres != null) {
      d.add(new StoredField(ContextFields.META_CENTRES, centres));
    }
    DocumentChecksum.add(d, ContextFields.META_CHECKSUM);
    return d;
  }

  /** Every head's key centre, little-endian floats in (layer, KV head) order; null if none has one. */
  private static byte[] centres(Plan plan) {
    AttentionShape shape = plan.shape;
    int d = shape.headDim();
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(shape.layers() * shape.kvHeads() * d * 4)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        float[] c = plan.heads[l][h].index().keyCentre();
        if (c == null) {
          return null;
        }
        for (float x : c) {
          b.putFloat(x);
        }
      }
    }
    return b.array();
  }

  /** What is written, validated before anything is. */
  private record Plan(String contextId, int[] tokens, AttentionShape shape, HeadLayout[][] heads,
      WaveConfig config, int length, int sinks, int tailStart, boolean prefillDone) {

    static Plan of(String contextId, int[] tokens, AttentionShape shape, HeadLayout[][] heads) {
      Objects.requireNonNull(contextId, "contextId");
      if (contextId.isEmpty()) {
        throw new IllegalArgumentException("context id must not be empty");
      }
      if (heads.length != shape.layers()) {
        throw new IllegalArgumentException(heads.length + " layers of heads, the shape has "
            + shape.layers());
      }
      HeadLayout h0 = heads[0][0];
      WaveConfig config = h0.config();
      int length = h0.size();
      if (tokens.length != length) {
        throw new IllegalArgumentException(tokens.length + " token ids for a context of " + length
            + " tokens");
      }
      for (int l = 0; l < shape.layers(); l++) {
        if (heads[l].length != shape.kvHeads()) {
          throw new IllegalArgumentException("layer " + l + " has " + heads[l].length
              + " KV heads, the shape has " + shape.kvHeads());
        }
        for (int h = 0; h < shape.kvHeads(); h++) {
          HeadLayout c = heads[l][h];
          String where = " (layer " + l + ", KV head " + h + ")";
          if (c.dim() != shape.headDim()) {
            throw new IllegalArgumentException("head dim " + c.dim() + " does not match the"
                + " shape's head dim " + shape.headDim() + where);
          }
          if (c.groupSize() != shape.groupSize()) {
            throw new IllegalArgumentException("group size " + c.groupSize() + " does not match"
                + " the shape's " + shape.groupSize() + where);
          }
          if (!c.config().equals(config)) {
            throw new IllegalArgumentException("wave configuration " + c.config() + " differs from"
                + " layer 0, KV head 0's " + config + where);
          }
          if (c.size() != length || c.prefillDone() != h0.prefillDone()
              || c.sinks() != h0.sinks() || c.tailStart() != h0.tailStart()) {
            throw new IllegalArgumentException("length " + c.size() + ", sinks "
                + c.sinks() + ", tail start " + c.tailStart() + " differ from layer 0,"
                + " KV head 0's " + length + ", " + h0.sinks() + ", " + h0.tailStart()
                + where);
          }
          WaveIndex index = c.index();
          if (index.segmentCount() != h0.index().segmentCount()) {
            throw new IllegalArgumentException(index.segmentCount() + " wave segments, layer 0,"
                + " KV head 0 has " + h0.index().segmentCount() + where);
          }
          for (int s = 0; s < index.segmentCount(); s++) {
            if (index.segmentFirstPosition(s) != h0.index().segmentFirstPosition(s)
                || index.segmentTokens(s) != h0.index().segmentTokens(s)) {
              throw new IllegalArgumentException("wave segment " + s + " covers different"
                  + " positions than layer 0, KV head 0's" + where);
            }
          }
        }
      }
      return new Plan(contextId, tokens, shape, heads, config, length, h0.sinks(),
          h0.tailStart(), h0.prefillDone());
    }
  }

  /** One reusable token document of a layout; {@link #token} fills it for a position. */
  private static final class TokenDocs {
    private final Plan plan;
    private final Document doc = new Document();
    private final NumericDocValuesField position = new NumericDocValuesField(ContextFields.POSITION, 0);
    private final NumericDocValuesField token = new NumericDocValuesField(ContextFields.TOKEN, 0);
    private final List<KnnFloatVectorField> keys = new ArrayList<>();
    private final List<KnnFloatVectorField> values = new ArrayList<>();
    private final float[][] keyRows;
    private final float[][] valueRows;

    TokenDocs(Plan plan, Layout layout) {
      this.plan = plan;
      AttentionShape shape = plan.shape;
      int d = shape.headDim();
      doc.add(new StringField(ContextFields.CONTEXT, plan.contextId, Field.Store.NO));
      doc.add(new StringField(ContextFields.KIND, ContextFields.KIND_TOKEN, Field.Store.NO));
      doc.add(position);
      doc.add(token);
      int n = shape.layers() * shape.kvHeads();
      keyRows = new float[n][d];
      valueRows = new float[n][d];
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          int i = l * shape.kvHeads() + h;
          KnnFloatVectorField k = new KnnFloatVectorField(ContextFields.keyField(l, h),
              keyRows[i], ContextFields.keyType(l, h, d, plan.config, layout,
                  plan.heads[l][h].index().keyCentre()));
          KnnFloatVectorField v = new KnnFloatVectorField(ContextFields.valueField(l, h),
              valueRows[i], ContextFields.valueType(l, h, d, plan.config, layout));
          keys.add(k);
          values.add(v);
          doc.add(k);
          doc.add(v);
        }
      }
    }

    Document token(int p) {
      position.setLongValue(p);
      token.setLongValue(plan.tokens[p]);
      AttentionShape shape = plan.shape;
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          int i = l * shape.kvHeads() + h;
          plan.heads[l][h].read(p, p + 1, keyRows[i], valueRows[i], 0, shape.headDim());
          // The field keeps a reference to the array; the writer copies it when indexing.
          keys.get(i).setVectorValue(keyRows[i]);
          values.get(i).setVectorValue(valueRows[i]);
        }
      }
      return doc;
    }
  }
}
