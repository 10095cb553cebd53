package org.retroinfer.opensearch;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.apache.lucene.document.FieldType;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.search.Query;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.index.mapper.FieldMapper;
import org.opensearch.index.mapper.MappedFieldType;
import org.opensearch.index.mapper.ParametrizedFieldMapper;
import org.opensearch.index.mapper.ParseContext;
import org.opensearch.index.mapper.SourceValueFetcher;
import org.opensearch.index.mapper.TextSearchInfo;
import org.opensearch.index.mapper.ValueFetcher;
import org.opensearch.index.query.QueryShardContext;
import org.opensearch.search.lookup.SearchLookup;
import org.retroinfer.lucene.AssignedLayout;
import org.retroinfer.wave.kv.KvDType;

/**
 * The field type {@value #CONTENT_TYPE}: one K/V vector of a context per document, indexed as a
 * Lucene float vector field in the wave format's <em>assigned</em> layout
 * ({@link AssignedLayout}): the head dim's components, then the block tag (two 24-bit halves) and
 * the cluster id the host gave the row, as exact float integers. The index's codec
 * ({@link ServerWaveCodec}) stores such a field with the wave format, which at flush groups rows
 * by tag into wave segments and by cluster id into clusters, never running k-means.
 *
 * <p>Parameters (none can change once mapped): {@code dimension} (the head dim, without the
 * {@value AssignedLayout#TRAILING} trailing components), {@code role} ({@code key} or
 * {@code value}), {@code partner} (the full name of the paired value or key field) and
 * {@code storage} ({@code FLOAT32}, {@code FLOAT16} or {@code BFLOAT16}: how the format stores the
 * rows). A value is {@code dimension + 3} little-endian float32 as a binary value (a CBOR byte
 * string, or base64 in JSON) or as an array of numbers; a wrong length, a non-finite component or
 * trailing components that are no tag and cluster id are refused with a 400. The field is not
 * searchable through the query DSL (the wave format's own search is for the host).
 */
final class KvVectorFieldMapper extends ParametrizedFieldMapper {
  static final String CONTENT_TYPE = "retroinfer_kv";
  static final String KEY = "key";
  static final String VALUE = "value";
  /** The widest head dim accepted (the wave format's limit is larger; no model comes close). */
  static final int MAX_DIMENSION = 4096;

  static final TypeParser PARSER = new TypeParser((name, context) -> new Builder(name));

  private static KvVectorFieldMapper toType(FieldMapper in) {
    return (KvVectorFieldMapper) in;
  }

  static final class Builder extends ParametrizedFieldMapper.Builder {
    private final Parameter<Integer> dimension = Parameter.intParam("dimension", false,
        m -> toType(m).dimension, 0).setValidator(d -> {
          if (d < 1 || d > MAX_DIMENSION) {
            throw new IllegalArgumentException("[dimension] of a " + CONTENT_TYPE + " field must be"
                + " the head dim, in [1, " + MAX_DIMENSION + "], got " + d);
          }
        });
    private final Parameter<String> role = Parameter.restrictedStringParam("role", false,
        m -> toType(m).role, KEY, VALUE);
    private final Parameter<String> partner = Parameter.stringParam("partner", false,
        m -> toType(m).partner, "").setValidator(p -> {
          if (p.isEmpty()) {
            throw new IllegalArgumentException("a " + CONTENT_TYPE + " field needs [partner]: the"
                + " full name of its paired value (or key) field");
          }
        });
    private final Parameter<String> storage = Parameter.restrictedStringParam("storage", false,
        m -> toType(m).storage.name(), KvDType.BFLOAT16.name(), KvDType.FLOAT16.name(),
        KvDType.FLOAT32.name());
    private final Parameter<Map<String, String>> meta = Parameter.metaParam();

    Builder(String name) {
      super(name);
    }

    @Override
    protected List<Parameter<?>> getParameters() {
      return List.of(dimension, role, partner, storage, meta);
    }

    @Override
    public KvVectorFieldMapper build(BuilderContext context) {
      String fullName = buildFullName(context);
      return new KvVectorFieldMapper(name, new KvFieldType(fullName, dimension.getValue(),
          meta.getValue()), dimension.getValue(), role.getValue(), partner.getValue(),
          KvDType.valueOf(storage.getValue()), multiFieldsBuilder.build(this, context),
          copyTo.build());
    }
  }

  /** Not searchable, aggregatable or sortable: the vectors are the wave format's to answer. */
  static final class KvFieldType extends MappedFieldType {
    private final int dimension;

    KvFieldType(String name, int dimension, Map<String, String> meta) {
      super(name, false, false, false, TextSearchInfo.NONE, meta);
      this.dimension = dimension;
    }

    int dimension() {
      return dimension;
    }

    @Override
    public String typeName() {
      return CONTENT_TYPE;
    }

