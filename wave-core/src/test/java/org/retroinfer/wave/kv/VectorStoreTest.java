package org.retroinfer.wave.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class VectorStoreTest {

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void appendsGrowsAndReadsBackRoundedValues(KvDType type) {
    Random rnd = new Random(type.ordinal());
    int d = 24;
    int n = 5000;
    float[] data = new float[n * d];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) (rnd.nextGaussian() * 10);
    }
    try (VectorStore s = VectorStore.allocate(d, type, 3)) {
      s.appendAll(data, 0, n);
      assertEquals(n, s.size());
      assertEquals((long) n * d * type.bytes(), s.memory().byteSize());
      float[] row = new float[d];
      for (int r = 0; r < n; r += 7) {
        s.read(r, row, 0);
        for (int t = 0; t < d; t++) {
          float x = data[r * d + t];
          assertEquals(type.round(x), row[t], 0f);
          assertEquals(x, row[t], Math.abs(x) * relativePrecision(type));
          assertEquals(row[t], s.get(r, t), 0f);
        }
      }
      s.removeFirst(10);
      assertEquals(n - 10, s.size());
      assertArrayEquals(rowOf(data, 10, d, type), s.row(0));
    }
  }

  static float relativePrecision(KvDType type) {
    return switch (type) {
      case FLOAT32 -> 0f;
      case FLOAT16 -> 1f / 2048;
      case BFLOAT16 -> 1f / 256;
    };
  }

  static float[] rowOf(float[] data, int r, int d, KvDType type) {
    float[] x = new float[d];
    for (int t = 0; t < d; t++) {
      x[t] = type.round(data[r * d + t]);
    }
    return x;
  }

  @Test
  void bfloat16RoundsToNearestEven() {
    KvDType b = KvDType.BFLOAT16;
    assertEquals(1.0f, b.round(1.0f));
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1)
    assertEquals(1.0f, b.round(1.0f + 0x1p-8f));
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6
    assertEquals(1.0f + 0x1p-6f, b.round(1.0f + 3 * 0x1p-8f));
    assertEquals(1.0f + 0x1p-7f, b.round(1.0f + 0x1p-7f + 0x1p-10f));
    assertEquals(-2.5f, b.round(-2.5f));
    assertEquals((short) 0x3F80, b.encode16(1.0f));
  }

  @Test
  void rejectsNonFiniteAndOverflowingValuesAndKeepsTheStoreUsable() {
    try (VectorStore s = VectorStore.allocate(4, KvDType.FLOAT16, 2)) {
      s.append(new float[] {1, 2, 3, 4}, 0);
      IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
          () -> s.append(new float[] {1, Float.NaN, 3, 4}, 0));
      assertTrue(nan.getMessage().contains("row 1, component 1"), nan.getMessage());
      IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
          () -> s.append(new float[] {1, 2, 70000f, 4}, 0));
      assertTrue(big.getMessage().contains("overflows float16"), big.getMessage());
      assertEquals(1, s.size());
      s.append(new float[] {5, 6, 7, 8}, 0);
      assertArrayEquals(new float[] {5, 6, 7, 8}, s.row(1));
    }
    try (VectorStore s = VectorStore.allocate(2, KvDType.BFLOAT16, 2)) {
      assertThrows(IllegalArgumentException.class,
          () -> s.append(new float[] {Float.POSITIVE_INFINITY, 0}, 0));
      s.append(new float[] {70000f, -1e30f}, 0); // bfloat16 has float32's range
      assertEquals(1, s.size());
    }
    assertThrows(IllegalArgumentException.class, () -> VectorStore.allocate(0, KvDType.FLOAT32, 1));
  }

  @Test
  void wrapsExternalMemoryReadOnly() {
    try (Arena arena = Arena.ofConfined(); VectorStore src = VectorStore.allocate(3, KvDType.BFLOAT16, 2)) {
      src.append(new float[] {1, 2, 3}, 0);
      src.append(new float[] {4, 5, 6}, 0);
      MemorySegment copy = arena.allocate(src.memory().byteSize());
      copy.copyFrom(src.memory());
      VectorStore view = VectorStore.wrap(copy, 3, KvDType.BFLOAT16, 2);
      assertArrayEquals(new float[] {4, 5, 6}, view.row(1));
      assertThrows(UnsupportedOperationException.class, () -> view.append(new float[3], 0));
      assertThrows(IllegalArgumentException.class,
          () -> VectorStore.wrap(copy, 3, KvDType.BFLOAT16, 3));
      VectorStore dst = VectorStore.allocate(3, KvDType.BFLOAT16, 1);
      dst.appendFrom(view, 0, 2);
      assertArrayEquals(new float[] {1, 2, 3}, dst.row(0));
      assertThrows(IllegalArgumentException.class,
          () -> VectorStore.allocate(3, KvDType.FLOAT32, 1).appendFrom(view, 0, 1));
      dst.close();
    }
  }

  @Test
  void outOfRangeReadsFail() {
    VectorStore s = VectorStore.allocate(2, KvDType.FLOAT32, 1);
    s.append(new float[] {1, 2}, 0);
    assertThrows(IndexOutOfBoundsException.class, () -> s.row(1));
    assertThrows(IndexOutOfBoundsException.class, () -> s.get(0, 2));
    s.close();
    assertThrows(IllegalStateException.class, () -> s.row(0));
  }

  /** touch reads one byte every 64 bytes from the range's first byte, and checks the range. */
  @Test
  void touchXorsOneBytePerCacheLine() {
    try (VectorStore s = VectorStore.allocate(24, KvDType.FLOAT32, 4)) {
      float[] row = new float[24];
      for (int r = 0; r < 6; r++) {
        java.util.Arrays.fill(row, Float.intBitsToFloat(r + 1)); // every float's low byte: r + 1
        s.append(row, 0);
      }
      // 96-byte rows: rows [0, 4) are read at bytes 0, 64 (row 0), 128 (row 1), 192, 256 (row 2)
      // and 320 (row 3)
      assertEquals(1 ^ 1 ^ 2 ^ 3 ^ 3 ^ 4, s.touch(0, 4));
      // rows [1, 3): bytes 96, 160 (row 1), 224 (row 2)
      assertEquals(2 ^ 2 ^ 3, s.touch(1, 3));
      assertEquals(0, s.touch(2, 2));
      assertThrows(IndexOutOfBoundsException.class, () -> s.touch(5, 7));
    }
  }

  @org.junit.jupiter.api.Test
  void aStoreOverBlocksReadsThemInPlaceAndAppendsAfterThem() {
    int d = 16;
    KvDType type = KvDType.BFLOAT16;
    Random rnd = new Random(5);
    float[] data = new float[300 * d];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) rnd.nextGaussian();
    }
    try (VectorStore a = VectorStore.allocate(d, type, 100);
        VectorStore b = VectorStore.allocate(d, type, 120);
        VectorStore all = VectorStore.allocate(d, type, 300)) {
      a.appendAll(data, 0, 100);
      b.appendAll(data, 100 * d, 120);
      all.appendAll(data, 0, 300);
      try (VectorStore s = VectorStore.over(java.util.List.of(a, b), d, type, 8)) {
        assertTrue(s.hasExternalRows());
        assertEquals(220, s.size());
        s.appendAll(data, 220 * d, 80); // grows past its 8 owned rows
        assertEquals(300, s.size());
        float[] row = new float[d];
        for (int r = 0; r < 300; r++) {
          s.read(r, row, 0);
          assertArrayEquals(all.row(r), row, "row " + r);
          assertEquals(all.get(r, 3), s.get(r, 3));
        }
        // the blocks are read in place: the same memory, not a copy
        assertEquals(a.rows(10, 20).address(), s.rows(10, 20).address());
        assertEquals(-1L, s.rows(100, 220).mismatch(all.rows(100, 220)));
        assertEquals(-1L, s.rows(230, 300).mismatch(all.rows(230, 300)));
        assertEquals(100, s.oneRegionEnd(40, 300));
        assertEquals(220, s.oneRegionEnd(100, 300));
        assertEquals(300, s.oneRegionEnd(220, 300));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> s.rows(90, 110));
        assertTrue(e.getMessage().contains("span block 0"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, s::memory);
        assertThrows(UnsupportedOperationException.class, () -> s.set(5, data, 0));
        // copying out goes block by block
        try (VectorStore copy = VectorStore.allocate(d, type, 1)) {
          copy.appendFrom(s, 50, 260);
          assertEquals(-1L, copy.memory().mismatch(all.rows(50, 260)));
        }
        s.removeLast();
        assertEquals(299, s.size());
      }
    }
  }

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void readRowsEqualsReadingRowByRowAcrossBlocks(KvDType type) {
    int d = 12;
    Random rnd = new Random(40 + type.ordinal());
    float[] data = new float[90 * d];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) rnd.nextGaussian();
    }
    try (VectorStore a = VectorStore.allocate(d, type, 30);
        VectorStore b = VectorStore.allocate(d, type, 40)) {
      a.appendAll(data, 0, 30);
      b.appendAll(data, 30 * d, 40);
      try (VectorStore s = VectorStore.over(java.util.List.of(a, b), d, type, 4)) {
        s.appendAll(data, 70 * d, 20);
        for (int[] range : new int[][] {{0, 90}, {25, 75}, {31, 32}, {70, 90}, {5, 5}}) {
          int n = range[1] - range[0];
          float[] bulk = new float[n * d + 3];
          s.readRows(range[0], range[1], bulk, 3);
          float[] row = new float[d];
          for (int r = 0; r < n; r++) {
            s.read(range[0] + r, row, 0);
            for (int t = 0; t < d; t++) {
              assertEquals(Float.floatToIntBits(row[t]), Float.floatToIntBits(bulk[3 + r * d + t]),
                  "rows " + range[0] + ".." + range[1] + ", row " + r + ", component " + t);
            }
          }
        }
        assertThrows(IndexOutOfBoundsException.class, () -> s.readRows(80, 91, new float[11 * d], 0));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void appendAllRejectsANonFiniteBatchWhole(KvDType type) {
    try (VectorStore s = VectorStore.allocate(2, type, 1)) {
      s.appendAll(new float[] {1, 2, 3, 4}, 0, 2);
      float[] bad = {5, 6, 7, Float.NaN};
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> s.appendAll(bad, 0, 2));
      assertTrue(e.getMessage().contains("row 3, component 1"), e.getMessage());
      assertEquals(2, s.size(), "nothing of the rejected batch is stored");
      assertArrayEquals(new float[] {3, 4}, s.row(1));
      s.appendAll(new float[] {9, 10}, 0, 1);
      assertArrayEquals(new float[] {9, 10}, s.row(s.size() - 1));
    }
  }

  @ParameterizedTest
  @EnumSource(KvDType.class)
  void appendFiniteStoresWhatAppendAllStores(KvDType type) {
    Random rnd = new Random(60 + type.ordinal());
    float[] data = new float[50 * 8];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) (rnd.nextGaussian() * 100);
    }
    try (VectorStore a = VectorStore.allocate(8, type, 1);
        VectorStore b = VectorStore.allocate(8, type, 1)) {
      a.appendAll(data, 8, 49);
      b.appendFinite(data, 8, 49);
      assertEquals(-1L, a.memory().mismatch(b.memory()));
      if (type == KvDType.FLOAT16) {
        float[] big = new float[8];
        big[5] = 1e6f;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> b.appendFinite(big, 0, 1));
        assertTrue(e.getMessage().contains("overflows float16"), e.getMessage());
        assertEquals(49, b.size());
      }
    }
  }
}
