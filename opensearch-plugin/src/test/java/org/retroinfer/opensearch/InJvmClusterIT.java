package org.retroinfer.opensearch;

import static org.retroinfer.opensearch.TestPacks.attend;
import static org.retroinfer.opensearch.TestPacks.pack;
import static org.retroinfer.opensearch.TestPacks.parse;
import static org.retroinfer.opensearch.TestPacks.tenantHash;
import static org.retroinfer.store.Synthetic.cache;
import static org.retroinfer.store.Synthetic.fingerprint;
import static org.retroinfer.store.Synthetic.kv;
import static org.retroinfer.store.Synthetic.queries;
import static org.retroinfer.store.Synthetic.tokens;

import com.carrotsearch.randomizedtesting.ThreadFilter;
import com.carrotsearch.randomizedtesting.annotations.ThreadLeakFilters;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.lucene.index.IndexReader;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.opensearch.action.admin.cluster.health.ClusterHealthResponse;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.health.ClusterHealthStatus;
import org.opensearch.cluster.routing.ShardRouting;
import org.opensearch.common.network.NetworkModule;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.IndexService;
import org.opensearch.index.engine.Engine;
import org.opensearch.index.mapper.MapperParsingException;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.index.shard.IndexShard;
import org.opensearch.index.shard.IndexShardState;
import org.opensearch.indices.IndicesService;
import org.opensearch.plugins.Plugin;
import org.opensearch.test.InternalTestCluster;
import org.opensearch.test.OpenSearchIntegTestCase;
import org.opensearch.transport.Netty4ModulePlugin;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.ContextReader;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.lucene.WaveField;
import org.retroinfer.opensearch.TestPacks.Packed;
import org.retroinfer.store.ContextPack;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.store.Synthetic;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;

/**
 * The plugin in a cluster of three data nodes inside this JVM (OpenSearch's own test framework,
 * {@link OpenSearchIntegTestCase}), its REST API called over HTTP on loopback (the nodes' netty4
 * HTTP layer): contexts put into an index with one replica, their K/V indexed as vector fields
 * whose clusters are the host's on every shard copy, looked up; the node holding the primary
 * stopped and every context still served from the vector fields with the host's clusters and rows
 * and loaded with the same attention, only to its tenant and model; bad input (wrong dims, a
 * truncated body, an unknown index) answered with 4xx errors.
 *
 * <p>The framework refuses to run as root; the surefire execution {@code in-jvm-cluster} of this
 * module runs this class's JVM through {@code scripts/test-user-jvm/bin/java}, as the unprivileged
 * test user when Maven runs as root. A failure prints the seed ({@code -Dtests.seed=...}).
 */
@ThreadLeakFilters(filters = InJvmClusterIT.SharedWorkTeam.class)
@OpenSearchIntegTestCase.ClusterScope(scope = OpenSearchIntegTestCase.Scope.SUITE, numDataNodes = 3,
    numClientNodes = 0, supportsDedicatedMasters = false)
public class InJvmClusterIT extends OpenSearchIntegTestCase {
  static final AttentionShape SHAPE = Synthetic.SHAPE;
  static final int CHUNK = Synthetic.CHUNK;

  private static HttpClient http;

  /**
   * wave-core's process-wide {@code WorkTeam} (daemon helper threads that live as long as the JVM,
   * started by the first attention this test computes) is not a thread the test leaked.
   */
  public static final class SharedWorkTeam implements ThreadFilter {
    @Override
    public boolean reject(Thread t) {
      return t.getName().startsWith("retroinfer-team-");
    }
  }

  @BeforeClass
  public static void openHttpClient() {
    http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  }

  @AfterClass
  public static void closeHttpClient() {
    if (http != null) {
      http.close(); // its threads end here, before the framework looks for leaked threads
      http = null;
    }
  }

  @Override
  protected Collection<Class<? extends Plugin>> nodePlugins() {
    return List.of(RetroInferPlugin.class, Netty4ModulePlugin.class);
  }

