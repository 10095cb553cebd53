package org.retroinfer.wave.kv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * An appendable, off-heap table of fixed-dimension vectors (rows) stored as float32, float16 or
 * bfloat16: the storage of keys, values, centroids and value sums.
 *
 * <p>Rows live in one contiguous {@link MemorySegment} (little-endian, 64-byte aligned), so a range
 * of rows is one sequential read and can be handed to a kernel, a file or a GPU copy without
 * passing through the Java heap. Capacity doubles as rows are appended. A store is written by one
 * thread; any number of threads may read it while nobody appends. Appended values must be finite,
 * and representable in the store's type; anything else is rejected with a message that says which
 * row and component was wrong.
 *
 * <p>{@link #wrap} makes a read-only store over memory owned by someone else (a memory-mapped file).
 */
public final class VectorStore implements AutoCloseable {
  static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final int dim;
  private final KvDType type;
  private final long rowBytes;
  private final boolean owned;
  private Arena arena;
  private MemorySegment segment;
  private int size;
  private int capacity;
  private boolean closed;

  private VectorStore(int dim, KvDType type, Arena arena, MemorySegment segment, int size,
      int capacity, boolean owned) {
    this.dim = dim;
    this.type = type;
    this.rowBytes = (long) dim * type.bytes();
    this.arena = arena;
    this.segment = segment;
    this.size = size;
    this.capacity = capacity;
    this.owned = owned;
  }

  /** An empty store with room for {@code initialRows} rows before it grows. */
  public static VectorStore allocate(int dim, KvDType type, int initialRows) {
    if (dim <= 0) {
      throw new IllegalArgumentException("vector dimension must be positive, got " + dim);
    }
    Objects.requireNonNull(type, "type");
    int cap = Math.max(1, initialRows);
    Arena arena = Arena.ofShared();
    MemorySegment seg = arena.allocate((long) cap * dim * type.bytes(), 64);
    return new VectorStore(dim, type, arena, seg, 0, cap, true);
  }

  /**
   * A read-only store over {@code rows} rows at the start of {@code memory}, which the caller keeps
   * alive for as long as the store is used.
   */
  public static VectorStore wrap(MemorySegment memory, int dim, KvDType type, int rows) {
    long need = (long) rows * dim * type.bytes();
    if (memory.byteSize() < need) {
      throw new IllegalArgumentException("memory of " + memory.byteSize() + " bytes is too small for "
          + rows + " rows of " + dim + " x " + type + " (" + need + " bytes)");
    }
    return new VectorStore(dim, type, null, memory.asSlice(0, need), rows, rows, false);
  }

  public int dim() {
    return dim;
  }

  public KvDType type() {
    return type;
  }

  /** Number of rows. */
  public int size() {
    return size;
  }

  /** Bytes per row. */
  public long rowBytes() {
    return rowBytes;
  }

  /** Byte offset of {@code row} in {@link #memory()}. */
  public long offsetOf(int row) {
    return row * rowBytes;
  }

  /** The rows {@code [0, size)} as one segment; invalid after the next append that grows. */
  public MemorySegment memory() {
    ensureOpen();
    return segment.asSlice(0, size * rowBytes);
  }

  /** The rows {@code [from, to)} as one segment; invalid after the next append that grows. */
  public MemorySegment rows(int from, int to) {
    checkRange(from, to);
    return segment.asSlice(from * rowBytes, (to - from) * rowBytes);
  }

  /**
   * Reads one value from every 64-byte cache line of rows {@code [from, to)} and returns their
   * XOR. Touching many scattered row ranges one after the other, before the arithmetic on them,
   * lets the processor fetch them all at once instead of one latency at a time.
   */
  public long touch(int from, int to) {
    checkRange(from, to);
    long end = to * rowBytes;
    long x = 0;
    for (long at = from * rowBytes; at < end; at += 64) {
      x ^= segment.get(ValueLayout.JAVA_BYTE, at);
    }
    return x;
  }

  /** The raw segment, including unused capacity: for kernels that index it themselves. */
  public MemorySegment rawMemory() {
    ensureOpen();
    return segment;
  }

  /** Appends {@code dim} floats from {@code src[off..]}. */
  public void append(float[] src, int off) {
    ensureWritable();
    Objects.checkFromIndexSize(off, dim, src.length);
    ensureCapacity(size + 1);
    long base = size * rowBytes;
    switch (type) {
      case FLOAT32 -> {
        for (int i = 0; i < dim; i++) {
          float f = checkFinite(src[off + i], i);
          segment.set(FLOAT_LE, base + 4L * i, f);
        }
      }
      case FLOAT16, BFLOAT16 -> {
        for (int i = 0; i < dim; i++) {
          float f = checkFinite(src[off + i], i);
          short bits = type.encode16(f);
          if (type == KvDType.FLOAT16 && Float.isInfinite(Float.float16ToFloat(bits))) {
            throw new IllegalArgumentException("value " + f + " at row " + size + ", component " + i
                + " overflows float16 (largest 65504); store this context as BFLOAT16 or FLOAT32");
          }
          segment.set(SHORT_LE, base + 2L * i, bits);
        }
      }
    }
    size++;
  }

  /** Appends {@code rows} rows stored back to back in {@code src} from {@code off}. */
  public void appendAll(float[] src, int off, int rows) {
    Objects.checkFromIndexSize(off, Math.multiplyExact(rows, dim), src.length);
    ensureCapacity(size + rows);
    for (int r = 0; r < rows; r++) {
      append(src, off + r * dim);
    }
  }

  /** Appends rows {@code [from, to)} of {@code other}, which has the same dim and type: a byte copy. */
  public void appendFrom(VectorStore other, int from, int to) {
    ensureWritable();
    if (other.dim != dim || other.type != type) {
      throw new IllegalArgumentException("cannot copy rows of " + other.dim + " x " + other.type
          + " into a store of " + dim + " x " + type);
    }
    other.checkRange(from, to);
    int rows = to - from;
    ensureCapacity(size + rows);
    MemorySegment.copy(other.segment, from * rowBytes, segment, size * rowBytes, rows * rowBytes);
    size += rows;
  }

  /**
   * Appends {@code rows} rows whose bytes (this store's type, little-endian) start at {@code offset}
   * in {@code src}. The bytes are trusted to be finite values: they come from a store or a checksummed
   * file.
   */
  public void appendRaw(MemorySegment src, long offset, int rows) {
    ensureWritable();
    ensureCapacity(size + rows);
    MemorySegment.copy(src, offset, segment, size * rowBytes, rows * rowBytes);
    size += rows;
  }

  /** Copies row {@code row} as floats into {@code dst[off..off+dim)}. */
  public void read(int row, float[] dst, int off) {
    checkRange(row, row + 1);
    long base = row * rowBytes;
    if (type == KvDType.FLOAT32) {
      MemorySegment.copy(segment, FLOAT_LE, base, dst, off, dim);
    } else {
      for (int i = 0; i < dim; i++) {
        dst[off + i] = type.decode16(segment.get(SHORT_LE, base + 2L * i));
      }
    }
  }

  /** Row {@code row} as a new float array. */
  public float[] row(int row) {
    float[] out = new float[dim];
    read(row, out, 0);
    return out;
  }

  /** Component {@code col} of row {@code row}. */
  public float get(int row, int col) {
    checkRange(row, row + 1);
    Objects.checkIndex(col, dim);
    long at = row * rowBytes + (long) col * type.bytes();
    return type == KvDType.FLOAT32 ? segment.get(FLOAT_LE, at) : type.decode16(segment.get(SHORT_LE, at));
  }

  /** Overwrites row {@code row} (used for sums that are updated in place). */
  public void set(int row, float[] src, int off) {
    ensureWritable();
    checkRange(row, row + 1);
    int saved = size;
    size = row;
    try {
      append(src, off);
    } finally {
      size = saved;
    }
  }

  /** Drops the first {@code rows} rows, moving the rest to the front. */
  public void removeFirst(int rows) {
    ensureWritable();
    checkRange(0, rows);
    MemorySegment.copy(segment, rows * rowBytes, segment, 0, (size - rows) * rowBytes);
    size -= rows;
  }

  /** Drops the last row (undoes an append). */
  public void removeLast() {
    ensureWritable();
    checkRange(0, 1);
    size--;
  }

  /** Drops every row; keeps the capacity. */
  public void clear() {
    ensureWritable();
    size = 0;
  }

  /** Makes room for at least {@code rows} rows in all, so that appends up to there do not copy. */
  public void reserve(int rows) {
    ensureWritable();
    ensureCapacity(rows);
  }

  /** Bytes of off-heap memory held (capacity, not size). */
  public long capacityBytes() {
    return owned ? capacity * rowBytes : 0;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      if (owned) {
        arena.close();
      }
      segment = MemorySegment.NULL;
      size = 0;
    }
  }

  private void ensureCapacity(int rows) {
    if (rows <= capacity) {
      return;
    }
    int newCap = (int) Math.min(Integer.MAX_VALUE - 8, Math.max((long) rows, capacity * 2L));
    Arena newArena = Arena.ofShared();
    MemorySegment grown = newArena.allocate(newCap * rowBytes, 64);
    MemorySegment.copy(segment, 0, grown, 0, size * rowBytes);
    Arena old = arena;
    arena = newArena;
    segment = grown;
    capacity = newCap;
    old.close();
  }

  private float checkFinite(float f, int component) {
    if (!Float.isFinite(f)) {
      throw new IllegalArgumentException("non-finite value " + f + " at row " + size + ", component "
          + component + ": keys and values must be finite numbers");
    }
    return f;
  }

  private void checkRange(int from, int to) {
    ensureOpen();
    if (from < 0 || to > size || from > to) {
      throw new IndexOutOfBoundsException("rows [" + from + ", " + to + ") outside [0, " + size + ")");
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("vector store is closed");
    }
  }

  private void ensureWritable() {
    ensureOpen();
    if (!owned) {
      throw new UnsupportedOperationException("this store wraps external memory and is read-only");
    }
  }

  @Override
  public String toString() {
    return "VectorStore[" + size + " x " + dim + " " + type + "]";
  }
}
