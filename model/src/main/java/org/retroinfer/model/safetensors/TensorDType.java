package org.retroinfer.model.safetensors;

import java.util.Arrays;

/** The element types of safetensors tensors that this runtime reads: float32, float16, bfloat16. */
public enum TensorDType {
  F32(4),
  F16(2),
  BF16(2);

  private final int bytes;

  TensorDType(int bytes) {
    this.bytes = bytes;
  }

  /** Bytes per element. */
  public int bytes() {
    return bytes;
  }

  /**
   * The type named {@code name} in a safetensors header ("F32", "F16", "BF16").
   *
   * @throws UnsupportedTensorException for any other type (I8, F64, F8_E4M3, ...), naming the tensor
   */
  public static TensorDType parse(String name, String tensor) {
    for (TensorDType t : values()) {
      if (t.name().equals(name)) {
        return t;
      }
    }
    throw new UnsupportedTensorException("tensor '" + tensor + "' has dtype " + name
        + ", which this runtime does not read; expected one of " + Arrays.toString(values())
        + " (convert the checkpoint, e.g. with torch: model.half() or model.float(), then save_file)");
  }
}
