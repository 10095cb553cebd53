package org.retroinfer.opensearch;

import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.VectorStore;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;
import java.util.SplittableRandom;
import org.opensearch.common.xcontent.XContentType;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentParser;
import org.retroinfer.store.ContextPack;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.Synthetic;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * What the plugin's two cluster tests share: packs of kv-store's synthetic contexts, their
 * attention, and reading the server's JSON.
 */
final class TestPacks {
  private TestPacks() {}

  /** A context's id and its pack. */
  record Packed(String id, byte[] pack) {}

  /** Stores {@code cache} in a new store at {@code dir} and packs that store. */
  static Packed pack(Path dir, ModelFingerprint model, String tenant, int[] tokens,
      ContextCache cache) throws Exception {
    String id;
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK)) {
      id = store.scope(model, tenant, KvDType.BFLOAT16)
          .put("", "prompt", tokens, cache, null, null).id();
    }
    return new Packed(id, ContextPack.pack(dir));
  }

  /**
   * The pack of a random context of {@code n} tokens whose head dim (32) differs from the synthetic
   * contexts' (16): what a server must refuse in an index that holds the model's other contexts.
   */
  static byte[] widePack(Path dir, ModelFingerprint model, SplittableRandom r, int n)
      throws Exception {
    AttentionShape wide = new AttentionShape(2, 4, 2, 32);
    try (ContextCache c = new WaveAttention(Synthetic.CONFIG).newContext(wide)) {
      float[] k = new float[wide.kvWidth()];
      for (int l = 0; l < wide.layers(); l++) {
        for (int p = 0; p < n; p++) {
          for (int i = 0; i < k.length; i++) {
            k[i] = (float) r.nextGaussian();
          }
          c.append(l, k, k);
        }
      }
      c.endPrefill();
      return pack(dir, model, "", Synthetic.tokens(r, n), c).pack();
    }
  }

  /**
   * The pack a server served holds the context that was put, though not the same bytes (the server
   * builds it back from the K/V vector fields of its shard, in the assigned layout): the same record
   * (tokens, logits, prefix keys) and, per (layer, KV head), the same wave segments, clusters,
   * centroids, value sums, spreads and K/V rows, bit for bit.
   */
  static void assertSameContext(byte[] put, byte[] served, String id, String what)
      throws Exception {
    ContextPack.Description a = ContextPack.describe(put);
    ContextPack.Description b = ContextPack.describe(served);
    check(a.info().equals(b.info()), what + ": record " + a.info() + " vs " + b.info());
    check(a.chunkTokens() == b.chunkTokens() && a.prefixKeys().equals(b.prefixKeys()),
        what + ": prefix keys");
    check(java.util.Arrays.equals(a.tokenIds(), b.tokenIds())
        && java.util.Arrays.equals(a.logits(), b.logits()), what + ": token ids or logits");
    try (var ra = ContextPack.open(put); var rb = ContextPack.open(served);
        LoadedContext x = org.retroinfer.lucene.ContextReader.load(ra, id);
        LoadedContext y = org.retroinfer.lucene.ContextReader.load(rb, id)) {
      check(x.shape().equals(y.shape()) && x.config().equals(y.config())
          && x.prefillDone() == y.prefillDone(), what + ": shape, configuration, prefill");
      for (int l = 0; l < x.shape().layers(); l++) {
        for (int h = 0; h < x.shape().kvHeads(); h++) {
          String where = what + ", layer " + l + ", KV head " + h;
          HeadLayout p = x.layout(l, h);
          HeadLayout q = y.layout(l, h);
          check(p.size() == q.size() && p.sinks() == q.sinks() && p.tailStart() == q.tailStart(),
              where + ": zones");
          check(java.util.Arrays.equals(p.keyCentre(), q.keyCentre()), where + ": key centre");
          sameRows(p.sinkKeys(), q.sinkKeys(), where + " sink keys");
          sameRows(p.sinkValues(), q.sinkValues(), where + " sink values");
          sameRows(p.tailKeys(), q.tailKeys(), where + " tail keys");
          sameRows(p.tailValues(), q.tailValues(), where + " tail values");
          WaveIndex i = p.index();
          WaveIndex j = q.index();
          check(i.segmentCount() == j.segmentCount(), where + ": wave segments");
          for (int s = 0; s < i.segmentCount(); s++) {
            ClusteredSegment u = i.segment(s);
            ClusteredSegment v = j.segment(s);
            String seg = where + ", wave segment " + s;
            check(u.firstPosition() == v.firstPosition()
                && java.util.Arrays.equals(u.order(), v.order())
                && java.util.Arrays.equals(u.offsets(), v.offsets()), seg + ": clusters");
            check(java.util.Arrays.equals(u.centroids(), v.centroids())
                && java.util.Arrays.equals(u.valueSums(), v.valueSums()), seg + ": summaries");
            check(java.util.Arrays.equals(u.spreads().spreads(), v.spreads().spreads())
                && java.util.Arrays.equals(u.spreads().deviationSums(),
                    v.spreads().deviationSums()), seg + ": spreads");
          }
          sameRows(i.keys(), j.keys(), where + " indexed keys");
          sameRows(i.values(), j.values(), where + " indexed values");
        }
      }
    }
  }

  private static void sameRows(VectorStore a, VectorStore b, String what) {
    check(a.size() == b.size() && a.type() == b.type(), what + ": rows");
    for (int from = 0; from < a.size(); ) {
      int to = Math.min(a.oneRegionEnd(from, a.size()), b.oneRegionEnd(from, b.size()));
      check(a.rows(from, to).mismatch(b.rows(from, to)) == -1, what + ": bytes of rows ["
          + from + ", " + to + ")");
      from = to;
    }
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError(what + " differ between the pack put and the pack served");
    }
  }

  /** Every layer's attention output for {@code queries}, layer after layer. */
  static float[] attend(ContextCache c, float[] queries) {
    int width = Synthetic.SHAPE.queryWidth();
    float[] out = new float[Synthetic.SHAPE.layers() * width];
    float[] o = new float[width];
    for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
      c.attend(l, queries, o);
      System.arraycopy(o, 0, out, l * o.length, o.length);
    }
    return out;
  }

  /** A JSON body as a map, parsed as the server parses it. */
  static Map<String, Object> parse(String json) throws Exception {
    try (XContentParser p = XContentType.JSON.xContent().createParser(NamedXContentRegistry.EMPTY,
        DeprecationHandler.THROW_UNSUPPORTED_OPERATION, json)) {
      return p.map();
    }
  }

  /** The tenant hash a client sends for a tenant salt (as kv-store's ContextStore makes it). */
  static String tenantHash(String salt) throws Exception {
    return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
        .digest(salt.getBytes(StandardCharsets.UTF_8))).substring(0, 16);
  }

  /** A put body: CBOR {"pack": byte string}. */
  static byte[] cborBody(byte[] pack) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(0xA1); // map of one pair
    b.write(0x64); // text of 4 bytes
    b.writeBytes("pack".getBytes(StandardCharsets.US_ASCII));
    b.write(0x5A); // byte string, 4-byte length
    b.writeBytes(ByteBuffer.allocate(4).putInt(pack.length).array());
    b.writeBytes(pack);
    return b.toByteArray();
  }
}