  @Override
  protected boolean addMockHttpTransport() {
    return false; // netty4's HTTP: the requests below are real HTTP requests
  }

  @Override
  protected Settings nodeSettings(int nodeOrdinal) {
    return Settings.builder().put(super.nodeSettings(nodeOrdinal))
        .put(NetworkModule.HTTP_TYPE_KEY, Netty4ModulePlugin.NETTY_HTTP_TRANSPORT_NAME)
        .build();
  }

  public void testContextsSurviveTheLossOfTheirPrimaryNodeBitExactAndIsolated() throws Exception {
    long seed = random().nextLong();
    SplittableRandom r = new SplittableRandom(seed);
    String index = "contexts-failover";
    ModelFingerprint model = fingerprint(r);
    ModelFingerprint otherModel = fingerprint(r);
    float[] queries = queries(r);
    int count = 3;
    String[] ids = new String[count];
    byte[][] packs = new byte[count][];
    int[][] prompts = new int[count][];
    float[][] expected = new float[count][];
    List<String> nodes = List.of(internalCluster().getNodeNames());
    for (int i = 0; i < count; i++) {
      int n = 100 + r.nextInt(150);
      prompts[i] = tokens(r, n);
      try (ContextCache c = cache(kv(r, n), n)) {
        expected[i] = attend(c, queries);
        Packed p = pack(createTempDir(), model, tenant(i), prompts[i], c);
        ids[i] = p.id();
        packs[i] = p.pack();
      }
      // each put through another node
      HttpResponse<String> put = send(nodes.get(i % nodes.size()), cbor("PUT", "/_retroinfer/"
          + index + "/contexts?replicas=1", packs[i]));
      assertEquals(put.body(), 201, put.statusCode());
      assertTrue(put.body(), put.body().contains(ids[i]));
      assertTrue(put.body(), put.body().contains(i == 0 ? "\"parts\":1" : "\"parts\":0"));
      if (i == 0) {
        // the index keeps no packs from now on: the other contexts are served from their
        // vector fields only, the first from its pack
        client().admin().indices().prepareUpdateSettings(index).setSettings(Settings.builder()
            .put(RetroInferPlugin.KEEP_PACK.getKey(), false)).get();
      }
    }
    // a context put again replaces its K/V documents: the old ones are deleted
    HttpResponse<String> again = send(nodes.get(1), cbor("PUT", "/_retroinfer/" + index
        + "/contexts", packs[1]));
    assertEquals(again.body(), 201, again.statusCode());
    assertTrue(again.body(), again.body().contains("\"replaced\":true"));
    assertEquals(kvDocsOfHead(index, ids[1]), kvDocs(index, ids[1]));
    ClusterHealthResponse health = client().admin().cluster().prepareHealth(index)
        .setWaitForGreenStatus().setTimeout(TimeValue.timeValueSeconds(60)).get();
    assertEquals(ClusterHealthStatus.GREEN, health.getStatus());
    ClusterState state = clusterService().state();
    assertEquals("retroinfer_wave", state.metadata().index(index).getSettings().get("index.codec"));
    assertEquals(1, state.metadata().index(index).getNumberOfReplicas());

    // the K/V indexed as vector fields: on both copies, in the segments the shard flushed on its
    // own, every context's wave segments and clusters are the host's, bit for bit; and again after
    // a merge of everything into one segment
    assertEquals(2, assertShardClustersAreTheHosts(index, ids, packs, "after the puts"));
    client().admin().indices().prepareForceMerge(index).setMaxNumSegments(1).setFlush(true).get();
    assertEquals(2, assertShardClustersAreTheHosts(index, ids, packs, "after a force merge"));

    // lookup: each context found by the chain of a longer prompt that starts with it, by its
    // tenant only
    for (int i = 0; i < count; i++) {
      String node = nodes.get((i + 1) % nodes.size());
      List<?> found = lookup(node, index, model, tenant(i), prompts[i]);
      assertEquals(found.toString(), 1, found.size());
      assertEquals(ids[i], ((Map<?, ?>) found.get(0)).get("id"));
      assertEquals(List.of(), lookup(node, index, model, tenant(i + 1), prompts[i]));
      assertEquals(List.of(), lookup(node, index, otherModel, tenant(i), prompts[i]));
    }

    // the node holding the primary stops
    String primary = null;
    for (ShardRouting shard : state.routingTable().index(index).shard(0)) {
      if (shard.primary()) {
        primary = state.nodes().get(shard.currentNodeId()).getName();
      }
    }
    assertNotNull(primary);
    internalCluster().stopRandomNode(InternalTestCluster.nameFilter(primary));
    ensureStableCluster(2);
    ensureYellow(index);
    List<String> left = new ArrayList<>(List.of(internalCluster().getNodeNames()));
    assertFalse(left.contains(primary));
    // the promoted replica's clusters are still the host's
    assertTrue(assertShardClustersAreTheHosts(index, ids, packs, "after " + primary
        + " stopped") >= 1);

    // every context served by either remaining node (built back from the vector fields of the
    // promoted replica: the same record, clusters and rows as put), loaded with the same
    // attention, found by its prefix chain, and only to its tenant and model
    for (int i = 0; i < count; i++) {
      for (String node : left) {
        HttpResponse<byte[]> got = sendForBytes(node, get("/_retroinfer/" + index + "/contexts/"
            + ids[i] + scope(model, tenant(i))));
        assertEquals(new String(got.body(), StandardCharsets.UTF_8), 200, got.statusCode());
        TestPacks.assertSameContext(packs[i], got.body(), ids[i], "context " + i + " from "
            + node + " after " + primary + " stopped; seed " + seed);
        assertEquals(404, send(node, get("/_retroinfer/" + index + "/contexts/" + ids[i]
            + scope(model, tenant(i + 1)))).statusCode());
        assertEquals(404, send(node, get("/_retroinfer/" + index + "/contexts/" + ids[i]
            + scope(otherModel, tenant(i)))).statusCode());
      }
      List<?> found = lookup(left.get(i % left.size()), index, model, tenant(i), prompts[i]);
      assertEquals(found.toString(), 1, found.size());
      assertEquals(ids[i], ((Map<?, ?>) found.get(0)).get("id"));
      Path host = createTempDir();
      byte[] served = sendForBytes(left.get(0), get("/_retroinfer/" + index + "/contexts/"
          + ids[i] + scope(model, tenant(i)))).body();
      ContextPack.unpack(served, host);
      try (ContextStore store = ContextStore.openReadOnly(host);
          ReusedContext reused = store.scope(model, tenant(i), KvDType.BFLOAT16)
              .load(ids[i], prompts[i], prompts[i].length, false)) {
        float[] after = attend(reused.cache(), queries);
        assertTrue("the same attention after loading, bit for bit; seed " + seed,
            Arrays.equals(expected[i], after));
      }
    }
    // lists: per tenant and model
    for (String tenant : List.of("acme", "globex")) {
      Map<String, Object> list = parse(send(left.get(1), get("/_retroinfer/" + index
          + "/contexts" + scope(model, tenant))).body());
      List<?> contexts = (List<?>) list.get("contexts");
      long mine = java.util.stream.IntStream.range(0, count)
          .filter(i -> tenant(i).equals(tenant)).count();
      assertEquals(list.toString(), mine, contexts.size());
      Map<String, Object> none = parse(send(left.get(1), get("/_retroinfer/" + index
          + "/contexts" + scope(otherModel, tenant))).body());
      assertEquals(List.of(), none.get("contexts"));
    }
  }

