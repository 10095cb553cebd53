package org.retroinfer.gpu.cuda;

import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Whether this process can use a CUDA GPU, and if not why: probed once (loading JCuda's natives,
 * which need the driver library {@code libcuda.so.1}, then {@code cuInit} and a device count),
 * never throwing.
 *
 * @param available true when device 0 can be used
 * @param reason why not, in words (empty when available)
 * @param device device 0's name
 * @param multiprocessors its streaming multiprocessors
 * @param memoryBytes its global memory
 */
public record CudaAvailability(boolean available, String reason, String device, int multiprocessors,
    long memoryBytes) {

  private static volatile CudaAvailability probed;

  /** The probe's result, computed on first call. */
  public static CudaAvailability get() {
    CudaAvailability p = probed;
    if (p == null) {
      synchronized (CudaAvailability.class) {
        if (probed == null) {
          probed = probe();
        }
        p = probed;
      }
    }
    return p;
  }

  private static CudaAvailability probe() {
    if (Boolean.getBoolean("retroinfer.gpu.disable")) {
      return none("disabled by -Dretroinfer.gpu.disable=true");
    }
    try {
      int rc = JCudaDriver.cuInit(0);
      if (rc != CUresult.CUDA_SUCCESS) {
        return none("cuInit failed with " + Cuda.name(rc) + ": no usable CUDA driver or device");
      }
      int[] count = new int[1];
      rc = JCudaDriver.cuDeviceGetCount(count);
      if (rc != CUresult.CUDA_SUCCESS || count[0] == 0) {
        return none("the CUDA driver reports no device");
      }
      CUdevice dev = new CUdevice();
      Cuda.check(JCudaDriver.cuDeviceGet(dev, 0), "cuDeviceGet(0)");
      byte[] name = new byte[256];
      Cuda.check(JCudaDriver.cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
      int[] sm = new int[1];
      Cuda.check(JCudaDriver.cuDeviceGetAttribute(sm,
          CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev), "cuDeviceGetAttribute(SMs)");
      int[] major = new int[1];
      Cuda.check(JCudaDriver.cuDeviceGetAttribute(major,
          CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute(CC)");
      long[] mem = new long[1];
      Cuda.check(JCudaDriver.cuDeviceTotalMem(mem, dev), "cuDeviceTotalMem");
      String n = new String(name, java.nio.charset.StandardCharsets.US_ASCII).trim().replace("\0", "");
      if (major[0] < 8) {
        return none("device 0 (" + n + ") has compute capability " + major[0]
            + ".x; the kernels need 8.0 or newer (bfloat16)");
      }
      return new CudaAvailability(true, "", n, sm[0], mem[0]);
    } catch (Throwable e) {
      // UnsatisfiedLinkError when libcuda.so.1 is absent; NoClassDefFoundError on a second try
      return none("the CUDA driver could not be loaded (" + e.getClass().getSimpleName() + ": "
          + firstLine(e.getMessage()) + "); install an NVIDIA driver (libcuda.so.1) to use the GPU");
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "no message";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  private static CudaAvailability none(String reason) {
    return new CudaAvailability(false, reason, "", 0, 0);
  }
}
