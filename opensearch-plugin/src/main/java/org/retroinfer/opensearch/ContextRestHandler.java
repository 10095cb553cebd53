package org.retroinfer.opensearch;

import static org.opensearch.rest.RestRequest.Method.DELETE;
import static org.opensearch.rest.RestRequest.Method.GET;
import static org.opensearch.rest.RestRequest.Method.POST;
import static org.opensearch.rest.RestRequest.Method.PUT;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.lucene.index.CorruptIndexException;
import org.opensearch.common.xcontent.XContentFactory;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.rest.BaseRestHandler;
import org.opensearch.rest.BytesRestResponse;
import org.opensearch.rest.RestChannel;
import org.opensearch.rest.RestRequest;
import org.opensearch.transport.client.node.NodeClient;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextPack;

/**
 * The context API. {@code INDEX} is an OpenSearch index of contexts (created with the wave codec
 * by the first put). Every call but put names its caller with {@code ?tenant=} (the tenant hash a
 * context's record carries; absent: the default tenant) and, optionally, {@code ?model=} (the
 * model fingerprint); it sees only that tenant's (and model's) contexts.
 *
 * <pre>
 * GET    /_retroinfer                                  the plugin, its codec
 * PUT    /_retroinfer/INDEX/contexts                   put: body CBOR {"pack": bytes} (a ContextPack)
 * POST   /_retroinfer/INDEX/_lookup                    {"namespace": ..., "chain": [hash, ...]}: candidates, longest first
 * GET    /_retroinfer/INDEX/contexts                   list (JSON)
 * GET    /_retroinfer/INDEX/contexts/ID                the pack (application/octet-stream)
 * GET    /_retroinfer/INDEX/contexts/ID/_inspect       its clusters and segments (JSON)
 * DELETE /_retroinfer/INDEX/contexts/ID                delete
 * </pre>
 *
 * Errors are OpenSearch's JSON errors: 400 for a body that is not a valid context (bad framing,
 * checksum, dims), 404 for an unknown index or a context the caller does not have.
 */
final class ContextRestHandler extends BaseRestHandler {
  private static final String BINARY = "application/octet-stream";

  @Override
  public String getName() {
    return "retroinfer_contexts";
  }

  @Override
  public List<Route> routes() {
    return List.of(
        new Route(GET, "/_retroinfer"),
        new Route(PUT, "/_retroinfer/{index}/contexts"),
        new Route(POST, "/_retroinfer/{index}/contexts"),
        new Route(POST, "/_retroinfer/{index}/_lookup"),
        new Route(GET, "/_retroinfer/{index}/contexts"),
        new Route(GET, "/_retroinfer/{index}/contexts/{id}"),
        new Route(GET, "/_retroinfer/{index}/contexts/{id}/_inspect"),
        new Route(DELETE, "/_retroinfer/{index}/contexts/{id}"));
  }

