package org.retroinfer.gpu.cuda;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * GPU global memory of a fixed size ({@code cuMemAlloc}, 256-byte aligned), freed on close.
 * Copies are synchronous unless named async; every call's return code is checked.
 */
public final class DeviceBuffer implements AutoCloseable {
  /** A NaN bit pattern: outputs are poisoned with it before kernels write them. */
  public static final int POISON = 0x7FC0DEAD;
  private static final long CHUNK = 1L << 30;
  private final CUdeviceptr ptr = new CUdeviceptr();
  private final long bytes;
  private boolean closed;

  public DeviceBuffer(long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("cannot allocate " + bytes + " bytes");
    }
    this.bytes = Math.max(16, bytes);
    Cuda.check(JCudaDriver.cuMemAlloc(ptr, this.bytes), "cuMemAlloc(" + this.bytes + " bytes)");
  }

  public long bytes() {
    return bytes;
  }

  public CUdeviceptr ptr() {
    ensureOpen();
    return ptr;
  }

  /** The address {@code offset} bytes in. */
  public CUdeviceptr at(long offset) {
    ensureOpen();
    return ptr.withByteOffset(offset);
  }

  public void upload(MemorySegment src) {
    upload(src, 0, src.byteSize());
  }

  /** Copies {@code n} bytes of {@code src} (off-heap) to offset {@code to}. */
  public void upload(MemorySegment src, long to, long n) {
    checkRange(to, n);
    for (long done = 0; done < n; done += CHUNK) {
      long len = Math.min(CHUNK, n - done);
      ByteBuffer bb = src.asSlice(done, len).asByteBuffer();
      Cuda.check(JCudaDriver.cuMemcpyHtoD(ptr.withByteOffset(to + done), Pointer.to(bb), len),
          "cuMemcpyHtoD(" + len + " bytes)");
    }
  }

  public void upload(int[] a) {
    checkRange(0, 4L * a.length);
    Cuda.check(JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(a), 4L * a.length), "cuMemcpyHtoD(int[])");
  }

  public void upload(long[] a) {
    checkRange(0, 8L * a.length);
    Cuda.check(JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(a), 8L * a.length), "cuMemcpyHtoD(long[])");
  }

  public void upload(float[] a) {
    checkRange(0, 4L * a.length);
    Cuda.check(JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(a), 4L * a.length), "cuMemcpyHtoD(float[])");
  }

  public void download(float[] a) {
    checkRange(0, 4L * a.length);
    Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(a), ptr, 4L * a.length), "cuMemcpyDtoH(float[])");
  }

  public void download(int[] a) {
    checkRange(0, 4L * a.length);
    Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(a), ptr, 4L * a.length), "cuMemcpyDtoH(int[])");
  }

  /** Copies {@code n} bytes from offset {@code from} into {@code dst} (off-heap). */
  public void download(MemorySegment dst, long from, long n) {
    checkRange(from, n);
    for (long done = 0; done < n; done += CHUNK) {
      long len = Math.min(CHUNK, n - done);
      ByteBuffer bb = dst.asSlice(done, len).asByteBuffer();
      Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(bb), ptr.withByteOffset(from + done), len),
          "cuMemcpyDtoH(" + len + " bytes)");
    }
  }

  /** Fills the whole buffer with the NaN pattern {@link #POISON}. */
  public void poison() {
    Cuda.check(JCudaDriver.cuMemsetD32(ptr, POISON, bytes / 4), "cuMemsetD32(poison)");
  }

  private void checkRange(long off, long n) {
    ensureOpen();
    if (off < 0 || n < 0 || off + n > bytes) {
      throw new IndexOutOfBoundsException("copy of " + n + " bytes at " + off + " outside a device"
          + " buffer of " + bytes + " bytes");
    }
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("device buffer is freed");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      Cuda.check(JCudaDriver.cuMemFree(ptr), "cuMemFree");
    }
  }
}
