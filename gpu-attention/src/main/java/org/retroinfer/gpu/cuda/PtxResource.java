package org.retroinfer.gpu.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * The kernels' PTX, read from the class path: built by nvcc during the Maven build where nvcc is
 * installed, else the copy checked in under {@code src/main/resources} (kept fresh by a test).
 */
public final class PtxResource {
  /** Class-path name of the PTX. */
  public static final String NAME = "/org/retroinfer/gpu/retroinfer_kernels.ptx";

  private PtxResource() {}

  /** The PTX text as bytes. */
  public static byte[] bytes() {
    try (InputStream in = PtxResource.class.getResourceAsStream(NAME)) {
      if (in == null) {
        throw new IllegalStateException("PTX resource " + NAME + " is missing from the class path;"
            + " rebuild gpu-attention (mvn -pl gpu-attention package)");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new IllegalStateException("cannot read PTX resource " + NAME + ": " + e.getMessage(), e);
    }
  }

  /** The PTX with a terminating NUL, as cuModuleLoadData wants it. */
  public static byte[] nulTerminated() {
    byte[] b = bytes();
    return Arrays.copyOf(b, b.length + 1);
  }
}
