package org.retroinfer.bench;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The memory-bandwidth yardstick: a plain streaming read (a vectorised sum of 64-bit words) of the
 * same off-heap segments that full attention reads, in parallel over the same segments.
 */
public final class StreamingRead {
  private static final VectorSpecies<Long> S = LongVector.SPECIES_PREFERRED;

  private StreamingRead() {}

  /** Reads every byte of every segment once; returns a checksum so that nothing is optimised away. */
  public static long readAll(List<MemorySegment> segments) {
    return segments.parallelStream().mapToLong(StreamingRead::sum).sum();
  }

  static long sum(MemorySegment seg) {
    long bytes = seg.byteSize();
    long step = S.vectorByteSize();
    long end = bytes - bytes % step;
    LongVector acc = LongVector.zero(S);
    for (long off = 0; off < end; off += step) {
      acc = acc.add(LongVector.fromMemorySegment(S, seg, off, ByteOrder.LITTLE_ENDIAN));
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  /** Total bytes of the segments. */
  public static long bytes(List<MemorySegment> segments) {
    return segments.stream().mapToLong(MemorySegment::byteSize).sum();
  }
}
