package org.retroinfer.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.tensor.WeightMatrix;

class SafeTensorsTest {
  @TempDir Path dir;
  final Random random = new Random();

  float[] randomValues(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) random.nextGaussian();
    }
    return v;
  }

  @Test
  void readsEveryDtypeInPlace() throws IOException {
    float[] a = randomValues(6 * 5);
    float[] b = randomValues(4 * 3);
    float[] c = randomValues(7);
    Path f = new TestCheckpoint().add("a", "F32", new long[] {6, 5}, a)
        .add("b", "F16", new long[] {4, 3}, b).add("c", "BF16", new long[] {7}, c)
        .write(dir.resolve("m.safetensors"));
    try (SafeTensors st = SafeTensors.open(f)) {
      assertEquals(java.util.Set.of("a", "b", "c"), st.names());
      assertEquals("pt", st.metadata().get("format"));
      check(st, "a", "F32", a, 6, 5);
      check(st, "b", "F16", b, 4, 3);
      check(st, "c", "BF16", c, 1, 7);
    }
  }

  private static void check(SafeTensors st, String name, String dtype, float[] values, int rows,
      int cols) {
    TensorInfo info = st.info(name);
    assertEquals(TensorDType.valueOf(dtype), info.dtype());
    assertEquals((long) rows * cols, info.elements());
    WeightMatrix m = new WeightMatrix(name, info.dtype(), st.data(info), rows, cols);
    for (int r = 0; r < rows; r++) {
      for (int col = 0; col < cols; col++) {
        assertEquals(TestCheckpoint.stored(dtype, values[r * cols + col]), m.get(r, col), 0f);
      }
    }
  }

  @Test
  void missingTensorNamesSimilarOnes() throws IOException {
    Path f = new TestCheckpoint()
        .add("model.layers.0.self_attn.q_proj.weight", "F32", new long[] {2, 2}, randomValues(4))
        .write(dir.resolve("m.safetensors"));
    try (SafeTensors st = SafeTensors.open(f)) {
      CheckpointException e = assertThrows(CheckpointException.class,
          () -> st.info("model.layers.1.self_attn.q_proj.weight"));
      assertTrue(e.getMessage().contains("no tensor 'model.layers.1.self_attn.q_proj.weight'"),
          e.getMessage());
      assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj.weight"), e.getMessage());
    }
  }

  @Test
  void wrongShapeSaysWhatWasExpected() throws IOException {
    Path f = new TestCheckpoint().add("w", "F16", new long[] {3, 4}, randomValues(12))
        .write(dir.resolve("m.safetensors"));
    try (SafeTensors st = SafeTensors.open(f)) {
      CheckpointException e = assertThrows(CheckpointException.class,
          () -> st.require("w", "config.json: hidden_size 4", 4, 4));
      assertTrue(e.getMessage().contains("[3, 4]") && e.getMessage().contains("[4, 4]")
          && e.getMessage().contains("hidden_size 4"), e.getMessage());
      assertEquals(3, st.require("w", "ok", 3, 4).shape()[0]);
    }
  }

  @Test
  void unsupportedDtypeIsRejectedWhenAskedFor() throws IOException {
    Path f = new TestCheckpoint().add("ok", "F32", new long[] {2}, randomValues(2))
        .addRaw("q", "I8", new long[] {4}, new byte[] {1, 2, 3, 4})
        .write(dir.resolve("m.safetensors"));
    try (SafeTensors st = SafeTensors.open(f)) {
      st.info("ok");
      UnsupportedTensorException e = assertThrows(UnsupportedTensorException.class,
          () -> st.info("q"));
      assertTrue(e.getMessage().contains("dtype I8") && e.getMessage().contains("F16"),
          e.getMessage());
    }
  }

  @Test
  void truncatedFileFailsAtOpen() throws IOException {
    byte[] full = new TestCheckpoint().add("w", "F32", new long[] {8, 8}, randomValues(64)).bytes();
    Path f = dir.resolve("cut.safetensors");
    Files.write(f, Arrays.copyOf(full, full.length - 10));
    CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(f));
    assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("truncated"),
        e.getMessage());
    Files.write(f, Arrays.copyOf(full, 5));
    assertThrows(CheckpointException.class, () -> SafeTensors.open(f));
  }

  @Test
  void corruptHeadersAreRejected() throws IOException {
    Path f = dir.resolve("bad.safetensors");
    Files.write(f, header(Long.MAX_VALUE, new byte[16]));
    assertTrue(assertThrows(CheckpointException.class, () -> SafeTensors.open(f)).getMessage()
        .contains("header length"));
    Files.write(f, header(5, "{nope".getBytes()));
    assertTrue(assertThrows(CheckpointException.class, () -> SafeTensors.open(f)).getMessage()
        .contains("not valid JSON"));
    byte[] json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}".getBytes();
    Files.write(f, concat(header(json.length, json), new byte[16]));
    assertTrue(assertThrows(CheckpointException.class, () -> SafeTensors.open(f)).getMessage()
        .contains("needs 16 bytes"));
    byte[] noShape = "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}".getBytes();
    Files.write(f, concat(header(noShape.length, noShape), new byte[4]));
    assertTrue(assertThrows(CheckpointException.class, () -> SafeTensors.open(f)).getMessage()
        .contains("lacks dtype, shape or data_offsets"));
  }

  private static byte[] header(long length, byte[] rest) {
    return concat(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(length).array(), rest);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
