package org.retroinfer.lucene;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.zip.CRC32;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StoredValue;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.IndexableField;
import org.apache.lucene.util.BytesRef;

/**
 * A CRC32 over a document's stored fields, kept in the document itself, so that the document
 * carries its own check. Lucene verifies stored fields only in {@code checkIntegrity()} and
 * CheckIndex, never when a document is read, and a damaged chunk of stored fields can decode into
 * other values without an error.
 *
 * <p>The checksum covers every stored field except itself, in the order of their names (then in the
 * order added): the name, a type byte, and the value (strings as UTF-8 and binary values with their
 * length; ints, longs, floats and doubles little-endian). A document read back from an index (where
 * every field is a {@link StoredField}) gives the checksum that the written document gave.
 */
public final class DocumentChecksum {
  private DocumentChecksum() {}

  /** Adds the checksum of {@code d}'s stored fields to {@code d} as the stored long {@code field}. */
  public static void add(Document d, String field) {
    d.add(new StoredField(field, of(d, field)));
  }

  /**
   * Checks the checksum that {@link #add} stored in {@code field}.
   *
   * @param what names the document in the error (e.g. "the metadata document of context 'c1'")
   * @throws CorruptIndexException if it is missing or does not match
   */
  public static void verify(Document d, String field, String what) throws CorruptIndexException {
    IndexableField stored = d.getField(field);
    Number value = stored == null ? null : stored.numericValue();
    if (!(value instanceof Long expected)) {
      throw new CorruptIndexException(what + " has no checksum field '" + field + "'", what);
    }
    long actual = of(d, field);
    if (expected != actual) {
      throw new CorruptIndexException(what + " fails its checksum (stored crc32 "
          + Long.toHexString(expected) + ", computed " + Long.toHexString(actual) + ")", what);
    }
  }

  /** The checksum of {@code d}'s stored fields other than {@code exclude}. */
  public static long of(Document d, String exclude) {
    List<IndexableField> fields = new ArrayList<>();
    for (IndexableField f : d.getFields()) {
      if (f.fieldType().stored() && f.storedValue() != null && !f.name().equals(exclude)) {
        fields.add(f);
      }
    }
    fields.sort(Comparator.comparing(IndexableField::name)); // stable: same-name fields keep order
    CRC32 crc = new CRC32();
    ByteBuffer number = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    for (IndexableField f : fields) {
      byte[] name = f.name().getBytes(StandardCharsets.UTF_8);
      putInt(crc, number, name.length);
      crc.update(name);
      StoredValue v = f.storedValue();
      switch (v.getType()) {
        case INTEGER -> {
          crc.update('i');
          putInt(crc, number, v.getIntValue());
        }
        case LONG -> {
          crc.update('l');
          putLong(crc, number, v.getLongValue());
        }
        case FLOAT -> {
          crc.update('f');
          putInt(crc, number, Float.floatToRawIntBits(v.getFloatValue()));
        }
        case DOUBLE -> {
          crc.update('d');
          putLong(crc, number, Double.doubleToRawLongBits(v.getDoubleValue()));
        }
        case BINARY -> {
          BytesRef b = v.getBinaryValue();
          crc.update('b');
          putInt(crc, number, b.length);
          crc.update(b.bytes, b.offset, b.length);
        }
        case STRING -> {
          byte[] b = v.getStringValue().getBytes(StandardCharsets.UTF_8);
          crc.update('s');
          putInt(crc, number, b.length);
          crc.update(b);
        }
        default -> throw new IllegalArgumentException("stored field '" + f.name() + "' has a "
            + v.getType() + " value, which this checksum does not cover");
      }
    }
    return crc.getValue();
  }

  private static void putInt(CRC32 crc, ByteBuffer buffer, int v) {
    buffer.clear();
    crc.update(buffer.putInt(v).flip());
  }

  private static void putLong(CRC32 crc, ByteBuffer buffer, long v) {
    buffer.clear();
    crc.update(buffer.putLong(v).flip());
  }
}
