package org.retroinfer.opensearch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.lucene.ConfigText;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextPack;
import org.retroinfer.wave.attention.AttentionShape;

/**
 * What a context's head document holds beside its K/V blocks, so that a shard can serve the
 * context from its vector fields: its record (token ids, logits), its store's chunk size and prefix
 * keys, and the {@link AssignedLayout.ContextPlan} (tag of block 0, wave segments, sinks, prefill
 * state, key centres, wave configuration). Binary values are little-endian arrays.
 */
final class ServedContext {
  static final String TAG = "kv_tag";
  static final String SEGMENTS = "kv_segments";
  static final String SINKS = "kv_sinks";
  static final String PREFILL_DONE = "kv_prefill_done";
  static final String CENTRES = "kv_centres";
  static final String WAVE_CONFIG = "kv_config";
  static final String TOKEN_IDS = "token_ids";
  static final String LOGITS = "logits";

  private ServedContext() {}

  /** The head fields of a context whose blocks were made from {@code loaded} with tag {@code firstTag}. */
  static Map<String, Object> headFields(LoadedContext loaded, long firstTag, float[] logits) {
    AssignedLayout.ContextPlan plan = AssignedLayout.ContextPlan.of(loaded, firstTag);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put(TAG, plan.firstTag());
    m.put(SEGMENTS, plan.segments());
    m.put(SINKS, plan.sinks());
    m.put(PREFILL_DONE, plan.prefillDone());
    if (plan.centres() != null) {
      m.put(CENTRES, floats(plan.centres()));
    }
    m.put(WAVE_CONFIG, ConfigText.format(plan.config()));
    m.put(TOKEN_IDS, ints(plan.tokens()));
    if (logits != null) {
      m.put(LOGITS, floats(logits));
    }
    return m;
  }

  /** The plan of the context a head describes. */
  static AssignedLayout.ContextPlan plan(Map<String, Object> head) {
    return new AssignedLayout.ContextPlan(shape((String) head.get("shape")),
        ConfigText.parse((String) head.get(WAVE_CONFIG)), tokens(head),
        ((Number) head.get(SINKS)).intValue(), (Boolean) head.get(PREFILL_DONE),
        head.containsKey(CENTRES) ? floats(bytes(head.get(CENTRES))) : null,
        ((Number) head.get(TAG)).longValue(), ((Number) head.get(SEGMENTS)).intValue());
  }

  static int[] tokens(Map<String, Object> head) {
    ByteBuffer b = ByteBuffer.wrap(bytes(head.get(TOKEN_IDS))).order(ByteOrder.LITTLE_ENDIAN);
    int[] t = new int[b.remaining() / 4];
    b.asIntBuffer().get(t);
    return t;
  }

  static float[] logits(Map<String, Object> head) {
    return head.containsKey(LOGITS) ? floats(bytes(head.get(LOGITS))) : null;
  }

  /** The record of the context a head describes, as its pack's record doc says it. */
  static ContextInfo info(Map<String, Object> head) {
    return new ContextInfo((String) head.get("ctx"), (String) head.get("name"),
        (String) head.get("kind"), (String) head.get("namespace"), (String) head.get("model"),
        (String) head.get("tenant"), ((Number) head.get("tokens")).intValue(),
        (Boolean) head.get("has_logits"),
        Instant.ofEpochMilli(((Number) head.get("created")).longValue()),
        (String) head.get("shape"), (String) head.get("config"));
  }

  static List<ContextPack.PrefixKey> prefixKeys(Map<String, Object> head) {
    List<?> hashes = (List<?>) head.get("prefix");
    List<?> tokens = (List<?>) head.get("prefix_tokens");
    List<ContextPack.PrefixKey> keys = new ArrayList<>();
    for (int i = 0; i < hashes.size(); i++) {
      keys.add(new ContextPack.PrefixKey((String) hashes.get(i),
          ((Number) tokens.get(i)).intValue()));
    }
    return keys;
  }

  static AttentionShape shape(String text) {
    int layers = -1;
    int queryHeads = -1;
    int kvHeads = -1;
    int headDim = -1;
    for (String part : text.split(",")) {
      String[] kv = part.split("=");
      int v = Integer.parseInt(kv[1]);
      switch (kv[0]) {
        case "layers" -> layers = v;
        case "queryHeads" -> queryHeads = v;
        case "kvHeads" -> kvHeads = v;
        case "headDim" -> headDim = v;
        default -> throw new IllegalArgumentException("shape '" + text + "'");
      }
    }
    return new AttentionShape(layers, queryHeads, kvHeads, headDim);
  }

  /** A binary source value: CBOR and the node's own maps give bytes, JSON gives base64. */
  static byte[] bytes(Object v) {
    if (v instanceof byte[] b) {
      return b;
    }
    if (v instanceof String s) {
      return java.util.Base64.getDecoder().decode(s);
    }
    if (v instanceof org.opensearch.core.common.bytes.BytesReference r) {
      return org.opensearch.core.common.bytes.BytesReference.toBytes(r);
    }
    throw new IllegalArgumentException("not a binary value: " + (v == null ? null : v.getClass()));
  }

  static byte[] floats(float[] a) {
    ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(a);
    return b.array();
  }

  static float[] floats(byte[] bytes) {
    float[] f = new float[bytes.length / 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
    return f;
  }

  static byte[] ints(int[] a) {
    ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(a);
    return b.array();
  }
}
