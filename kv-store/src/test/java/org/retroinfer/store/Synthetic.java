package org.retroinfer.store;

import java.util.HexFormat;
import java.util.SplittableRandom;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** Small random wave contexts for store tests: fresh random K/V, several wave segments each. */
public final class Synthetic {
  public static final AttentionShape SHAPE = new AttentionShape(2, 4, 2, 16);
  /** Small segments so that a few hundred tokens make several of them. */
  public static final WaveConfig CONFIG = WaveConfig.fixed().toBuilder().sinkTokens(4).windowTokens(16)
      .updateTokens(32).segmentTokens(64).tokensPerCluster(8).retrievalMinClusters(2)
      .kvType(KvDType.BFLOAT16).build();
  public static final int CHUNK = 16;

  private Synthetic() {}

  public static ModelFingerprint fingerprint(SplittableRandom r) {
    byte[] b = new byte[32];
    r.nextBytes(b);
    return new ModelFingerprint(HexFormat.of().formatHex(b));
  }

  public static int[] tokens(SplittableRandom r, int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(256);
    }
    return t;
  }

  /** Random keys and values: {@code kv[layer][token * kvWidth + head * dim + i]}. */
  public static float[][][] kv(SplittableRandom r, int n) {
    int w = SHAPE.kvWidth();
    float[][][] kv = new float[2][SHAPE.layers()][n * w];
    for (float[][] part : kv) {
      for (float[] layer : part) {
        for (int i = 0; i < layer.length; i++) {
          layer[i] = (float) (r.nextGaussian() * 1.5);
        }
      }
    }
    return kv;
  }

  /** A wave context over {@code kv}'s first {@code n} tokens, prefill ended. */
  public static ContextCache cache(float[][][] kv, int n, WaveConfig config) {
    ContextCache c = new WaveAttention(config).newContext(SHAPE);
    int w = SHAPE.kvWidth();
    for (int l = 0; l < SHAPE.layers(); l++) {
      for (int p = 0; p < n; p++) {
        c.append(l, java.util.Arrays.copyOfRange(kv[0][l], p * w, (p + 1) * w),
            java.util.Arrays.copyOfRange(kv[1][l], p * w, (p + 1) * w));
      }
    }
    c.endPrefill();
    return c;
  }

  public static ContextCache cache(float[][][] kv, int n) {
    return cache(kv, n, CONFIG);
  }

  public static float[] queries(SplittableRandom r) {
    float[] q = new float[SHAPE.queryWidth()];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) r.nextGaussian();
    }
    return q;
  }

  public static long seed() {
    return new SplittableRandom().nextLong();
  }
}
