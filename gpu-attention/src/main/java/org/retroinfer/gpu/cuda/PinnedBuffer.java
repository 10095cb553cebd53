package org.retroinfer.gpu.cuda;

import java.lang.foreign.MemorySegment;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Page-locked host memory mapped into the GPU's address space ({@code cuMemHostAlloc} with
 * DEVICEMAP | PORTABLE): the CPU sees it as a {@link MemorySegment}, kernels read it through
 * {@link #devicePtr()} over PCIe without a staging copy, and async copies from it overlap kernels.
 */
public final class PinnedBuffer implements AutoCloseable {
  private final Pointer host = new Pointer();
  private final CUdeviceptr device = new CUdeviceptr();
  private final MemorySegment segment;
  private final long bytes;
  private boolean closed;

  public PinnedBuffer(long bytes) {
    this.bytes = Math.max(16, bytes);
    Cuda.check(JCudaDriver.cuMemHostAlloc(host, this.bytes,
        JCudaDriver.CU_MEMHOSTALLOC_DEVICEMAP | JCudaDriver.CU_MEMHOSTALLOC_PORTABLE),
        "cuMemHostAlloc(" + this.bytes + " bytes)");
    Cuda.check(JCudaDriver.cuMemHostGetDevicePointer(device, host, 0), "cuMemHostGetDevicePointer");
    long address = MemorySegment.ofBuffer(host.getByteBuffer(0, Math.min(this.bytes, 1 << 20))).address();
    this.segment = MemorySegment.ofAddress(address).reinterpret(this.bytes);
  }

  public long bytes() {
    return bytes;
  }

  /** The host view. Valid until close. */
  public MemorySegment segment() {
    ensureOpen();
    return segment;
  }

  /** The host pointer, for async copies. */
  public Pointer hostPtr(long offset) {
    ensureOpen();
    return host.withByteOffset(offset);
  }

  /** The device's address of this memory. */
  public CUdeviceptr devicePtr() {
    ensureOpen();
    return device;
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("pinned buffer is freed");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      Cuda.check(JCudaDriver.cuMemFreeHost(host), "cuMemFreeHost");
    }
  }
}
