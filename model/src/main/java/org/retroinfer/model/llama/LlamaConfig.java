package org.retroinfer.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.retroinfer.model.safetensors.CheckpointException;
import org.retroinfer.model.safetensors.UnsupportedTensorException;
import org.retroinfer.wave.attention.AttentionShape;

/**
 * The hyper-parameters of a Llama-family model, read from a Hugging Face {@code config.json}
 * ({@code LlamaForCausalLM}: RMSNorm, rotary embeddings in the "rotate half" layout, grouped-query
 * attention, SwiGLU, no biases). Validated on construction.
 *
 * @param hiddenSize model width
 * @param intermediateSize SwiGLU width
 * @param layers decoder layers
 * @param queryHeads attention heads
 * @param kvHeads key/value heads (grouped-query attention)
 * @param headDim width of one head
 * @param vocabSize tokens
 * @param rmsNormEps epsilon of every RMSNorm
 * @param ropeTheta base of the rotary frequencies
 * @param maxPositions the context the model was trained for (longer contexts are allowed, but the
 *     model has never seen such positions)
 * @param tiedEmbeddings whether the output head reuses the token embedding matrix
 * @param bosTokenId the token that starts a document, or -1
 */
public record LlamaConfig(
    int hiddenSize,
    int intermediateSize,
    int layers,
    int queryHeads,
    int kvHeads,
    int headDim,
    int vocabSize,
    double rmsNormEps,
    double ropeTheta,
    int maxPositions,
    boolean tiedEmbeddings,
    int bosTokenId) {

  public LlamaConfig {
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", layers);
    positive("num_attention_heads", queryHeads);
    positive("num_key_value_heads", kvHeads);
    positive("head_dim", headDim);
    positive("vocab_size", vocabSize);
    positive("max_position_embeddings", maxPositions);
    if (queryHeads % kvHeads != 0) {
      throw new CheckpointException("config: num_attention_heads " + queryHeads
          + " is not a multiple of num_key_value_heads " + kvHeads);
    }
    if (headDim % 2 != 0) {
      throw new CheckpointException("config: head_dim " + headDim
          + " is odd; rotary embeddings rotate pairs of dimensions");
    }
    if (!(rmsNormEps > 0) || !(ropeTheta > 1)) {
      throw new CheckpointException("config: rms_norm_eps (" + rmsNormEps + ") must be > 0 and"
          + " rope_theta (" + ropeTheta + ") > 1");
    }
  }

  private static void positive(String key, int value) {
    if (value <= 0) {
      throw new CheckpointException("config: " + key + " must be a positive integer, got " + value);
    }
  }

  /**
   * Refuses, before any work is done on it, a prompt longer than the context the model was trained
   * for ({@link #maxPositions}), unless the caller explicitly allows it.
   *
   * @param tokens the prompt's length in tokens
   * @param allowLonger whether the caller accepts a longer prompt (what happens then: it is
   *     prefilled whole, at positions the model never saw in training)
   * @param howToAllow what the caller does to allow it (named in the error), e.g. an option
   * @throws IllegalArgumentException if the prompt is longer and not allowed
   */
  public void checkPromptLength(int tokens, boolean allowLonger, String howToAllow) {
    if (tokens > maxPositions && !allowLonger) {
      throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "the prompt has %,d"
          + " tokens, more than the %,d-token context the model was trained for"
          + " (max_position_embeddings); it was refused before any work. Shorten it, or %s to"
          + " prefill it anyway: positions past %,d were never trained, so the output degrades,"
          + " and the prefill's time and memory grow with the prompt", tokens, maxPositions,
          howToAllow, maxPositions));
    }
  }

  /** The attention geometry that a wave-core cache needs. */
  public AttentionShape attentionShape() {
    return new AttentionShape(layers, queryHeads, kvHeads, headDim);
  }

  /** Floats of one token's queries: queryHeads * headDim. */
  public int queryWidth() {
    return queryHeads * headDim;
  }

  /** Floats of one token's keys (or values): kvHeads * headDim. */
  public int kvWidth() {
    return kvHeads * headDim;
  }

  /**
   * Reads a Hugging Face {@code config.json}.
   *
   * @throws UnsupportedTensorException if the architecture is not Llama, or it uses features this
   *     runtime does not implement (rope scaling, biases, another activation)
   * @throws CheckpointException if keys are missing or invalid
   */
  public static LlamaConfig read(Path file) throws IOException {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readString(file));
    } catch (NoSuchFileException e) {
      throw new CheckpointException("no config.json at " + file
          + "; a Hugging Face checkpoint directory holds config.json next to model.safetensors", e);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new CheckpointException(file + " is not valid JSON: " + e.getOriginalMessage(), e);
    }
    return parse(root, file.toString());
  }

  /** Parses the JSON of a {@code config.json}; {@code source} names it in error messages. */
  public static LlamaConfig parse(JsonNode root, String source) {
    String modelType = root.path("model_type").asText("");
    JsonNode archs = root.path("architectures");
    String arch = archs.isArray() && !archs.isEmpty() ? archs.get(0).asText() : "";
    if (!modelType.equals("llama") && !arch.equals("LlamaForCausalLM")) {
      throw new UnsupportedTensorException(source + ": model_type '" + modelType + "', architectures "
          + archs + "; this runtime runs Llama-family models only (model_type \"llama\","
          + " LlamaForCausalLM)");
    }
    String act = root.path("hidden_act").asText("silu");
    if (!act.equals("silu")) {
      throw new UnsupportedTensorException(source + ": hidden_act '" + act
          + "'; Llama's SwiGLU MLP uses silu, and no other activation is implemented");
    }
    JsonNode scaling = root.path("rope_scaling");
    if (!scaling.isMissingNode() && !scaling.isNull()) {
      throw new UnsupportedTensorException(source + ": rope_scaling " + scaling
          + " is not implemented; only plain RoPE (rope_scaling null) is");
    }
    if (root.path("attention_bias").asBoolean(false) || root.path("mlp_bias").asBoolean(false)) {
      throw new UnsupportedTensorException(source
          + ": attention_bias / mlp_bias are set; this runtime implements Llama without biases");
    }
    int hidden = required(root, "hidden_size", source);
    int heads = required(root, "num_attention_heads", source);
    int headDim = root.has("head_dim") && !root.get("head_dim").isNull()
        ? root.get("head_dim").asInt() : (heads > 0 ? hidden / heads : 0);
    return new LlamaConfig(
        hidden,
        required(root, "intermediate_size", source),
        required(root, "num_hidden_layers", source),
        heads,
        root.path("num_key_value_heads").asInt(heads),
        headDim,
        required(root, "vocab_size", source),
        root.path("rms_norm_eps").asDouble(1e-6),
        root.path("rope_theta").asDouble(10000.0),
        root.path("max_position_embeddings").asInt(2048),
        root.path("tie_word_embeddings").asBoolean(false),
        root.path("bos_token_id").isInt() ? root.path("bos_token_id").asInt() : -1);
  }

  private static int required(JsonNode root, String key, String source) {
    JsonNode n = root.get(key);
    if (n == null || !n.canConvertToInt()) {
      throw new CheckpointException(source + ": '" + key + "' is missing or not an integer ("
          + n + "); every Hugging Face Llama config.json has it");
    }
    return n.asInt();
  }
}
