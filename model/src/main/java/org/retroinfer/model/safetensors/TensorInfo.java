package org.retroinfer.model.safetensors;

import java.util.Arrays;

/**
 * One tensor of a safetensors file, as its header describes it: name, element type, shape, and the
 * byte range {@code [begin, end)} of its data, relative to the start of the data section.
 */
public record TensorInfo(String name, TensorDType dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    shape = shape.clone();
  }

  /** Elements: the product of the shape (1 for a scalar). */
  public long elements() {
    long n = 1;
    for (long s : shape) {
      n = Math.multiplyExact(n, s);
    }
    return n;
  }

  /** Bytes of data. */
  public long byteSize() {
    return end - begin;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** The shape as {@code [384, 1024]}. */
  public String shapeString() {
    return Arrays.toString(shape);
  }

  @Override
  public String toString() {
    return name + " " + dtype + shapeString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype
        && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }
}
