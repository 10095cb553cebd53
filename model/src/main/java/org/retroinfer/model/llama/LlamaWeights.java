package org.retroinfer.model.llama;

import org.retroinfer.model.safetensors.SafeTensors;
import org.retroinfer.model.safetensors.TensorInfo;
import org.retroinfer.model.tensor.WeightMatrix;

/**
 * All weights of a Llama model, bound by their Hugging Face names
 * ({@code model.embed_tokens.weight}, {@code model.layers.N.self_attn.q_proj.weight}, ...,
 * {@code model.norm.weight}, {@code lm_head.weight}) and checked against the configuration's shapes.
 * A tied model (or one without {@code lm_head.weight} and {@code tie_word_embeddings: true}) uses the
 * embedding matrix as its output head.
 */
public record LlamaWeights(WeightMatrix embedding, LayerWeights[] layers, float[] finalNorm,
    WeightMatrix outputHead) {

  /** Binds and checks every tensor; weights are verified to be finite. */
  public static LlamaWeights bind(SafeTensors st, LlamaConfig c) {
    int h = c.hiddenSize();
    String why = "config.json: hidden_size " + h + ", num_attention_heads " + c.queryHeads()
        + ", num_key_value_heads " + c.kvHeads() + ", head_dim " + c.headDim()
        + ", intermediate_size " + c.intermediateSize() + ", vocab_size " + c.vocabSize();
    WeightMatrix embedding = matrix(st, "model.embed_tokens.weight", why, c.vocabSize(), h);
    LayerWeights[] layers = new LayerWeights[c.layers()];
    for (int l = 0; l < layers.length; l++) {
      String p = "model.layers." + l + ".";
      layers[l] = new LayerWeights(
          vector(st, p + "input_layernorm.weight", why, h),
          matrix(st, p + "self_attn.q_proj.weight", why, c.queryWidth(), h),
          matrix(st, p + "self_attn.k_proj.weight", why, c.kvWidth(), h),
          matrix(st, p + "self_attn.v_proj.weight", why, c.kvWidth(), h),
          matrix(st, p + "self_attn.o_proj.weight", why, h, c.queryWidth()),
          vector(st, p + "post_attention_layernorm.weight", why, h),
          matrix(st, p + "mlp.gate_proj.weight", why, c.intermediateSize(), h),
          matrix(st, p + "mlp.up_proj.weight", why, c.intermediateSize(), h),
          matrix(st, p + "mlp.down_proj.weight", why, h, c.intermediateSize()));
    }
    float[] finalNorm = vector(st, "model.norm.weight", why, h);
    WeightMatrix head = c.tiedEmbeddings() ? embedding
        : matrix(st, "lm_head.weight", why + " (tie_word_embeddings false)", c.vocabSize(), h);
    return new LlamaWeights(embedding, layers, finalNorm, head);
  }

  private static WeightMatrix matrix(SafeTensors st, String name, String why, int rows, int cols) {
    TensorInfo info = st.require(name, why, rows, cols);
    WeightMatrix m = new WeightMatrix(name, info.dtype(), st.data(info), rows, cols);
    m.checkFinite();
    return m;
  }

  private static float[] vector(SafeTensors st, String name, String why, int n) {
    TensorInfo info = st.require(name, why, n);
    WeightMatrix m = new WeightMatrix(name, info.dtype(), st.data(info), 1, n);
    m.checkFinite();
    float[] v = new float[n];
    m.readRow(0, v, 0);
    return v;
  }
}
