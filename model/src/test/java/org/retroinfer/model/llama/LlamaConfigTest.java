package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.safetensors.CheckpointException;
import org.retroinfer.model.safetensors.UnsupportedTensorException;

class LlamaConfigTest {
  final ObjectMapper json = new ObjectMapper();

  ObjectNode shipped() throws IOException {
    return (ObjectNode) json.readTree(ModelDirectory.shipped().config().toFile());
  }

  @Test
  void readsTheShippedConfig() throws IOException {
    LlamaConfig c = LlamaConfig.read(ModelDirectory.shipped().config());
    assertEquals(384, c.hiddenSize());
    assertEquals(1024, c.intermediateSize());
    assertEquals(6, c.layers());
    assertEquals(6, c.queryHeads());
    assertEquals(2, c.kvHeads());
    assertEquals(64, c.headDim());
    assertEquals(256, c.vocabSize());
    assertEquals(1e-5, c.rmsNormEps());
    assertEquals(500000.0, c.ropeTheta());
    assertEquals(16384, c.maxPositions());
    assertFalse(c.tiedEmbeddings());
    assertEquals(2, c.bosTokenId());
    assertEquals(3, c.attentionShape().groupSize());
  }

  @Test
  void otherArchitecturesAreRejected() throws IOException {
    ObjectNode n = shipped();
    n.put("model_type", "gpt2");
    n.putArray("architectures").add("GPT2LMHeadModel");
    UnsupportedTensorException e = assertThrows(UnsupportedTensorException.class,
        () -> LlamaConfig.parse(n, "config.json"));
    assertTrue(e.getMessage().contains("gpt2") && e.getMessage().contains("Llama"), e.getMessage());
  }

  @Test
  void unimplementedFeaturesAreRejected() throws IOException {
    ObjectNode scaled = shipped();
    scaled.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0);
    assertTrue(assertThrows(UnsupportedTensorException.class,
        () -> LlamaConfig.parse(scaled, "c")).getMessage().contains("rope_scaling"));
    ObjectNode gelu = shipped();
    gelu.put("hidden_act", "gelu");
    assertTrue(assertThrows(UnsupportedTensorException.class,
        () -> LlamaConfig.parse(gelu, "c")).getMessage().contains("gelu"));
    ObjectNode bias = shipped();
    bias.put("attention_bias", true);
    assertThrows(UnsupportedTensorException.class, () -> LlamaConfig.parse(bias, "c"));
  }

  @Test
  void missingOrInconsistentValuesAreReported() throws IOException {
    ObjectNode missing = shipped();
    missing.remove("hidden_size");
    assertTrue(assertThrows(CheckpointException.class,
        () -> LlamaConfig.parse(missing, "c")).getMessage().contains("'hidden_size' is missing"));
    ObjectNode heads = shipped();
    heads.put("num_key_value_heads", 4);
    assertTrue(assertThrows(CheckpointException.class,
        () -> LlamaConfig.parse(heads, "c")).getMessage().contains("not a multiple"));
  }

  @Test
  void headDimDefaultsToHiddenOverHeads() throws IOException {
    ObjectNode n = shipped();
    n.remove("head_dim");
    assertEquals(64, LlamaConfig.parse(n, "c").headDim());
  }
}