    @Override
    public ValueFetcher valueFetcher(QueryShardContext context, SearchLookup lookup, String format) {
      // the contexts' index keeps K/V out of _source: nothing to fetch, and nothing to fail
      return SourceValueFetcher.identity(name(), context, format);
    }

    @Override
    public Query termQuery(Object value, QueryShardContext context) {
      throw notSearchable();
    }

    @Override
    public Query existsQuery(QueryShardContext context) {
      throw notSearchable();
    }

    private IllegalArgumentException notSearchable() {
      return new IllegalArgumentException("field [" + name() + "] of type [" + CONTENT_TYPE
          + "] holds a context's K/V in the wave format's assigned layout and cannot be searched"
          + " through the query DSL; contexts are found with POST /_retroinfer/{index}/_lookup");
    }
  }

  private final int dimension;
  private final String role;
  private final String partner;
  private final KvDType storage;
  private final FieldType luceneType;

  private KvVectorFieldMapper(String simpleName, KvFieldType type, int dimension, String role,
      String partner, KvDType storage, MultiFields multiFields, CopyTo copyTo) {
    super(simpleName, type, multiFields, copyTo);
    this.dimension = dimension;
    this.role = role;
    this.partner = partner;
    this.storage = storage;
    this.luceneType = KEY.equals(role)
        ? AssignedLayout.keyType(type.name(), partner, dimension, storage)
        : AssignedLayout.valueType(type.name(), partner, dimension, storage);
  }

  @Override
  public boolean parsesArrayValue() {
    return true; // a vector may come as an array of numbers
  }

  @Override
  protected void parseCreateField(ParseContext context) throws IOException {
    XContentParser p = context.parser();
    String name = fieldType().name();
    float[] vector = switch (p.currentToken()) {
      case VALUE_NULL -> null;
      case START_ARRAY -> numbers(p);
      case VALUE_EMBEDDED_OBJECT, VALUE_STRING -> littleEndian(p.binaryValue());
      default -> throw new IllegalArgumentException("field [" + name + "] of type ["
          + CONTENT_TYPE + "] takes one vector: " + (dimension + AssignedLayout.TRAILING)
          + " little-endian float32 as bytes (CBOR byte string, or base64 in JSON) or an array"
          + " of numbers; got " + p.currentToken());
    };
    if (vector == null) {
      return;
    }
    check(vector);
    if (context.doc().getField(name) != null) {
      throw new IllegalArgumentException("field [" + name + "] of type [" + CONTENT_TYPE
          + "] takes one vector per document (one K/V row per nested object), got a second");
    }
    context.doc().add(new KnnFloatVectorField(name, vector, luceneType));
  }

  private float[] littleEndian(byte[] bytes) {
    int want = (dimension + AssignedLayout.TRAILING) * Float.BYTES;
    if (bytes.length != want) {
      throw new IllegalArgumentException("field [" + fieldType().name() + "] of type ["
          + CONTENT_TYPE + "] takes " + want + " bytes (" + (dimension + AssignedLayout.TRAILING)
          + " little-endian float32: head dim " + dimension + " plus tag and cluster), got "
          + bytes.length);
    }
    float[] v = new float[dimension + AssignedLayout.TRAILING];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
    return v;
  }

  private float[] numbers(XContentParser p) throws IOException {
    float[] v = new float[dimension + AssignedLayout.TRAILING];
    int n = 0;
    for (XContentParser.Token t = p.nextToken(); t != XContentParser.Token.END_ARRAY;
        t = p.nextToken()) {
      if (t != XContentParser.Token.VALUE_NUMBER && t != XContentParser.Token.VALUE_STRING) {
        throw new IllegalArgumentException("field [" + fieldType().name() + "] of type ["
            + CONTENT_TYPE + "]: an array value must hold numbers only, got " + t);
      }
      if (n < v.length) {
        v[n] = p.floatValue(); // a string too ("NaN" is how JSON writers spell it), then checked
      }
      n++;
    }
    if (n != v.length) {
      throw new IllegalArgumentException("field [" + fieldType().name() + "] of type ["
          + CONTENT_TYPE + "] takes " + v.length + " numbers (head dim " + dimension
          + " plus tag and cluster), got " + n);
    }
    return v;
  }

  private void check(float[] v) {
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        throw new IllegalArgumentException("field [" + fieldType().name() + "] of type ["
            + CONTENT_TYPE + "]: component " + i + " is " + v[i] + "; K/V rows are finite");
      }
    }
    String wrong = AssignedLayout.checkTrailing(v, dimension);
    if (wrong != null) {
      throw new IllegalArgumentException("field [" + fieldType().name() + "] of type ["
          + CONTENT_TYPE + "]: " + wrong);
    }
  }

  @Override
  public ParametrizedFieldMapper.Builder getMergeBuilder() {
    return new Builder(simpleName()).init(this);
  }

  @Override
  protected String contentType() {
    return CONTENT_TYPE;
  }
}
