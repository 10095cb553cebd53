package org.retroinfer.wave.kv;

/**
 * The element type of stored keys and values.
 *
 * <p>{@link #BFLOAT16} is the default for large contexts: half the bytes of {@link #FLOAT32},
 * the same exponent range (no overflow), and it widens to float32 with a 16-bit shift, which the
 * Vector API turns into one SIMD instruction. {@link #FLOAT16} keeps three more mantissa bits but
 * overflows above 65504; appending such a value is rejected.
 */
public enum KvDType {
  FLOAT32(4),
  FLOAT16(2),
  BFLOAT16(2);

  private final int bytes;

  KvDType(int bytes) {
    this.bytes = bytes;
  }

  /** Bytes per element. */
  public int bytes() {
    return bytes;
  }

  /** The stored 16-bit pattern of {@code f}, round to nearest even. Only for 16-bit types. */
  public short encode16(float f) {
    return switch (this) {
      case BFLOAT16 -> floatToBfloat16(f);
      case FLOAT16 -> Float.floatToFloat16(f);
      case FLOAT32 -> throw new IllegalStateException("FLOAT32 is not a 16-bit type");
    };
  }

  /** The float value of a stored 16-bit pattern. Only for 16-bit types. */
  public float decode16(short bits) {
    return switch (this) {
      case BFLOAT16 -> Float.intBitsToFloat(bits << 16);
      case FLOAT16 -> Float.float16ToFloat(bits);
      case FLOAT32 -> throw new IllegalStateException("FLOAT32 is not a 16-bit type");
    };
  }

  /** {@code f} rounded to this type and widened back: what a store of this type returns. */
  public float round(float f) {
    return this == FLOAT32 ? f : decode16(encode16(f));
  }

  static short floatToBfloat16(float f) {
    int bits = Float.floatToRawIntBits(f);
    // round to nearest, ties to even; inputs are finite (checked on append)
    bits += 0x7FFF + ((bits >>> 16) & 1);
    return (short) (bits >>> 16);
  }
}
