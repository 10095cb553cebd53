package org.retroinfer.gpu.cuda;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Checking of CUDA driver return codes: every driver call of this module goes through
 * {@link #check}, so no error code is ever dropped (JCuda's own exception mode is left off so that
 * expected codes such as {@code CUDA_ERROR_NOT_READY} from an event query can be told apart).
 */
public final class Cuda {
  private Cuda() {}

  /** Throws a {@link CudaException} naming {@code call} unless {@code rc} is CUDA_SUCCESS. */
  public static void check(int rc, String call) {
    if (rc != CUresult.CUDA_SUCCESS) {
      throw new CudaException(call + " failed with " + name(rc) + " (" + rc + ")" + hint(rc), rc);
    }
  }

  static String name(int rc) {
    try {
      String[] n = new String[1];
      if (JCudaDriver.cuGetErrorName(rc, n) == CUresult.CUDA_SUCCESS && n[0] != null) {
        return n[0];
      }
    } catch (Throwable ignored) {
      // fall through to JCuda's table
    }
    return CUresult.stringFor(rc);
  }

  private static String hint(int rc) {
    return switch (rc) {
      case CUresult.CUDA_ERROR_OUT_OF_MEMORY ->
          ": the GPU has too little free memory; use a smaller batch or context, or offload K/V";
      case CUresult.CUDA_ERROR_INVALID_PTX, CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION ->
          ": the driver cannot JIT the shipped PTX (compute_80, PTX ISA of CUDA 13); update the"
              + " driver to R580 or newer";
      case CUresult.CUDA_ERROR_NO_DEVICE -> ": no CUDA device is visible to this process";
      case CUresult.CUDA_ERROR_ILLEGAL_ADDRESS ->
          ": a kernel read or wrote outside its buffers; the context is unusable, restart the process";
      default -> "";
    };
  }
}
