package org.retroinfer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.safetensors.CheckpointException;

class ModelDirectoryTest {
  @TempDir Path dir;

  @Test
  void theShippedModelVerifies() throws IOException {
    ModelDirectory shipped = ModelDirectory.shipped();
    assertEquals(List.of("model.safetensors", "config.json"), shipped.verify());
    assertEquals(ModelDirectory.SHIPPED_SHA256, ModelDirectory.sha256(shipped.weights()));
  }

  @Test
  void aChangedFileFailsVerification() throws IOException {
    Path src = ModelDirectory.shipped().path();
    for (String f : new String[] {"config.json", "model.safetensors", "SHA256SUMS"}) {
      Files.copy(src.resolve(f), dir.resolve(f));
    }
    ModelDirectory.of(dir).verify();
    Files.writeString(dir.resolve("config.json"), Files.readString(dir.resolve("config.json"))
        .replace("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e-06"));
    CheckpointException e = assertThrows(CheckpointException.class, () -> Llama.load(dir));
    assertTrue(e.getMessage().contains("sha256 of") && e.getMessage().contains("config.json")
        && e.getMessage().contains("restore"), e.getMessage());
  }

  @Test
  void aSwappedModelFailsTheBuiltInHash() throws IOException {
    Path src = ModelDirectory.shipped().path();
    Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
    byte[] weights = Files.readAllBytes(src.resolve("model.safetensors"));
    weights[weights.length / 2] ^= 1;
    Files.write(dir.resolve("model.safetensors"), weights);
    ModelDirectory.of(dir).verify(); // no SHA256SUMS: nothing to check against
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> ModelDirectory.of(dir, ModelDirectory.SHIPPED_SHA256).verify());
    assertTrue(e.getMessage().contains(ModelDirectory.SHIPPED_SHA256), e.getMessage());
  }

  @Test
  void incompleteDirectoriesAreReported() throws IOException {
    assertTrue(assertThrows(CheckpointException.class,
        () -> ModelDirectory.of(dir.resolve("nope"))).getMessage().contains("does not exist"));
    Files.writeString(dir.resolve("config.json"), "{}");
    CheckpointException e = assertThrows(CheckpointException.class, () -> ModelDirectory.of(dir));
    assertTrue(e.getMessage().contains("no model.safetensors")
        && e.getMessage().contains("config.json"), e.getMessage());
  }
}