  /**
   * An index the previous version made, with a context it put (its pack stored in parts, a head
   * naming their SHA-256, no K/V documents): the context is still found and served byte for byte,
   * and this version puts a context into the same index and serves it from its vector fields.
   */
  public void testAnIndexOfThePreviousVersionServesItsContextsAndTakesNewOnes() throws Exception {
    SplittableRandom r = new SplittableRandom(random().nextLong());
    String index = "contexts-previous";
    String node = randomFrom(internalCluster().getNodeNames());
    ModelFingerprint model = fingerprint(r);
    int n = 120;
    Packed now;
    Packed before;
    int[] prompt = tokens(r, n);
    try (ContextCache c = cache(kv(r, n), n)) {
      now = pack(createTempDir(), model, "acme", tokens(r, n), c);
      before = pack(createTempDir(), model, "acme", prompt, c);
    }
    // the index as the previous version created it (no K/V fields, no _source excludes), with the
    // documents it wrote for a put
    org.opensearch.core.xcontent.XContentBuilder mapping =
        org.opensearch.common.xcontent.XContentFactory.jsonBuilder().startObject()
            .field("dynamic", "strict").startObject("properties");
    for (String keyword : List.of("doc", "ctx", "attempt", "tenant", "model", "namespace",
        "prefix", "name", "kind", "shape", "sha256")) {
      mapping.startObject(keyword).field("type", "keyword").endObject();
    }
    mapping.startObject("config").field("type", "keyword").field("index", false).endObject();
    for (String integer : List.of("tokens", "parts", "part", "chunk_tokens", "segments")) {
      mapping.startObject(integer).field("type", "integer").endObject();
    }
    mapping.startObject("prefix_tokens").field("type", "integer").field("index", false).endObject();
    mapping.startObject("bytes").field("type", "long").endObject();
    mapping.startObject("has_logits").field("type", "boolean").endObject();
    mapping.startObject("created").field("type", "date").endObject();
    mapping.startObject("data").field("type", "binary").endObject();
    mapping.endObject().endObject();
    client().admin().indices().prepareCreate(index).setSettings(Settings.builder()
        .put("index.codec", ServerWaveCodec.ALIAS).put("index.number_of_shards", 1)
        .put("index.number_of_replicas", 1)).setMapping(mapping).get();
    ContextPack.Description d = ContextPack.describe(before.pack());
    client().prepareIndex(index).setId(before.id() + ".old.0").setSource(
        org.opensearch.common.xcontent.XContentFactory.cborBuilder().startObject()
            .field("doc", "part").field("ctx", before.id()).field("attempt", "old")
            .field("part", 0).field("data", before.pack()).endObject()).get();
    org.opensearch.core.xcontent.XContentBuilder head =
        org.opensearch.common.xcontent.XContentFactory.jsonBuilder().startObject()
            .field("doc", "head").field("ctx", before.id()).field("attempt", "old")
            .field("parts", 1).field("bytes", (long) before.pack().length)
            .field("sha256", ContextIndex.sha256(before.pack()))
            .field("tenant", d.info().tenant()).field("model", d.info().model())
            .field("namespace", d.info().namespace()).field("name", d.info().name())
            .field("kind", d.info().kind()).field("tokens", d.info().tokens())
            .field("has_logits", d.info().hasLogits())
            .field("created", d.info().created().toEpochMilli())
            .field("shape", d.info().shape()).field("config", d.info().config())
            .field("chunk_tokens", d.chunkTokens()).field("segments", d.luceneSegments());
    ContextIndex.prefixKeys(head, d.prefixKeys()).endObject();
    client().prepareIndex(index).setId(before.id()).setSource(head)
        .setRefreshPolicy(org.opensearch.action.support.WriteRequest.RefreshPolicy.WAIT_UNTIL)
        .get();
    for (String at : internalCluster().getNodeNames()) {
      HttpResponse<byte[]> got = sendForBytes(at, get("/_retroinfer/" + index + "/contexts/"
          + before.id() + scope(model, "acme")));
      assertEquals(new String(got.body(), StandardCharsets.UTF_8), 200, got.statusCode());
      assertArrayEquals("the previous version's context from " + at, before.pack(), got.body());
    }
    List<?> found = lookup(node, index, model, "acme", prompt);
    assertEquals(found.toString(), 1, found.size());
    assertEquals(before.id(), ((Map<?, ?>) found.get(0)).get("id"));
    // this version puts into that index (its K/V and head fields are mapped on the way) and serves
    // its context beside the earlier one, from its vector fields
    client().admin().indices().prepareUpdateSettings(index).setSettings(Settings.builder()
        .put(RetroInferPlugin.KEEP_PACK.getKey(), false)).get();
    HttpResponse<String> ok = send(node, cbor("PUT", "/_retroinfer/" + index + "/contexts",
        now.pack()));
    assertEquals(ok.body(), 201, ok.statusCode());
    assertTrue(ok.body(), ok.body().contains("\"parts\":0"));
    HttpResponse<byte[]> current = sendForBytes(node, get("/_retroinfer/" + index + "/contexts/"
        + now.id() + scope(model, "acme")));
    assertEquals(200, current.statusCode());
    TestPacks.assertSameContext(now.pack(), current.body(), now.id(), "this version's context");
  }

