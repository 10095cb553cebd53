package org.retroinfer.gpu.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The PTX the module ships: it defines every kernel the Java side launches, targets a PTX that the
 * H100/H200 driver JIT-compiles, and (where nvcc is installed) the checked-in copy equals a fresh
 * compile of the CUDA source, so that users without nvcc never get stale kernels.
 */
class PtxFreshnessTest {
  /** The module's folder: the working directory under Maven, a system property in the device check. */
  private static final Path MODULE = Path.of(System.getProperty("retroinfer.module.dir", "."));
  private static final Path CHECKED_IN =
      MODULE.resolve("src/main/resources/org/retroinfer/gpu/retroinfer_kernels.ptx");

  @Test
  void ptxDefinesEveryLaunchedKernelForCompute80() {
    String ptx = new String(PtxResource.bytes(), StandardCharsets.US_ASCII);
    assertTrue(ptx.contains(".target sm_80"), "PTX must target compute_80 (JIT-compiled on sm_90)");
    for (String name : KernelNames.all()) {
      assertTrue(ptx.contains(".entry " + name + "("), "PTX lacks kernel " + name);
    }
    byte[] nul = PtxResource.nulTerminated();
    assertEquals(0, nul[nul.length - 1], "cuModuleLoadData needs a NUL-terminated image");
  }

  @Test
  void checkedInPtxEqualsAFreshCompile() throws Exception {
    String nvcc = findNvcc();
    Assumptions.assumeTrue(nvcc != null, "nvcc is not installed here: cannot check the checked-in"
        + " PTX against the CUDA source (the build then uses the checked-in PTX)");
    Assumptions.assumeTrue(Files.exists(MODULE.resolve("scripts/build-ptx.sh")),
        "the module's sources are not at " + MODULE.toAbsolutePath());
    Path fresh = Files.createTempFile("retroinfer-kernels", ".ptx");
    try {
      ProcessBuilder pb = new ProcessBuilder("bash", MODULE.resolve("scripts/build-ptx.sh").toString(),
          fresh.toString())
          .redirectErrorStream(true);
      pb.environment().put("NVCC", nvcc);
      Process p = pb.start();
      String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(p.waitFor(5, TimeUnit.MINUTES), "nvcc did not finish in 5 minutes");
      assertEquals(0, p.exitValue(), "scripts/build-ptx.sh failed:\n" + log);
      assertArrayEquals(Files.readAllBytes(fresh), Files.readAllBytes(CHECKED_IN),
          "the checked-in PTX " + CHECKED_IN + " is stale: run gpu-attention/scripts/build-ptx.sh"
              + " --update and commit the result");
    } finally {
      Files.deleteIfExists(fresh);
    }
  }

  private static String findNvcc() {
    String env = System.getenv("NVCC");
    if (env != null && new File(env).canExecute()) {
      return env;
    }
    for (String c : new String[] {"/usr/local/bin/nvcc", "/usr/local/cuda/bin/nvcc"}) {
      if (new File(c).canExecute()) {
        return c;
      }
    }
    String path = System.getenv("PATH");
    if (path != null) {
      for (String dir : path.split(File.pathSeparator)) {
        File f = new File(dir, "nvcc");
        if (f.canExecute()) {
          return f.getPath();
        }
      }
    }
    return null;
  }
}
