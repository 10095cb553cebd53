package org.retroinfer.gpu;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;

/**
 * K/V produced by the shipped model (bytecode-llama-10m: 6 layers, 2 KV heads, 6 query heads, head
 * dim 64) over a generated Python-like prompt with a key line, as wave-core caches (index built),
 * one per (layer, KV head), plus queries made from the model's own keys.
 */
final class ModelKv implements AutoCloseable {
  final ContextCache cache;
  final List<WaveHeadCache> heads = new ArrayList<>();
  final AttentionShape shape;
  final float[] queries;

  ModelKv(WaveConfig config, int tokens, Random rnd) throws Exception {
    try (Llama model = Llama.load(ModelDirectory.shipped())) {
      shape = model.attentionShape();
      PromptState state = model.prefill(prompt(tokens, rnd));
      cache = new WaveAttention(config).newContext(shape);
      state.copyInto(cache);
      cache.endPrefill();
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          heads.add((WaveHeadCache) cache.head(l, h));
        }
      }
      // query group of item (l, h): the model's key at a random position (post-RoPE, as cached),
      // per query head plus noise: attention then concentrates where the model's keys agree
      int d = shape.headDim();
      int g = shape.groupSize();
      queries = new float[heads.size() * g * d];
      for (int i = 0; i < heads.size(); i++) {
        int l = i / shape.kvHeads();
        int h = i % shape.kvHeads();
        int p = rnd.nextInt(state.length());
        float[] k = state.keys(l);
        for (int j = 0; j < g; j++) {
          for (int c = 0; c < d; c++) {
            queries[(i * g + j) * d + c] = k[p * shape.kvWidth() + h * d + c]
                + (float) rnd.nextGaussian() * 0.3f;
          }
        }
      }
    }
  }

  /** Python-like text with a key line early and a recall line late, as the model was trained on. */
  static int[] prompt(int tokens, Random rnd) {
    StringBuilder s = new StringBuilder("\u0002");
    int key = 10000 + rnd.nextInt(90000);
    s.append("# KEY_alpha = ").append(key).append('\n');
    for (int i = 0; s.length() < tokens - 40; i++) {
      s.append("def f").append(i).append("(x, y=").append(rnd.nextInt(100)).append("):\n")
          .append("    return x * ").append(rnd.nextInt(1000)).append(" + y\n\n");
    }
    s.append("# recall KEY_alpha: ");
    byte[] b = s.toString().getBytes(StandardCharsets.US_ASCII);
    int[] ids = new int[Math.min(tokens, b.length)];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = b[b.length - ids.length + i] & 0xff;
    }
    ids[0] = 2;
    return ids;
  }

  @Override
  public void close() {
    cache.close();
  }
}