  public void testBadInputIsRefusedWith4xx() throws Exception {
    SplittableRandom r = new SplittableRandom(random().nextLong());
    String index = "contexts-bad-input";
    String node = randomFrom(internalCluster().getNodeNames());
    ModelFingerprint model = fingerprint(r);
    int n = 100;
    byte[] pack;
    String id;
    try (ContextCache c = cache(kv(r, n), n)) {
      Packed p = pack(createTempDir(), model, "", tokens(r, n), c);
      pack = p.pack();
      id = p.id();
    }
    // unknown index
    HttpResponse<String> unknown = send(node, get("/_retroinfer/no-such-index/contexts"));
    assertEquals(unknown.body(), 404, unknown.statusCode());
    assertTrue(unknown.body(), unknown.body().contains("index_not_found_exception"));
    // a truncated body
    HttpResponse<String> cut = send(node, cbor("PUT", "/_retroinfer/" + index + "/contexts",
        Arrays.copyOf(pack, pack.length - 1000)));
    assertEquals(cut.body(), 400, cut.statusCode());
    assertTrue(cut.body(), cut.body().contains("not a valid context"));
    // the model's first context, then one of the same model with other dims
    HttpResponse<String> ok = send(node, cbor("PUT", "/_retroinfer/" + index
        + "/contexts?replicas=1", pack));
    assertEquals(ok.body(), 201, ok.statusCode());
    byte[] widePack = TestPacks.widePack(createTempDir(), model, r, n);
    HttpResponse<String> dims = send(node, cbor("PUT", "/_retroinfer/" + index + "/contexts",
        widePack));
    assertEquals(dims.body(), 400, dims.statusCode());
    assertTrue(dims.body(), dims.body().contains("headDim=16"));
    // another model's context of another head dim: the index's K/V fields have one head dim
    HttpResponse<String> otherShape = send(node, cbor("PUT", "/_retroinfer/" + index
        + "/contexts", TestPacks.widePack(createTempDir(), fingerprint(r), r, n)));
    assertEquals(otherShape.body(), 400, otherShape.statusCode());
    assertTrue(otherShape.body(), otherShape.body().contains("holds K/V of head dim 16")
        && otherShape.body().contains("another index"));
    // nothing of the refused puts is listed
    Map<String, Object> list = parse(send(node, get("/_retroinfer/" + index + "/contexts"
        + "?model=" + model.hex())).body());
    assertEquals(list.toString(), 1, ((List<?>) list.get("contexts")).size());
    // the K/V fields: a row of the wrong length, or not finite, is refused; they cannot be queried
    String field = ContextFields.keyField(0, 0);
    String inKv = field.substring("kv.".length()); // its name inside a nested object of kv
    int width = Synthetic.SHAPE.headDim() + AssignedLayout.TRAILING;
    MapperParsingException shortRow = expectThrows(MapperParsingException.class, () ->
        client().prepareIndex(index).setSource(Map.of("kv", List.of(Map.of(inKv,
            new byte[(width - 1) * Float.BYTES])))).get());
    assertTrue(shortRow.getDetailedMessage(), shortRow.getDetailedMessage().contains("takes "
        + width * Float.BYTES + " bytes"));
    java.nio.ByteBuffer nan = java.nio.ByteBuffer.allocate(width * Float.BYTES)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(3 * Float.BYTES, Float.NaN);
    MapperParsingException notFinite = expectThrows(MapperParsingException.class, () ->
        client().prepareIndex(index).setSource(Map.of("kv", List.of(Map.of(inKv, nan.array()))))
            .get());
    assertTrue(notFinite.getDetailedMessage(), notFinite.getDetailedMessage().contains("finite"));
    MapperParsingException shortArray = expectThrows(MapperParsingException.class, () ->
        client().prepareIndex(index).setSource(Map.of("kv", List.of(Map.of(inKv,
            List.of(1.0f, 2.0f))))).get());
    assertTrue(shortArray.getDetailedMessage(), shortArray.getDetailedMessage().contains("takes "
        + width + " numbers"));
    Exception query = expectThrows(Exception.class, () -> client().prepareSearch(index)
        .setQuery(QueryBuilders.nestedQuery("kv", QueryBuilders.termQuery(field, "x"),
            org.apache.lucene.search.join.ScoreMode.None)).get());
    assertTrue(query.toString(), org.opensearch.ExceptionsHelper.stackTrace(query)
        .contains("cannot be searched"));
    // a deleted context's K/V documents are deleted with it
    assertTrue(kvDocs(index, id) > 0);
    assertEquals(kvDocsOfHead(index, id), kvDocs(index, id));
    HttpResponse<String> deleted = send(node, new Req("DELETE", "/_retroinfer/" + index
        + "/contexts/" + id + "?model=" + model.hex(), null, null));
    assertEquals(deleted.body(), 200, deleted.statusCode());
    assertEquals(0, kvDocs(index, id));
  }

