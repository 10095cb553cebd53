package org.retroinfer.model.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes small safetensors files for tests, independently of the reader. */
public final class TestCheckpoint {
  private record Tensor(String dtype, long[] shape, byte[] bytes) {}

  private final Map<String, Tensor> tensors = new LinkedHashMap<>();

  /** Adds a tensor of {@code values} stored as {@code dtype} ("F32", "F16" or "BF16"). */
  public TestCheckpoint add(String name, String dtype, long[] shape, float[] values) {
    int eb = dtype.equals("F32") ? 4 : 2;
    ByteBuffer b = ByteBuffer.allocate(values.length * eb).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      switch (dtype) {
        case "F32" -> b.putFloat(v);
        case "F16" -> b.putShort(Float.floatToFloat16(v));
        case "BF16" -> b.putShort((short) (Float.floatToRawIntBits(v) >>> 16)); // truncation
        default -> throw new IllegalArgumentException(dtype);
      }
    }
    tensors.put(name, new Tensor(dtype, shape, b.array()));
    return this;
  }

  /** Adds raw bytes under any dtype name (to test unsupported types). */
  public TestCheckpoint addRaw(String name, String dtype, long[] shape, byte[] bytes) {
    tensors.put(name, new Tensor(dtype, shape, bytes));
    return this;
  }

  /** The value a tensor element has after storage as {@code dtype}. */
  public static float stored(String dtype, float v) {
    return switch (dtype) {
      case "F32" -> v;
      case "F16" -> Float.float16ToFloat(Float.floatToFloat16(v));
      case "BF16" -> Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xFFFF0000);
      default -> throw new IllegalArgumentException(dtype);
    };
  }

  public byte[] bytes() {
    StringBuilder json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
    long offset = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      Tensor t = e.getValue();
      json.append(",\"").append(e.getKey()).append("\":{\"dtype\":\"").append(t.dtype)
          .append("\",\"shape\":").append(java.util.Arrays.toString(t.shape).replace(" ", ""))
          .append(",\"data_offsets\":[").append(offset).append(',').append(offset + t.bytes.length)
          .append("]}");
      offset += t.bytes.length;
    }
    json.append('}');
    byte[] header = json.toString().getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + header.length + (int) offset).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(header.length).put(header);
    for (Tensor t : tensors.values()) {
      b.put(t.bytes);
    }
    return b.array();
  }

  public Path write(Path file) throws IOException {
    Files.write(file, bytes());
    return file;
  }
}