  @Override
  protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client)
      throws IOException {
    String index = request.param("index");
    String id = request.param("id");
    ContextIndex.Caller caller = new ContextIndex.Caller(request.param("tenant", ""),
        request.param("model"));
    int replicas = request.paramAsInt("replicas", 1);
    RestRequest.Method method = request.method();
    boolean inspect = request.path().endsWith("/_inspect");
    boolean lookup = request.path().endsWith("/_lookup");
    // the body is read here, on the request's thread; the work runs on the generic pool, where
    // waiting for the node client's answers is allowed
    byte[] pack = (method == PUT || method == POST) && !lookup ? readPack(request) : null;
    LookupBody lookupBody = lookup ? readLookup(request) : null;
    return channel -> client.threadPool().generic().execute(() -> {
      try {
        if (index == null) {
          channel.sendResponse(json(RestStatus.OK, Map.of("plugin", "retroinfer",
              "codec", ServerWaveCodec.ALIAS, "segment_codec", ServerWaveCodec.NAME, "api", "/_retroinfer/{index}/contexts")));
          return;
        }
        ContextIndex contexts = new ContextIndex(client, index);
        if (pack != null) {
          try (ContextPack.Checked checked = check(pack)) {
            contexts.ensureIndex(replicas);
            channel.sendResponse(json(RestStatus.CREATED, contexts.put(pack, checked)));
          }
        } else if (lookup) {
          channel.sendResponse(json(RestStatus.OK, Map.of("candidates",
              contexts.lookup(caller, lookupBody.namespace, lookupBody.chain))));
        } else if (method == GET && id == null) {
          channel.sendResponse(json(RestStatus.OK, Map.of("contexts", contexts.list(caller))));
        } else if (method == GET && inspect) {
          channel.sendResponse(json(RestStatus.OK, inspection(contexts.get(id, caller))));
        } else if (method == GET) {
          channel.sendResponse(new BytesRestResponse(RestStatus.OK, BINARY,
              contexts.get(id, caller)));
        } else if (method == DELETE) {
          boolean deleted = contexts.delete(id, caller);
          if (!deleted) {
            contexts.visibleHead(id, caller); // 404, with the message every read gives
          }
          channel.sendResponse(json(RestStatus.OK, Map.of("id", id, "deleted", true)));
        }
      } catch (Exception e) {
        try {
          channel.sendResponse(new BytesRestResponse(channel, e));
        } catch (IOException io) {
          e.addSuppressed(io);
          logger.warn("could not send the error of " + request.path(), e);
        }
      }
    });
  }

  private static byte[] readPack(RestRequest request) throws IOException {
    if (!request.hasContent()) {
      throw new IllegalArgumentException("a put needs a body: CBOR {\"pack\": <bytes>} with"
          + " Content-Type application/cbor (a context packed by the retroinfer client)");
    }
    try (XContentParser p = request.contentParser()) {
      if (p.nextToken() == XContentParser.Token.START_OBJECT
          && p.nextToken() == XContentParser.Token.FIELD_NAME && p.currentName().equals("pack")) {
        p.nextToken();
        return p.binaryValue();
      }
    }
    throw new IllegalArgumentException("the body must be an object whose field \"pack\" holds the"
        + " context's bytes (CBOR byte string, or base64 in JSON)");
  }

  private record LookupBody(String namespace, List<String> chain) {}

  private static LookupBody readLookup(RestRequest request) throws IOException {
    if (!request.hasContent()) {
      throw new IllegalArgumentException("a lookup needs a body: {\"namespace\": ..., \"chain\":"
          + " [prefix hash, ...]}");
    }
    Map<String, Object> body;
    try (XContentParser p = request.contentParser()) {
      body = p.map();
    }
    Object ns = body.get("namespace");
    Object chain = body.get("chain");
    if (!(ns instanceof String namespace) || !(chain instanceof List<?> hashes)) {
      throw new IllegalArgumentException("a lookup body needs \"namespace\" (a string) and"
          + " \"chain\" (a list of prefix hashes), got keys " + body.keySet());
    }
    List<String> out = new ArrayList<>();
    for (Object h : hashes) {
      out.add(String.valueOf(h));
    }
    return new LookupBody(namespace, out);
  }

  private static ContextPack.Checked check(byte[] pack) throws IOException {
    try {
      return ContextPack.check(pack);
    } catch (CorruptIndexException | java.io.EOFException e) {
      throw new IllegalArgumentException("the body is not a valid context: " + e.getMessage(), e);
    } catch (org.apache.lucene.index.IndexFormatTooNewException
        | org.apache.lucene.index.IndexFormatTooOldException
        | org.apache.lucene.index.IndexNotFoundException e) {
      throw new IllegalArgumentException("the body is not a valid context: " + e.getMessage(), e);
    }
  }

  private static Map<String, Object> inspection(byte[] pack) throws IOException {
    ContextPack.Description d = ContextPack.describe(pack);
    ContextInfo info = d.info();
    List<Map<String, Object>> fields = new ArrayList<>();
    long clusters = 0;
    for (ContextPack.FieldStats f : d.fields()) {
      clusters += f.clusters();
      fields.add(Map.of("field", f.field(), "vectors", f.vectors(), "dim", f.dim(),
          "storage", f.storage(), "wave_segments", f.waveSegments(),
          "steady_segments", f.steadySegments(), "clusters", f.clusters(),
          "min_cluster_size", f.minClusterSize(), "max_cluster_size", f.maxClusterSize()));
    }
    return Map.of("id", info.id(), "tokens", info.tokens(), "shape", info.shape(),
        "config", String.valueOf(info.config()), "bytes", d.bytes(),
        "lucene_segments", d.luceneSegments(), "prefix_keys", d.prefixKeys().size(),
        "clusters", clusters, "fields", fields);
  }

  private static BytesRestResponse json(RestStatus status, Map<String, ?> body) throws IOException {
    XContentBuilder b = XContentFactory.jsonBuilder().map(body);
    return new BytesRestResponse(status, b);
  }
}
