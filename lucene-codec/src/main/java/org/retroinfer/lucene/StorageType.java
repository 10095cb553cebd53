package org.retroinfer.lucene;

import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.store.DataInput;
import org.retroinfer.wave.kv.KvDType;

/** The on-disk codes of {@link KvDType}: fixed numbers, independent of the enum's order. */
final class StorageType {
  private StorageType() {}

  static byte code(KvDType type) {
    return switch (type) {
      case FLOAT32 -> 0;
      case FLOAT16 -> 1;
      case BFLOAT16 -> 2;
    };
  }

  static KvDType decode(byte code, DataInput in) throws CorruptIndexException {
    return switch (code) {
      case 0 -> KvDType.FLOAT32;
      case 1 -> KvDType.FLOAT16;
      case 2 -> KvDType.BFLOAT16;
      default -> throw new CorruptIndexException("unknown storage type code " + code, in);
    };
  }
}
