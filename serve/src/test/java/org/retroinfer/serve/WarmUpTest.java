package org.retroinfer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.retroinfer.app.ModelFingerprints;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.wave.WaveConfig;

class WarmUpTest {
  @Test
  void runsAndLeavesNoScratchStoreBehind() throws Exception {
    ModelDirectory dir = ModelDirectory.shipped();
    try (Llama model = Llama.load(dir)) {
      long before = scratchDirs();
      WarmUp.run(model, ModelFingerprints.of(dir), WaveConfig.defaults());
      assertEquals(before, scratchDirs());
    }
  }

  private static long scratchDirs() throws Exception {
    try (Stream<Path> s = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return s.filter(p -> p.getFileName().toString().startsWith("retroinfer-serve-warm-up"))
          .count();
    }
  }
}
