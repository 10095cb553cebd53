package org.retroinfer.lucene;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.apache.lucene.store.IndexInput;
import org.retroinfer.wave.kv.KvDType;

/**
 * Reads rows of the data file as floats: straight from the mapped file when the directory maps it
 * (no copy through an intermediate buffer), else through a private clone of the input. One
 * instance per thread.
 */
final class RowSource {
  private static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final MemorySegment memory;
  private final IndexInput in;
  private byte[] bytes = new byte[0];

  RowSource(MemorySegment memory, IndexInput data) {
    this.memory = memory;
    this.in = memory == null ? data.clone() : null;
  }

  /** Reads {@code dim} elements of {@code type} at byte {@code offset} into {@code dst}. */
  void read(long offset, KvDType type, int dim, float[] dst) throws IOException {
    if (memory != null) {
      if (type == KvDType.FLOAT32) {
        MemorySegment.copy(memory, FLOAT_LE, offset, dst, 0, dim);
      } else {
        for (int i = 0; i < dim; i++) {
          dst[i] = type.decode16(memory.get(SHORT_LE, offset + 2L * i));
        }
      }
      return;
    }
    in.seek(offset);
    if (type == KvDType.FLOAT32) {
      in.readFloats(dst, 0, dim);
    } else {
      if (bytes.length < 2 * dim) {
        bytes = new byte[2 * dim];
      }
      in.readBytes(bytes, 0, 2 * dim);
      for (int i = 0; i < dim; i++) {
        short bits = (short) ((bytes[2 * i] & 0xFF) | (bytes[2 * i + 1] << 8));
        dst[i] = type.decode16(bits);
      }
    }
  }
}
