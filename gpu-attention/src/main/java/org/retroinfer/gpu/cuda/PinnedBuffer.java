package org.retroinfer.gpu.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Page-locked host memory mapped into the GPU's address space: native memory from an {@link Arena},
 * registered with {@code cuMemHostRegister} (DEVICEMAP | PORTABLE). The CPU sees it as a {@link
 * MemorySegment}, kernels read it through {@link #devicePtr()} over PCIe without a staging copy,
 * and async copies from it overlap kernels. Any size: unlike {@code cuMemHostAlloc} through JCuda,
 * which wraps the memory in a ByteBuffer and so stops at 2 GiB.
 */
public final class PinnedBuffer implements AutoCloseable {
  private static final long PAGE = 4096;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment segment;
  private final Pointer host;
  private final CUdeviceptr device = new CUdeviceptr();
  private final long bytes;
  private boolean closed;

  public PinnedBuffer(long bytes) {
    this.bytes = (Math.max(16, bytes) + PAGE - 1) / PAGE * PAGE;
    this.segment = arena.allocate(this.bytes, PAGE);
    this.host = new AddressPointer(segment.address());
    try {
      Cuda.check(JCudaDriver.cuMemHostRegister(host, this.bytes,
          JCudaDriver.CU_MEMHOSTREGISTER_DEVICEMAP | JCudaDriver.CU_MEMHOSTREGISTER_PORTABLE),
          "cuMemHostRegister(" + this.bytes + " bytes)");
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
    try {
      Cuda.check(JCudaDriver.cuMemHostGetDevicePointer(device, host, 0),
          "cuMemHostGetDevicePointer");
    } catch (RuntimeException e) {
      JCudaDriver.cuMemHostUnregister(host);
      arena.close();
      throw e;
    }
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
      try {
        Cuda.check(JCudaDriver.cuMemHostUnregister(host), "cuMemHostUnregister");
      } finally {
        arena.close();
      }
    }
  }

  /** A JCuda pointer to a native address (JCuda's constructor for that is protected). */
  private static final class AddressPointer extends Pointer {
    AddressPointer(long address) {
      super(address);
    }
  }
}
