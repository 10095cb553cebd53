package org.retroinfer.opensearch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.opensearch.ResourceNotFoundException;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.bulk.BulkItemResponse;
import org.opensearch.action.bulk.BulkRequest;
import org.opensearch.action.bulk.BulkResponse;
import org.opensearch.action.delete.DeleteRequest;
import org.opensearch.action.get.GetRequest;
import org.opensearch.action.get.GetResponse;
import org.opensearch.action.get.MultiGetItemResponse;
import org.opensearch.action.get.MultiGetRequest;
import org.opensearch.action.get.MultiGetResponse;
import org.opensearch.action.index.IndexRequest;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.support.WriteRequest;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.common.xcontent.XContentFactory;
import org.opensearch.common.xcontent.XContentType;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.index.query.BoolQueryBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.sort.SortOrder;
import org.opensearch.transport.client.Client;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.ContextReader;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextPack;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * Contexts in one OpenSearch index, through the node client.
 *
 * <p>Documents: per context one <b>head</b> ({@code _id} = the context id, which is derived from
 * the namespace, so two tenants or models never share one) holding its record (tenant, model,
 * namespace, tokens, token ids, logits, ...), its prefix keys and what its K/V documents do not say
 * ({@link ServedContext}), and its K/V documents (below). A put writes its K/V documents first and
 * its head last: a put that fails or is interrupted before its head is written leaves only
 * documents that no head names, which nothing ever serves. Every read goes through the head and
 * checks the tenant (and model) the caller gives: another tenant's context is answered exactly like
 * one that does not exist. Unless the index says otherwise ({@link RetroInferPlugin#KEEP_PACK}),
 * a put also keeps the pack as it was sent, in <b>parts</b> of at most {@value #PART_BYTES} bytes
 * ({@code _id} = context id, put attempt, part number) named by the head with their SHA-256, and a
 * get serves those parts; without them, a get builds the context's pack from its K/V documents on a
 * copy of the shard ({@link RestoreContextAction}). Contexts put by the previous version (parts,
 * no K/V documents) are served from their parts.
 *
 * <p>The context's K/V are also indexed as vector fields of the index, in the wave format's
 * <em>assigned</em> layout ({@link AssignedLayout}): per block of the host's wave index (each wave
 * segment in position order, then the steady zone) and per (layer, KV head), one <b>kvblock</b>
 * document ({@code _id} = context id, put attempt, number) whose nested objects {@code kv} are the
 * block's positions in order, each with that head's key and value row in the fields
 * {@code kv.k.<layer>.<head>} / {@code kv.v.<layer>.<head>} ({@link KvVectorFieldMapper}), tagged
 * with the block's tag and the host's cluster id. Lucene indexes a document with its nested
 * documents as one block of adjacent documents in one segment, and merges keep such blocks whole
 * and in order, so a field's rows of one block are always adjacent and in position order (other
 * documents between them hold no row of that field), and every shard copy's flushes and merges
 * rebuild exactly the host's wave segments and clusters. One document per (block, layer, KV head)
 * rather than per block bounds a document to one wave segment of one head (a few MB), which a node
 * parses (and, for the {@code _source} filter, turns into maps) in memory. The documents are
 * written before the head, which records the tag base and the numbers of blocks and documents.
 */
final class ContextIndex {
  static final int PART_BYTES = 8 << 20;
  private static final String HEAD = "head";
  private static final String PART = "part";
  private static final String KV_BLOCK = "kvblock";
  /** The nested field whose objects are a block's positions. */
  static final String KV = "kv";
  /** At most this many bytes of K/V rows in one bulk request (a block is never split). */
  static final long BULK_BYTES = 8 << 20;
  /** Nested objects per document: a block is one wave segment (or the steady zone) of a context. */
  static final int NESTED_OBJECTS_LIMIT = 1_000_000;
  /** Fields of the index: two per (layer, KV head) of every model shape it holds. */
  static final int TOTAL_FIELDS_LIMIT = 100_000;

  private final Client client;
  private final String index;

  ContextIndex(Client client, String index) {
    this.client = client;
    this.index = index;
  }

  /** The caller's scope: its tenant hash ("" = default tenant) and model fingerprint (null: any). */
  record Caller(String tenant, String model) {
    boolean sees(Map<String, Object> head) {
      return tenant.equals(head.get("tenant")) && (model == null || model.equals(head.get("model")));
    }
  }

  /** Creates the index if it does not exist: the wave codec, strict mapping. */
  void ensureIndex(int replicas) throws IOException {
    if (client.admin().indices().prepareExists(index).get().isExists()) {
      return;
    }
    XContentBuilder mapping = XContentFactory.jsonBuilder().startObject()
        .field("dynamic", "strict")
        // the K/V rows are in the vector fields; _source keeps only the pack and the records
        .startObject("_source").array("excludes", KV).endObject()
        .startObject("properties");
    for (String keyword : List.of("doc", "ctx", "attempt", "tenant", "model", "namespace", "prefix",
        "name", "kind", "shape", "sha256")) {
      mapping.startObject(keyword).field("type", "keyword").endObject();
    }
    mapping.startObject("config").field("type", "keyword").field("index", false).endObject();
    for (String integer : List.of("tokens", "parts", "part", "chunk_tokens", "segments",
        "segment", "layer", "kv_head", "kv_blocks", "kv_docs")) {
      mapping.startObject(integer).field("type", "integer").endObject();
    }
    for (String along : List.of("tag", "kv_tag")) {
      mapping.startObject(along).field("type", "long").endObject();
    }
    // the (layer, head) fields below it are mapped by the first put of each model shape
    mapping.startObject(KV).field("type", "nested").endObject();
    mapping.startObject("prefix_tokens").field("type", "integer").field("index", false).endObject();
    mapping.startObject("bytes").field("type", "long").endObject();
    mapping.startObject("has_logits").field("type", "boolean").endObject();
    mapping.startObject("created").field("type", "date").endObject();
    mapping.startObject("data").field("type", "binary").endObject();
    headFieldMappings(mapping);
    mapping.endObject().endObject();
    CreateIndexRequest create = new CreateIndexRequest(index)
        .settings(Map.of("index.codec", ServerWaveCodec.ALIAS,
            "index.number_of_shards", 1,
            "index.number_of_replicas", replicas,
            "index.mapping.nested_objects.limit", NESTED_OBJECTS_LIMIT,
            "index.mapping.total_fields.limit", TOTAL_FIELDS_LIMIT))
        .mapping(mapping);
    try {
      client.admin().indices().create(create).actionGet();
    } catch (org.opensearch.ResourceAlreadyExistsException e) {
      // created by a concurrent put
    }
  }

  /** Stores a checked pack; replaces the context with the same id (same namespace and tokens). */
  Map<String, Object> put(byte[] pack, ContextPack.Checked checked) throws IOException {
    ContextPack.Description d = checked.description();
    ContextInfo info = d.info();
    String attempt = UUID.randomUUID().toString();
    requireShapeOfModel(info);
    Map<String, Object> old = head(info.id());
    List<String> written = new ArrayList<>();
    int blocks;
    long tagBase;
    int kvDocs;
    int parts;
    try (LoadedContext context = ContextReader.load(checked.reader(), info.id())) {
      ensureKvMapping(context.shape(), context.config().kvType());
      if (!Arrays.equals(d.tokenIds(), context.tokens())) {
        throw new IllegalArgumentException("the token ids of the context's K/V documents differ"
            + " from its record's; pack the context again from its store");
      }
      blocks = AssignedLayout.blockCount(context);
      tagBase = AssignedLayout.randomTagBase(blocks);
      kvDocs = writeBlocks(context, info.id(), attempt, tagBase, written);
      parts = keepPack() ? (int) ((pack.length + (long) PART_BYTES - 1) / PART_BYTES) : 0;
      for (int p = 0; p < parts; p++) {
        int from = p * PART_BYTES;
        int to = Math.min(pack.length, from + PART_BYTES);
        XContentBuilder src = XContentFactory.cborBuilder().startObject()
            .field("doc", PART).field("ctx", info.id()).field("attempt", attempt).field("part", p)
            .field("data", Arrays.copyOfRange(pack, from, to)).endObject();
        String id = partId(info.id(), attempt, p);
        written.add(id);
        client.index(new IndexRequest(index).id(id).source(src)).actionGet();
      }
      // what the K/V blocks do not say: served with them by RestoreContextAction
      Map<String, Object> served = ServedContext.headFields(context, tagBase, d.logits());
      XContentBuilder head = XContentFactory.cborBuilder().startObject()
          .field("doc", HEAD).field("ctx", info.id()).field("attempt", attempt)
          .field("parts", parts).field("bytes", (long) pack.length)
          .field("kv_blocks", blocks).field("kv_docs", kvDocs)
          .field("tenant", info.tenant()).field("model", info.model())
          .field("namespace", info.namespace()).field("name", info.name())
          .field("kind", info.kind()).field("tokens", info.tokens())
          .field("has_logits", info.hasLogits()).field("created", info.created().toEpochMilli())
          .field("shape", info.shape()).field("config", info.config())
          .field("chunk_tokens", d.chunkTokens()).field("segments", d.luceneSegments());
      if (parts > 0) {
        head.field("sha256", sha256(pack));
      }
      for (Map.Entry<String, Object> f : served.entrySet()) {
        head.field(f.getKey(), f.getValue());
      }
      prefixKeys(head, d.prefixKeys()).endObject();
      // the head makes the context visible, complete, and durable on the in-sync copies
      client.index(new IndexRequest(index).id(info.id()).source(head)
          .setRefreshPolicy(WriteRequest.RefreshPolicy.WAIT_UNTIL)).actionGet();
    } catch (RuntimeException | IOException e) {
      deleteQuietly(written);
      throw e;
    }
    if (old != null && !attempt.equals(old.get("attempt"))) {
      deleteQuietly(partIds(info.id(), old));
      deleteQuietly(kvDocIds(info.id(), old));
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("id", info.id());
    out.put("tokens", info.tokens());
    out.put("bytes", (long) pack.length);
    out.put("parts", parts);
    out.put("kv_blocks", blocks);
    out.put("kv_docs", kvDocs);
    out.put("replaced", old != null);
    return out;
  }

  /**
   * Indexes the context's K/V: per block of its wave index and per (layer, KV head) one document
   * whose nested objects are the block's positions in order, each with that head's key and value
   * row (see the class comment), in bulk requests of about {@value #BULK_BYTES} bytes. Every id is
   * added to {@code written} before it is sent, so a failure deletes all of them. Returns the
   * number of documents.
   */
  private int writeBlocks(LoadedContext context, String id, String attempt, long tagBase,
      List<String> written) throws IOException {
    AttentionShape shape = context.shape();
    int dim = shape.headDim();
    long rowBytes = 2L * (dim + AssignedLayout.TRAILING) * Float.BYTES;
    List<AssignedLayout.Block> blocks = AssignedLayout.blocks(context, tagBase);
    BulkRequest bulk = new BulkRequest();
    long bulkBytes = 0;
    ByteBuffer row = ByteBuffer.allocate((dim + AssignedLayout.TRAILING) * Float.BYTES)
        .order(ByteOrder.LITTLE_ENDIAN);
    float[] key = new float[dim + AssignedLayout.TRAILING];
    float[] value = new float[dim + AssignedLayout.TRAILING];
    int docs = 0;
    for (AssignedLayout.Block block : blocks) {
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          XContentBuilder src = XContentFactory.cborBuilder().startObject()
              .field("doc", KV_BLOCK).field("ctx", id).field("attempt", attempt)
              .field("tag", block.tag()).field("segment", block.segment())
              .field("layer", l).field("kv_head", h)
              .startArray(KV);
          for (int i = 0; i < block.size(); i++) {
            block.read(l, h, i, key, value);
            src.startObject();
            for (String role : List.of("k", "v")) {
              row.clear();
              row.asFloatBuffer().put(role.equals("k") ? key : value);
              src.startObject(role).startObject(Integer.toString(l))
                  .field(Integer.toString(h), row.array()).endObject().endObject();
            }
            src.endObject();
          }
          src.endArray().endObject();
          String docId = kvDocId(id, attempt, docs++);
          written.add(docId);
          bulk.add(new IndexRequest(index).id(docId).source(src));
          bulkBytes += rowBytes * block.size();
          if (bulkBytes >= BULK_BYTES) {
            send(bulk);
            bulk = new BulkRequest();
            bulkBytes = 0;
          }
        }
      }
    }
    if (bulk.numberOfActions() > 0) {
      send(bulk);
    }
    return docs;
  }

  private void send(BulkRequest bulk) {
    BulkResponse r = client.bulk(bulk).actionGet();
    if (r.hasFailures()) {
      for (BulkItemResponse item : r.getItems()) {
        if (item.isFailed()) {
          Exception cause = item.getFailure().getCause();
          if (cause instanceof RuntimeException e) {
            throw e;
          }
          throw new IllegalStateException("K/V block " + item.getId() + " was not indexed: "
              + item.getFailureMessage(), cause);
        }
      }
    }
  }

  /** A head's prefix keys: their hashes ({@code prefix}) and lengths ({@code prefix_tokens}). */
  static XContentBuilder prefixKeys(XContentBuilder head, List<ContextPack.PrefixKey> keys)
      throws IOException {
    head.startArray("prefix");
    for (ContextPack.PrefixKey k : keys) {
      head.value(k.hash());
    }
    head.endArray().startArray("prefix_tokens");
    for (ContextPack.PrefixKey k : keys) {
      head.value(k.tokens());
    }
    return head.endArray();
  }

  /** The index's {@link RetroInferPlugin#KEEP_PACK}. */
  private boolean keepPack() {
    org.opensearch.common.settings.Settings settings = client.admin().indices()
        .prepareGetSettings(index).get().getIndexToSettings().get(index);
    return settings == null || RetroInferPlugin.KEEP_PACK.get(settings);
  }

  /** The head's fields that serve a context from its vector fields ({@link ServedContext}). */
  private static void headFieldMappings(XContentBuilder m) throws IOException {
    for (String integer : List.of(ServedContext.SEGMENTS, ServedContext.SINKS)) {
      m.startObject(integer).field("type", "integer").field("index", false).endObject();
    }
    m.startObject(ServedContext.PREFILL_DONE).field("type", "boolean").field("index", false)
        .endObject();
    m.startObject(ServedContext.WAVE_CONFIG).field("type", "keyword").field("index", false)
        .endObject();
    for (String binary : List.of(ServedContext.CENTRES, ServedContext.TOKEN_IDS,
        ServedContext.LOGITS)) {
      m.startObject(binary).field("type", "binary").endObject();
    }
  }

  /**
   * Maps the (layer, KV head) fields of a context's shape under {@value #KV}, unless they are
   * mapped already. An index holds one head dim and one storage type: a context of another is
   * refused (400) before anything of it is written.
   */
  private void ensureKvMapping(AttentionShape shape, KvDType storage) {
    Map<String, Object> kv = kvProperties();
    boolean complete = true;
    for (int l = 0; l < shape.layers() && complete; l++) {
      for (int h = 0; h < shape.kvHeads() && complete; h++) {
        complete = kvField(kv, "k", l, h) != null && kvField(kv, "v", l, h) != null;
      }
    }
    requireKvShape(kv, shape.headDim(), storage);
    if (complete) {
      return;
    }
    try {
      XContentBuilder m = XContentFactory.jsonBuilder().startObject().startObject("properties")
          .startObject(KV).field("type", "nested").startObject("properties");
      for (String role : List.of("k", "v")) {
        m.startObject(role).startObject("properties");
        for (int l = 0; l < shape.layers(); l++) {
          m.startObject(Integer.toString(l)).startObject("properties");
          for (int h = 0; h < shape.kvHeads(); h++) {
            boolean key = role.equals("k");
            m.startObject(Integer.toString(h))
                .field("type", KvVectorFieldMapper.CONTENT_TYPE)
                .field("dimension", shape.headDim())
                .field("role", key ? KvVectorFieldMapper.KEY : KvVectorFieldMapper.VALUE)
                .field("partner", key ? ContextFields.valueField(l, h) : ContextFields.keyField(l, h))
                .field("storage", storage.name())
                .endObject();
          }
          m.endObject().endObject();
        }
        m.endObject().endObject();
      }
      m.endObject().endObject();
      // the fields of the records that an index made by an earlier version may lack
      for (String integer : List.of("segment", "layer", "kv_head", "kv_blocks", "kv_docs")) {
        m.startObject(integer).field("type", "integer").endObject();
      }
      for (String along : List.of("tag", "kv_tag")) {
        m.startObject(along).field("type", "long").endObject();
      }
      headFieldMappings(m);
      m.endObject().endObject();
      client.admin().indices().putMapping(new PutMappingRequest(index).source(m)).actionGet();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** The head dim and storage of the index's K/V fields, if any, must be the context's. */
  private void requireKvShape(Map<String, Object> kv, int headDim, KvDType storage) {
    Map<?, ?> any = anyKvField(kv);
    if (any == null) {
      return;
    }
    int mapped = ((Number) any.get("dimension")).intValue();
    Object mappedStorage = any.get("storage") != null ? any.get("storage") : KvDType.BFLOAT16.name();
    if (mapped != headDim || !storage.name().equals(mappedStorage)) {
      throw new IllegalArgumentException("index [" + index + "] holds K/V of head dim " + mapped
          + " stored as " + mappedStorage + " (its fields " + KV + ".k.*.* are vector fields of"
          + " that shape) but this context has head dim " + headDim + " stored as "
          + storage.name() + "; put contexts of this model shape into another index");
    }
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> kvProperties() {
    Map<String, MappingMetadata> mappings = client.admin().indices().prepareGetMappings(index)
        .get().mappings();
    MappingMetadata m = mappings.get(index);
    if (m == null) {
      return Map.of();
    }
    Object kv = ((Map<String, Object>) m.sourceAsMap().getOrDefault("properties", Map.of()))
        .get(KV);
    if (!(kv instanceof Map<?, ?> kvMap)) {
      return Map.of();
    }
    return (Map<String, Object>) ((Map<String, Object>) kvMap).getOrDefault("properties", Map.of());
  }

  private static Map<?, ?> kvField(Map<String, Object> kv, String role, int layer, int head) {
    Map<?, ?> r = properties(kv.get(role));
    Map<?, ?> l = r == null ? null : properties(r.get(Integer.toString(layer)));
    Object f = l == null ? null : l.get(Integer.toString(head));
    return f instanceof Map<?, ?> field ? field : null;
  }

  private static Map<?, ?> anyKvField(Map<String, Object> kv) {
    Map<?, ?> r = properties(kv.get("k"));
    if (r == null) {
      return null;
    }
    for (Object layer : r.values()) {
      Map<?, ?> l = properties(layer);
      if (l != null) {
        for (Object f : l.values()) {
          if (f instanceof Map<?, ?> field && field.get("dimension") instanceof Number) {
            return field;
          }
        }
      }
    }
    return null;
  }

  private static Map<?, ?> properties(Object object) {
    return object instanceof Map<?, ?> m && m.get("properties") instanceof Map<?, ?> p ? p : null;
  }

  /** One model's contexts have one shape: a context of other dims is refused before it is stored. */
  private void requireShapeOfModel(ContextInfo info) {
    SearchResponse r = client.search(new SearchRequest(index).source(new SearchSourceBuilder()
        .query(QueryBuilders.boolQuery()
            .filter(QueryBuilders.termQuery("doc", HEAD))
            .filter(QueryBuilders.termQuery("model", info.model()))
            .mustNot(QueryBuilders.termQuery("shape", info.shape())))
        .size(1).fetchSource(new String[] {"shape", "ctx"}, null))).actionGet();
    if (r.getHits().getHits().length > 0) {
      Map<String, Object> other = r.getHits().getHits()[0].getSourceAsMap();
      throw new IllegalArgumentException("wrong dims: model " + info.model().substring(0, 12)
          + "'s contexts in index [" + index + "] have shape " + other.get("shape")
          + " (e.g. " + other.get("ctx") + ") but this one has " + info.shape() + "; a model's"
          + " K/V have one shape: check which model the client ran");
    }
  }

  /** The caller's context's pack, checked against the SHA-256 its head names. */
  byte[] get(String id, Caller caller) throws IOException {
    for (int attempt = 0; ; attempt++) {
      Map<String, Object> head = visibleHead(id, caller);
      if (((Number) head.get("parts")).intValue() == 0) {
        // from the K/V vector fields, on a copy of the shard
        return client.execute(RestoreContextAction.INSTANCE,
            new RestoreContextAction.Request(index, id, head)).actionGet().pack;
      }
      List<String> ids = partIds(id, head);
      MultiGetRequest mget = new MultiGetRequest().realtime(true);
      for (String part : ids) {
        mget.add(index, part);
      }
      MultiGetResponse r = client.multiGet(mget).actionGet();
      ByteArrayOutputStream out = new ByteArrayOutputStream(((Number) head.get("bytes")).intValue());
      boolean complete = true;
      for (MultiGetItemResponse item : r.getResponses()) {
        if (item.isFailed() || !item.getResponse().isExists()) {
          complete = false; // replaced by a concurrent put: read the new head
          break;
        }
        out.writeBytes(data(item.getResponse()));
      }
      if (complete) {
        byte[] pack = out.toByteArray();
        if (!sha256(pack).equals(head.get("sha256"))) {
          throw new IllegalStateException("context " + id + " in index " + index + " is damaged:"
              + " its parts do not add up to the SHA-256 its head names; put it again");
        }
        return pack;
      }
      if (attempt == 2) {
        throw new IllegalStateException("context " + id + " changed three times while it was"
            + " read; try again");
      }
    }
  }

  /** The caller's contexts, oldest first. */
  List<Map<String, Object>> list(Caller caller) {
    BoolQueryBuilder q = QueryBuilders.boolQuery()
        .filter(QueryBuilders.termQuery("doc", HEAD))
        .filter(QueryBuilders.termQuery("tenant", caller.tenant()));
    if (caller.model() != null) {
      q.filter(QueryBuilders.termQuery("model", caller.model()));
    }
    SearchResponse r = client.search(new SearchRequest(index).source(new SearchSourceBuilder()
        .query(q).size(10_000).sort("created", SortOrder.ASC)
        .fetchSource(null, new String[] {"prefix", "prefix_tokens", ServedContext.TOKEN_IDS,
            ServedContext.LOGITS, ServedContext.CENTRES}))).actionGet();
    List<Map<String, Object>> out = new ArrayList<>();
    for (SearchHit hit : r.getHits().getHits()) {
      out.add(describe(hit.getSourceAsMap()));
    }
    return out;
  }

  /**
   * The caller's contexts that share a prefix with a prompt, longest claimed prefix first. The
   * chain is the prompt's chained prefix hashes (seeded with the caller's namespace); the host
   * verifies a hit against the stored token ids before it uses it.
   */
  List<Map<String, Object>> lookup(Caller caller, String namespace, List<String> chain) {
    if (chain.isEmpty()) {
      return List.of();
    }
    BoolQueryBuilder q = QueryBuilders.boolQuery()
        .filter(QueryBuilders.termQuery("doc", HEAD))
        .filter(QueryBuilders.termQuery("tenant", caller.tenant()))
        .filter(QueryBuilders.termQuery("namespace", namespace))
        .filter(QueryBuilders.termsQuery("prefix", chain));
    if (caller.model() != null) {
      q.filter(QueryBuilders.termQuery("model", caller.model()));
    }
    SearchResponse r = client.search(new SearchRequest(index).source(new SearchSourceBuilder()
        .query(q).size(100).fetchSource(null, new String[] {ServedContext.TOKEN_IDS,
            ServedContext.LOGITS, ServedContext.CENTRES}))).actionGet();
    Set<String> asked = Set.copyOf(chain);
    List<Map<String, Object>> out = new ArrayList<>();
    for (SearchHit hit : r.getHits().getHits()) {
      Map<String, Object> head = hit.getSourceAsMap();
      List<?> prefix = (List<?>) head.get("prefix");
      List<?> tokens = (List<?>) head.get("prefix_tokens");
      int claimed = 0;
      for (int i = 0; i < prefix.size(); i++) {
        if (asked.contains(prefix.get(i))) {
          claimed = Math.max(claimed, ((Number) tokens.get(i)).intValue());
        }
      }
      Map<String, Object> c = describe(head);
      c.put("claimed_tokens", claimed);
      out.add(c);
    }
    out.sort(Comparator.comparingInt((Map<String, Object> c) -> -(Integer) c.get("claimed_tokens"))
        .thenComparingInt(c -> ((Number) c.get("tokens")).intValue()));
    return out;
  }

  /** Deletes the caller's context; false if the caller has no such context. */
  boolean delete(String id, Caller caller) {
    Map<String, Object> head = head(id);
    if (head == null || !caller.sees(head)) {
      return false;
    }
    client.delete(new DeleteRequest(index, id)
        .setRefreshPolicy(WriteRequest.RefreshPolicy.WAIT_UNTIL)).actionGet();
    deleteQuietly(partIds(id, head));
    deleteQuietly(kvDocIds(id, head));
    return true;
  }

  /** The caller's context's head, or 404 (also for another tenant's or model's context). */
  Map<String, Object> visibleHead(String id, Caller caller) {
    Map<String, Object> head = head(id);
    if (head == null || !caller.sees(head)) {
      throw new ResourceNotFoundException("no context [" + id + "] of this tenant"
          + (caller.model() != null ? " and model" : "") + " in index [" + index + "] (it was"
          + " never stored, was deleted, or belongs to another tenant or model, which is never"
          + " served); GET /_retroinfer/" + index + "/contexts lists yours");
    }
    return head;
  }

  static Map<String, Object> describe(Map<String, Object> head) {
    Map<String, Object> c = new LinkedHashMap<>();
    for (String k : List.of("ctx", "name", "kind", "tokens", "has_logits", "created", "tenant",
        "model", "namespace", "shape", "config", "bytes", "parts", "segments", "chunk_tokens")) {
      if (head.containsKey(k)) {
        c.put(k.equals("ctx") ? "id" : k, head.get(k));
      }
    }
    return c;
  }

  private Map<String, Object> head(String id) {
    GetResponse r = client.get(new GetRequest(index, id).realtime(true)).actionGet();
    if (!r.isExists()) {
      return null;
    }
    Map<String, Object> head = r.getSourceAsMap();
    return HEAD.equals(head.get("doc")) ? head : null;
  }

  private static byte[] data(GetResponse part) throws IOException {
    try (XContentParser p = XContentType.CBOR.xContent().createParser(NamedXContentRegistry.EMPTY,
        DeprecationHandler.THROW_UNSUPPORTED_OPERATION, part.getSourceAsBytesRef().streamInput())) {
      p.nextToken();
      while (p.nextToken() == XContentParser.Token.FIELD_NAME) {
        String name = p.currentName();
        p.nextToken();
        if (name.equals("data")) {
          return p.binaryValue();
        }
        p.skipChildren();
      }
    }
    throw new IllegalStateException("part " + part.getId() + " has no data");
  }

  private static List<String> partIds(String id, Map<String, Object> head) {
    String attempt = (String) head.get("attempt");
    int parts = ((Number) head.get("parts")).intValue();
    List<String> ids = new ArrayList<>();
    for (int p = 0; p < parts; p++) {
      ids.add(partId(id, attempt, p));
    }
    return ids;
  }

  private static String partId(String id, String attempt, int part) {
    return id + "." + attempt + "." + part;
  }

  /** The ids of the K/V documents a head names (none for a head written before they existed). */
  private static List<String> kvDocIds(String id, Map<String, Object> head) {
    String attempt = (String) head.get("attempt");
    int docs = head.get("kv_docs") instanceof Number n ? n.intValue() : 0;
    List<String> ids = new ArrayList<>();
    for (int d = 0; d < docs; d++) {
      ids.add(kvDocId(id, attempt, d));
    }
    return ids;
  }

  static String kvDocId(String id, String attempt, int doc) {
    return id + "." + attempt + ".kv" + doc;
  }

  private void deleteQuietly(List<String> ids) {
    for (String id : ids) {
      try {
        client.delete(new DeleteRequest(index, id)).actionGet();
      } catch (RuntimeException e) {
        // a leftover part or block is invisible (no head names it)
      }
    }
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