  // ------------------------------------------------------------------ helpers

  /** The context's K/V documents in the index (nested objects not counted). */
  long kvDocs(String index, String id) {
    client().admin().indices().prepareRefresh(index).get();
    return client().prepareSearch(index).setSize(0).setTrackTotalHits(true)
        .setQuery(QueryBuilders.boolQuery().filter(QueryBuilders.termQuery("doc", "kvblock"))
            .filter(QueryBuilders.termQuery("ctx", id))).get().getHits().getTotalHits().value();
  }

  /** The number of K/V documents the context's head names: one per (block, layer, KV head). */
  long kvDocsOfHead(String index, String id) {
    Map<String, Object> head = client().prepareGet(index, id).get().getSourceAsMap();
    long docs = ((Number) head.get("kv_docs")).longValue();
    assertEquals(((Number) head.get("kv_blocks")).longValue() * Synthetic.SHAPE.layers()
        * Synthetic.SHAPE.kvHeads(), docs);
    return docs;
  }

  /**
   * On every started copy of the index's shard (read through the shard's own searcher), for each
   * context and each (layer, KV head): the wave segments of its key field whose tags are the
   * context's blocks are the host's, bit for bit: per block one wave segment, with the host's
   * clusters (sizes, member positions, centroids, value sums), the steady zone as one unclustered
   * segment. The host's are those of the pack loaded with lucene-codec's ContextReader. A block's
   * k-th nested document is its k-th position. Returns the number of copies checked.
   */
  int assertShardClustersAreTheHosts(String index, String[] ids, byte[][] packs, String when)
      throws Exception {
    client().admin().indices().prepareRefresh(index).get();
    int copies = 0;
    for (String node : internalCluster().getNodeNames()) {
      IndexService service = internalCluster().getInstance(IndicesService.class, node)
          .indexService(resolveIndex(index));
      IndexShard shard = service == null ? null : service.getShardOrNull(0);
      if (shard == null || shard.state() != IndexShardState.STARTED) {
        continue;
      }
      copies++;
      try (Engine.Searcher searcher = shard.acquireSearcher("retroinfer-test")) {
        IndexReader reader = searcher.getIndexReader();
        if (when.contains("merge")) {
          assertEquals(when + " on " + node, 1, reader.leaves().size());
        }
        for (int i = 0; i < ids.length; i++) {
          Map<String, Object> head = client().prepareGet(index, ids[i]).get().getSourceAsMap();
          long base = ((Number) head.get("kv_tag")).longValue();
          int blocks = ((Number) head.get("kv_blocks")).intValue();
          try (var pack = ContextPack.open(packs[i]);
              LoadedContext host = ContextReader.load(pack, ids[i])) {
            List<AssignedLayout.Block> hostBlocks = AssignedLayout.blocks(host, base);
            assertEquals(blocks, hostBlocks.size());
            for (int l = 0; l < host.shape().layers(); l++) {
              for (int h = 0; h < host.shape().kvHeads(); h++) {
                assertKeyField(reader, ContextFields.keyField(l, h), host.layout(l, h), hostBlocks,
                    base, "context " + i + " " + when + " on " + node + ", field "
                    + ContextFields.keyField(l, h));
              }
            }
          }
        }
      }
    }
    return copies;
  }

