package org.retroinfer.opensearch;

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
