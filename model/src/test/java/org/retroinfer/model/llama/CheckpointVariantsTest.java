package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.TestModel;
import org.retroinfer.model.safetensors.CheckpointException;
import org.retroinfer.model.safetensors.SafeTensors;
import org.retroinfer.model.safetensors.TensorInfo;
import org.retroinfer.model.safetensors.TestCheckpoint;
import org.retroinfer.model.tensor.WeightMatrix;

/**
 * The shipped model rewritten as other checkpoints (F32 and BF16 weights, a tied head, a missing
 * tensor, a config that does not fit the weights): the loader reads each dtype to the same numbers,
 * and rejects broken checkpoints with messages that name the tensor.
 */
class CheckpointVariantsTest {
  @TempDir Path dir;

  /** Writes the shipped tensors that {@code keep} accepts, stored as {@code dtype}. */
  Path rewrite(String dtype, Predicate<String> keep, String configJson) throws IOException {
    ModelDirectory shipped = ModelDirectory.shipped();
    TestCheckpoint out = new TestCheckpoint();
    try (SafeTensors st = SafeTensors.open(shipped.weights())) {
      for (String name : st.names()) {
        if (!keep.test(name)) {
          continue;
        }
        TensorInfo info = st.info(name);
        long[] shape = info.shape();
        int rows = shape.length == 1 ? 1 : (int) shape[0];
        int cols = (int) shape[shape.length - 1];
        WeightMatrix m = new WeightMatrix(name, info.dtype(), st.data(info), rows, cols);
        float[] values = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
          m.readRow(r, values, r * cols);
        }
        out.add(name, dtype, shape, values);
      }
    }
    Files.createDirectories(dir);
    out.write(dir.resolve("model.safetensors"));
    Files.writeString(dir.resolve("config.json"), configJson);
    return dir;
  }

  static String config() throws IOException {
    return Files.readString(ModelDirectory.shipped().config());
  }

  int[] prompt() {
    return TestModel.ints(TestModel.reference().get("prompt_ids"));
  }

  @Test
  void float32WeightsGiveTheSameLogits() throws IOException {
    try (Llama f32 = Llama.load(rewrite("F32", n -> true, config()))) {
      float[] expected = TestModel.get().prefill(prompt()).lastLogits();
      ConformanceTest.assertMaxAbsDiff(expected, f32.prefill(prompt()).lastLogits(), 1e-5,
          "F32 copy of the F16 weights");
    }
  }

  @Test
  void bfloat16WeightsGiveCloseLogits() throws IOException {
    try (Llama bf16 = Llama.load(rewrite("BF16", n -> true, config()))) {
      float[] expected = TestModel.get().prefill(prompt()).lastLogits();
      float[] got = bf16.prefill(prompt()).lastLogits();
      // bfloat16 keeps 8 mantissa bits of the F16 weights' 11: logits move, the ranking stays
      ConformanceTest.assertMaxAbsDiff(expected, got, 0.5, "BF16 copy");
      assertEquals(org.retroinfer.model.sampling.Sampler.argmax(expected),
          org.retroinfer.model.sampling.Sampler.argmax(got));
    }
  }

  @Test
  void aTiedModelUsesTheEmbeddingAsItsHead() throws IOException {
    String tied = config().replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
    assertTrue(tied.contains("\"tie_word_embeddings\": true"));
    try (Llama model = Llama.load(rewrite("F16", n -> !n.equals("lm_head.weight"), tied))) {
      assertSame(model.weights().embedding(), model.weights().outputHead());
      assertEquals(256, model.prefill(prompt()).lastLogits().length);
    }
  }

  @Test
  void aMissingTensorIsNamed() throws IOException {
    Path d = rewrite("F16", n -> !n.equals("model.layers.3.mlp.up_proj.weight"), config());
    CheckpointException e = assertThrows(CheckpointException.class, () -> Llama.load(d));
    assertTrue(e.getMessage().contains("no tensor 'model.layers.3.mlp.up_proj.weight'"),
        e.getMessage());
    assertTrue(e.getMessage().contains("model.layers.2.mlp.up_proj.weight")
        || e.getMessage().contains("similar"), e.getMessage());
  }

  @Test
  void aConfigThatDoesNotFitTheWeightsIsRejected() throws IOException {
    Path d = rewrite("F16", n -> true,
        config().replace("\"intermediate_size\": 1024", "\"intermediate_size\": 1000"));
    CheckpointException e = assertThrows(CheckpointException.class, () -> Llama.load(d));
    assertTrue(e.getMessage().contains("mlp.gate_proj.weight")
        && e.getMessage().contains("[1024, 384]") && e.getMessage().contains("[1000, 384]"),
        e.getMessage());
  }
}