  private static void assertKeyField(IndexReader reader, String field, HeadLayout layout,
      List<AssignedLayout.Block> blocks, long base, String what) throws Exception {
    List<AssignedLayout.Piece> pieces = AssignedLayout.pieces(reader, field, base,
        base + blocks.size());
    assertEquals(what + ": one wave segment per block", blocks.size(), pieces.size());
    WaveIndex index = layout.index();
    int dim = layout.dim();
    boolean[] seen = new boolean[blocks.size()];
    for (AssignedLayout.Piece piece : pieces) {
      int b = (int) (piece.tag() - base);
      assertFalse(what + ": block " + b + " twice", seen[b]);
      seen[b] = true;
      AssignedLayout.Block block = blocks.get(b);
      WaveField f = piece.field();
      int s = piece.segment();
      String at = what + ", block " + b + " (host segment " + block.segment() + ")";
      // the k-th document of the block (doc order) is its k-th position
      int[] docs = f.segmentDocs(s);
      Arrays.sort(docs);
      int[] positions = block.positions();
      assertEquals(at, positions.length, docs.length);
      Map<Integer, Integer> positionOf = new java.util.HashMap<>();
      for (int k = 0; k < docs.length; k++) {
        positionOf.put(docs[k], positions[k]);
      }
      int c0 = f.segmentFirstCluster(s);
      int c1 = s + 1 < f.segmentCount() ? f.segmentFirstCluster(s + 1) : f.clusterCount();
      if (block.segment() == AssignedLayout.STEADY) {
        assertTrue(at, f.steady(s));
        assertEquals(at, 1, c1 - c0);
        List<Integer> steady = new ArrayList<>();
        for (int p = 0; p < layout.sinks(); p++) {
          steady.add(p);
        }
        for (int p = layout.tailStart(); p < layout.size(); p++) {
          steady.add(p);
        }
        assertEquals(at, steady, Arrays.stream(positions).boxed().toList());
        continue;
      }
      assertFalse(at, f.steady(s));
      int h0 = index.segmentFirstCluster(block.segment());
      int h1 = index.segmentFirstCluster(block.segment() + 1);
      assertEquals(at + ": clusters", h1 - h0, c1 - c0);
      Map<Integer, Integer> hostByFirst = new java.util.HashMap<>();
      int[] hostPositions = new int[0];
      for (int hc = h0; hc < h1; hc++) {
        int[] members = index.positions(hc);
        hostByFirst.put(members[0], hc);
        hostPositions = java.util.stream.IntStream.concat(Arrays.stream(hostPositions),
            Arrays.stream(members)).toArray();
      }
      Arrays.sort(hostPositions);
      assertArrayEquals(at + ": the block's positions are the host segment's", hostPositions,
          positions.clone());
      float[] sums = f.valueSums(s);
      int fdim = f.dimension();
      for (int c = c0; c < c1; c++) {
        int[] members = f.postings(c).toArray();
        for (int m = 0; m < members.length; m++) {
          members[m] = positionOf.get(members[m]);
        }
        Arrays.sort(members);
        Integer hc = hostByFirst.get(members[0]);
        assertNotNull(at + ": no host cluster starts at position " + members[0], hc);
        String cluster = at + ", cluster " + (c - c0) + " (host " + hc + ")";
        assertEquals(cluster + ": size", index.clusterSize(hc), f.clusterSize(c));
        assertArrayEquals(cluster + ": members", index.positions(hc), members);
        float[] centroid = Arrays.copyOf(f.centroid(c), dim);
        assertTrue(cluster + ": centroid " + Arrays.toString(centroid) + " vs the host's "
            + Arrays.toString(index.centroids().row(hc)),
            Arrays.equals(index.centroids().row(hc), centroid));
        float[] sum = Arrays.copyOfRange(sums, (c - c0) * fdim, (c - c0) * fdim + dim);
        assertTrue(cluster + ": value sum " + Arrays.toString(sum) + " vs the host's "
            + Arrays.toString(index.valueSums().row(hc)),
            Arrays.equals(index.valueSums().row(hc), sum));
      }
    }
  }

