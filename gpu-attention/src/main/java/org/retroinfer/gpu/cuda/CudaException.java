package org.retroinfer.gpu.cuda;

/** A CUDA driver call returned an error: says which call, the driver's error name and code. */
public final class CudaException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int code;

  public CudaException(String message, int code) {
    super(message);
    this.code = code;
  }

  /** The driver's CUresult. */
  public int code() {
    return code;
  }
}
