package org.retroinfer.lucene;

import org.apache.lucene.document.FieldType;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.retroinfer.lucene.WaveVectorsFormat.Layout;
import org.retroinfer.wave.WaveConfig;

/**
 * The document mapping of a stored context: one document per token, plus one metadata document.
 *
 * <ul>
 *   <li>{@value #CONTEXT}: the context id (indexed keyword, one term per context: select or delete a
 *       context by it);
 *   <li>{@value #KIND}: {@value #KIND_TOKEN} or {@value #KIND_META};
 *   <li>{@value #POSITION}: the token's position (numeric doc values); {@value #TOKEN}: its token
 *       id (numeric doc values);
 *   <li>per (layer, KV head): the key vector {@code kv.k.<layer>.<head>} and the value vector
 *       {@code kv.v.<layer>.<head>}, both float vectors of the head dim, with the
 *       {@link WaveVectorsFormat} attributes that pair them, fix their storage type and clustering
 *       parameters, and choose the layout of the flush (see {@link ContextWriter}).
 *   <li>the metadata document holds, as stored fields, the attention shape, the
 *       {@link WaveConfig}, the token count, the sink count, whether the prefill was done, and
 *       (when the context has an index) the key centre of every (layer, KV head) as one binary field
 *       of {@code layers x kvHeads x headDim} little-endian floats; last, a {@link DocumentChecksum}
 *       of all these fields, verified whenever the document is read.
 * </ul>
 *
 * Why one document per token: a token is what postings name (cluster members are documents), and
 * Lucene's per-document machinery (deletes, merges, doc-id remapping, CheckIndex) then applies to
 * K/V unchanged. Why a field per (layer, head): each has its own wave index, as in wave-core.
 */
public final class ContextFields {
  public static final String CONTEXT = "kv.ctx";
  public static final String KIND = "kv.doc";
  public static final String KIND_TOKEN = "token";
  public static final String KIND_META = "meta";
  public static final String POSITION = "kv.pos";
  public static final String TOKEN = "kv.tok";

  static final String META_VERSION = "kv.meta.version";
  static final String META_TOKENS = "kv.meta.tokens";
  static final String META_SINKS = "kv.meta.sinks";
  static final String META_PREFILL_DONE = "kv.meta.prefillDone";
  static final String META_LAYERS = "kv.meta.layers";
  static final String META_QUERY_HEADS = "kv.meta.queryHeads";
  static final String META_KV_HEADS = "kv.meta.kvHeads";
  static final String META_HEAD_DIM = "kv.meta.headDim";
  static final String META_CONFIG = "kv.meta.config";
  static final String META_CENTRES = "kv.meta.centres";
  static final String META_CHECKSUM = "kv.meta.checksum";
  /** Version 2: the metadata document carries its checksum. */
  static final int META_VERSION_CURRENT = 2;

  private static final String KEY_PREFIX = "kv.k.";
  private static final String VALUE_PREFIX = "kv.v.";

  /** Similarity of the key fields: attention logits are inner products. */
  public static final VectorSimilarityFunction KEY_SIMILARITY =
      VectorSimilarityFunction.MAXIMUM_INNER_PRODUCT;

  private ContextFields() {}

  /** The key field of (layer, KV head). */
  public static String keyField(int layer, int kvHead) {
    return KEY_PREFIX + layer + "." + kvHead;
  }

  /** The value field of (layer, KV head). */
  public static String valueField(int layer, int kvHead) {
    return VALUE_PREFIX + layer + "." + kvHead;
  }

  /** Whether {@code field} is a key or value field of this mapping (what {@link WaveCodec} routes). */
  public static boolean isKvField(String field) {
    return field.startsWith(KEY_PREFIX) || field.startsWith(VALUE_PREFIX);
  }

  /**
   * The field type of a key field: wave attributes, paired with its value field, centred on
   * {@code centre} (the head's key centre; null: each wave segment on its own mean).
   */
  static FieldType keyType(int layer, int kvHead, int headDim, WaveConfig config, Layout layout,
      float[] centre) {
    FieldType t = vectorType(headDim, config, layout);
    t.putAttribute(WaveVectorsFormat.ATTR_VALUES, valueField(layer, kvHead));
    if (centre != null) {
      t.putAttribute(WaveVectorsFormat.ATTR_CENTRE, FieldParams.encodeCentre(centre));
    }
    t.freeze();
    return t;
  }

  /** The field type of a value field. */
  static FieldType valueType(int layer, int kvHead, int headDim, WaveConfig config, Layout layout) {
    FieldType t = vectorType(headDim, config, layout);
    t.putAttribute(WaveVectorsFormat.ATTR_KEYS, keyField(layer, kvHead));
    t.freeze();
    return t;
  }

  private static FieldType vectorType(int headDim, WaveConfig config, Layout layout) {
    FieldType t = new FieldType();
    t.setVectorAttributes(headDim, VectorEncoding.FLOAT32, KEY_SIMILARITY);
    t.putAttribute(WaveVectorsFormat.ATTR_LAYOUT, layout.attribute());
    t.putAttribute(WaveVectorsFormat.ATTR_STORAGE, config.kvType().name());
    t.putAttribute(WaveVectorsFormat.ATTR_SEGMENT_TOKENS, Integer.toString(config.segmentTokens()));
    t.putAttribute(WaveVectorsFormat.ATTR_TOKENS_PER_CLUSTER,
        Integer.toString(config.tokensPerCluster()));
    t.putAttribute(WaveVectorsFormat.ATTR_ITERATIONS, Integer.toString(config.kmeansIterations()));
    return t;
  }
}