  static String tenant(int i) {
    return i % 2 == 0 ? "acme" : "globex";
  }

  static String scope(ModelFingerprint model, String tenant) throws Exception {
    return "?tenant=" + tenantHash(tenant) + "&model=" + model.hex();
  }

  /** The candidates for a prompt that starts with {@code prompt}, as {@code tenant} asks. */
  List<?> lookup(String node, String index, ModelFingerprint model, String tenant, int[] prompt)
      throws Exception {
    int[] longer = Arrays.copyOf(prompt, prompt.length + 40);
    try (ContextStore tmp = ContextStore.open(createTempDir(), CHUNK)) {
      ContextStore.Scope s = tmp.scope(model, tenant, KvDType.BFLOAT16);
      String chain = String.join("\",\"", s.hasher().chain(longer));
      HttpResponse<String> found = send(node, json("POST", "/_retroinfer/" + index + "/_lookup"
          + scope(model, tenant), "{\"namespace\":\"" + s.namespace() + "\",\"chain\":[\""
          + chain + "\"]}"));
      assertEquals(found.body(), 200, found.statusCode());
      return (List<?>) parse(found.body()).get("candidates");
    }
  }

  /** A node's HTTP address (loopback), as http://host:port. */
  static URI uri(String node, String path) {
    InetSocketAddress a = internalCluster().getInstance(HttpServerTransport.class, node)
        .boundAddress().publishAddress().address();
    return URI.create("http://" + a.getHostString() + ":" + a.getPort() + path);
  }

  record Req(String method, String path, String contentType, byte[] body) {}

  static Req get(String path) {
    return new Req("GET", path, null, null);
  }

  static Req json(String method, String path, String body) {
    return new Req(method, path, "application/json", body.getBytes(StandardCharsets.UTF_8));
  }

  /** A put body: CBOR {"pack": byte string}. */
  static Req cbor(String method, String path, byte[] pack) {
    return new Req(method, path, "application/cbor", TestPacks.cborBody(pack));
  }

  HttpRequest request(String node, Req req) {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(node, req.path()))
        .timeout(Duration.ofSeconds(60)).header("Accept", "application/json");
    if (req.body() == null) {
      b.method(req.method(), HttpRequest.BodyPublishers.noBody());
    } else {
      b.header("Content-Type", req.contentType())
          .method(req.method(), HttpRequest.BodyPublishers.ofByteArray(req.body()));
    }
    return b.build();
  }

  HttpResponse<String> send(String node, Req req) throws Exception {
    return http.send(request(node, req), HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<byte[]> sendForBytes(String node, Req req) throws Exception {
    return http.send(request(node, req), HttpResponse.BodyHandlers.ofByteArray());
  }
}
