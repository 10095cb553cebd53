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
 * {@link #over} makes a store whose first rows are such external blocks, read in place, and whose
 * later rows are appended into memory it owns (a context opened from its files that then grows):
 * a range of rows inside one block (or inside the owned rows) is still one segment, but a range
 * across two blocks is not, and {@link #memory()} exists only for a store of one region.
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
  /** External blocks holding rows [blockStart[b], blockStart[b + 1]); none for most stores. */
  private MemorySegment[] blocks = NO_BLOCKS;
  private int[] blockStart = {0};
  /** Rows in external blocks; the owned segment holds rows [blockRows, size). */
  private int blockRows;
  private static final MemorySegment[] NO_BLOCKS = new MemorySegment[0];

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

  /**
   * A store whose first rows are the rows of {@code blocks}, in order, read in place (nothing is
   * copied; the caller keeps their memory alive while the store is used), followed by room for
   * {@code ownedRows} appended rows before it grows. Appends go after the blocks' rows; the blocks'
   * rows cannot be changed.
   */
  public static VectorStore over(java.util.List<VectorStore> blocks, int dim, KvDType type,
      int ownedRows) {
    VectorStore s = allocate(dim, type, ownedRows);
    MemorySegment[] segs = new MemorySegment[blocks.size()];
    int[] starts = new int[blocks.size() + 1];
    for (int b = 0; b < segs.length; b++) {
      VectorStore block = blocks.get(b);
      if (block.dim != dim || block.type != type) {
        s.close();
        throw new IllegalArgumentException("block " + b + " holds rows of " + block.dim + " x "
            + block.type + ", the store is " + dim + " x " + type);
      }
      segs[b] = block.memory();
      starts[b + 1] = Math.addExact(starts[b], block.size);
    }
    s.blocks = segs;
    s.blockStart = starts;
    s.blockRows = starts[segs.length];
    s.size = s.blockRows;
    return s;
  }

  /** Whether some rows are read in place from memory this store does not own. */
  public boolean hasExternalRows() {
    return !owned || blockRows > 0;
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
    requireOneRegion("offsetOf");
    return row * rowBytes;
  }

  /** The rows {@code [0, size)} as one segment; invalid after the next append that grows. */
  public MemorySegment memory() {
    ensureOpen();
    requireOneRegion("memory()");
    return segment.asSlice(0, size * rowBytes);
  }

  /**
   * The rows {@code [from, to)} as one segment; invalid after the next append that grows. In a
   * store {@link #over} blocks, the range must lie inside one block or inside the appended rows.
   */
  public MemorySegment rows(int from, int to) {
    checkRange(from, to);
    if (from >= blockRows) {
      return segment.asSlice((from - blockRows) * rowBytes, (to - from) * rowBytes);
    }
    int b = blockOf(from);
    if (to > blockStart[b + 1]) {
      throw new IllegalArgumentException("rows [" + from + ", " + to + ") span block " + b
          + " (rows [" + blockStart[b] + ", " + blockStart[b + 1] + ")) and what follows it: read"
          + " them block by block (rowsInOneBlock)");
    }
    return blocks[b].asSlice((from - blockStart[b]) * rowBytes, (to - from) * rowBytes);
  }

  /**
   * The longest run of rows starting at {@code from}, and ending at most at {@code to}, that is one
   * segment: {@code to} itself unless a block ends before it.
   */
  public int oneRegionEnd(int from, int to) {
    checkRange(from, to);
    if (from >= blockRows) {
      return to;
    }
    return Math.min(to, blockStart[blockOf(from) + 1]);
  }

  /** The block holding row {@code row < blockRows}. */
  private int blockOf(int row) {
    int b = java.util.Arrays.binarySearch(blockStart, 0, blocks.length + 1, row);
    b = b >= 0 ? b : -b - 2;
    while (blockStart[b + 1] == row) {
      b++; // skip empty blocks
    }
    return b;
  }

  /** The segment and byte offset of one row, for single-row reads. */
  private MemorySegment regionOf(int row) {
    if (row >= blockRows) {
      return segment;
    }
    return blocks[blockOf(row)];
  }

  private long offsetIn(int row) {
    if (row >= blockRows) {
      return (row - blockRows) * rowBytes;
    }
    return (row - blockStart[blockOf(row)]) * rowBytes;
  }

  private void requireOneRegion(String what) {
    if (blockRows > 0) {
      throw new UnsupportedOperationException(what + " of a store whose rows live in "
          + blocks.length + " external blocks and its own memory: use rows(from, to) within one"
          + " block (oneRegionEnd says where a block ends)");
    }
  }

  /**
   * Reads one value from every 64-byte cache line of rows {@code [from, to)} and returns their
   * XOR. Touching many scattered row ranges one after the other, before the arithmetic on them,
   * lets the processor fetch them all at once instead of one latency at a time.
   */
  public long touch(int from, int to) {
    checkRange(from, to);
    MemorySegment seg = segment;
    long start = from * rowBytes;
    if (from < blockRows) {
      seg = rows(from, to);
      start = 0;
    } else if (blockRows > 0) {
      start = (from - blockRows) * rowBytes;
    }
    long end = start + (to - from) * rowBytes;
    long x = 0;
    for (long at = start; at < end; at += 64) {
      x ^= seg.get(ValueLayout.JAVA_BYTE, at);
    }
    return x;
  }

  /** The raw segment, including unused capacity: for kernels that index it themselves. */
  public MemorySegment rawMemory() {
    ensureOpen();
    requireOneRegion("rawMemory()");
    return segment;
  }

  /** Appends {@code dim} floats from {@code src[off..]}. */
  public void append(float[] src, int off) {
    ensureWritable();
    Objects.checkFromIndexSize(off, dim, src.length);
    ensureCapacity(size + 1);
    long base = (size - blockRows) * rowBytes;
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
    ensureWritable();
    int n = Math.multiplyExact(rows, dim);
    Objects.checkFromIndexSize(off, n, src.length);
    for (int i = 0; i < n; i++) { // all checked before any is stored: a rejected batch leaves none
      float f = src[off + i];
      if (!Float.isFinite(f)) {
        throw new IllegalArgumentException("non-finite value " + f + " at row "
            + (size + i / dim) + ", component " + (i % dim)
            + ": keys and values must be finite numbers");
      }
    }
    appendFinite(src, off, rows);
  }

  /**
   * Appends {@code rows} rows like {@link #appendAll}, without checking that the values are finite:
   * for values that are finite by construction, such as the summaries an index computes from rows
   * it already holds or reads from a checked file. (16-bit types still round; float16 overflow is
   * still an error.) Saves a pass over every value where a short-lived process opens a context.
   */
  public void appendFinite(float[] src, int off, int rows) {
    ensureWritable();
    int n = Math.multiplyExact(rows, dim);
    Objects.checkFromIndexSize(off, n, src.length);
    ensureCapacity(size + rows);
    long at = (size - blockRows) * rowBytes;
    if (type == KvDType.FLOAT32) {
      MemorySegment.copy(src, off, segment, FLOAT_LE, at, n);
    } else {
      short[] bits = new short[n];
      for (int i = 0; i < n; i++) {
        bits[i] = type.encode16(src[off + i]);
        if (type == KvDType.FLOAT16 && Float.isInfinite(Float.float16ToFloat(bits[i]))) {
          throw new IllegalArgumentException("value " + src[off + i] + " at row "
              + (size + i / dim) + ", component " + (i % dim) + " overflows float16 (largest"
              + " 65504); store this context as BFLOAT16 or FLOAT32");
        }
      }
      MemorySegment.copy(bits, 0, segment, SHORT_LE, at, n);
    }
    size += rows;
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
    while (from < to) {
      int end = other.oneRegionEnd(from, to);
      MemorySegment.copy(other.rows(from, end), 0, segment, (size - blockRows) * rowBytes,
          (end - from) * rowBytes);
      size += end - from;
      from = end;
    }
  }

  /**
   * Appends {@code rows} rows whose bytes (this store's type, little-endian) start at {@code offset}
   * in {@code src}. The bytes are trusted to be finite values: they come from a store or a checksummed
   * file.
   */
  public void appendRaw(MemorySegment src, long offset, int rows) {
    ensureWritable();
    ensureCapacity(size + rows);
    MemorySegment.copy(src, offset, segment, (size - blockRows) * rowBytes, rows * rowBytes);
    size += rows;
  }

  /** Copies row {@code row} as floats into {@code dst[off..off+dim)}. */
  public void read(int row, float[] dst, int off) {
    checkRange(row, row + 1);
    MemorySegment seg = segment;
    long base = row * rowBytes;
    if (blockRows > 0) {
      seg = regionOf(row);
      base = offsetIn(row);
    }
    if (type == KvDType.FLOAT32) {
      MemorySegment.copy(seg, FLOAT_LE, base, dst, off, dim);
    } else {
      for (int i = 0; i < dim; i++) {
        dst[off + i] = type.decode16(seg.get(SHORT_LE, base + 2L * i));
      }
    }
  }

  /**
   * Copies rows {@code [from, to)} as floats into {@code dst} from {@code off}, back to back: the
   * same values as {@link #read} row by row, in one bulk copy per region.
   */
  public void readRows(int from, int to, float[] dst, int off) {
    checkRange(from, to);
    Objects.checkFromIndexSize(off, (to - from) * dim, dst.length);
    short[] bits = null;
    while (from < to) {
      int end = oneRegionEnd(from, to);
      MemorySegment seg = regionOf(from);
      long base = offsetIn(from);
      int n = (end - from) * dim;
      if (type == KvDType.FLOAT32) {
        MemorySegment.copy(seg, FLOAT_LE, base, dst, off, n);
      } else {
        if (bits == null || bits.length < n) {
          bits = new short[n];
        }
        MemorySegment.copy(seg, SHORT_LE, base, bits, 0, n);
        decode16(type, bits, dst, off, n);
      }
      off += n;
      from = end;
    }
  }

  private static void decode16(KvDType type, short[] bits, float[] dst, int off, int n) {
    if (type == KvDType.BFLOAT16) {
      for (int i = 0; i < n; i++) {
        dst[off + i] = Float.intBitsToFloat(bits[i] << 16);
      }
    } else {
      for (int i = 0; i < n; i++) {
        dst[off + i] = Float.float16ToFloat(bits[i]);
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
    MemorySegment seg = segment;
    long at = row * rowBytes + (long) col * type.bytes();
    if (blockRows > 0) {
      seg = regionOf(row);
      at = offsetIn(row) + (long) col * type.bytes();
    }
    return type == KvDType.FLOAT32 ? seg.get(FLOAT_LE, at) : type.decode16(seg.get(SHORT_LE, at));
  }

  /** Overwrites row {@code row} (used for sums that are updated in place). */
  public void set(int row, float[] src, int off) {
    ensureWritable();
    checkRange(row, row + 1);
    if (row < blockRows) {
      throw new UnsupportedOperationException("row " + row + " is read in place from an external"
          + " block and cannot be changed");
    }
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
    requireOneRegion("removeFirst");
    checkRange(0, rows);
    MemorySegment.copy(segment, rows * rowBytes, segment, 0, (size - rows) * rowBytes);
    size -= rows;
  }

  /** Drops the last row (undoes an append). */
  public void removeLast() {
    ensureWritable();
    checkRange(0, 1);
    if (size <= blockRows) {
      throw new UnsupportedOperationException("the last row is in an external block");
    }
    size--;
  }

  /** Drops every row; keeps the capacity. */
  public void clear() {
    ensureWritable();
    requireOneRegion("clear");
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
      blocks = NO_BLOCKS;
      blockStart = new int[] {0};
      blockRows = 0;
      size = 0;
    }
  }

  private void ensureCapacity(int rows) {
    rows -= blockRows; // rows in owned memory
    if (rows <= capacity) {
      return;
    }
    int newCap = (int) Math.min(Integer.MAX_VALUE - 8, Math.max((long) rows, capacity * 2L));
    Arena newArena = Arena.ofShared();
    MemorySegment grown = newArena.allocate(newCap * rowBytes, 64);
    MemorySegment.copy(segment, 0, grown, 0, (size - blockRows) * rowBytes);
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
    return "VectorStore[" + size + " x " + dim + " " + type
        + (blockRows > 0 ? ", " + blockRows + " in " + blocks.length + " external blocks" : "") + "]";
  }
}
