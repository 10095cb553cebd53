package org.retroinfer.wave;

import java.util.Random;

/**
 * Synthetic keys, values and queries shaped like a real model's KV cache of one head:
 *
 * <ul>
 *   <li>keys share a large common offset (so centring matters) and are RoPE-rotated by position
 *       ("rotate half" layout, theta 500000);
 *   <li>the text is a sequence of runs (32..512 tokens) on recurring topics: a token's key is its
 *       topic's vector plus noise, which gives the positional locality and the graded, structured
 *       background of real attention;
 *   <li>a few scattered "needle" spans align with a direction that the query looks for; it lives in
 *       the slowly rotating RoPE dimensions, as retrieval heads' features do, so it survives
 *       rotation across long distances;
 *   <li>values depend on the topic and the needle, so that skipping or mis-weighting tokens moves
 *       the output.
 * </ul>
 *
 * Queries (at the last position) look for the needle and, more weakly, for one of the topics.
 */
public final class SyntheticKv {
  static final int TOPICS = 32;
  public final int n;
  public final int d;
  public final float[] keys;
  public final float[] values;
  public final int[] needlePositions;
  private final float[] needleDirection;
  private final float[][] topics;
  private final Random rnd;
  private final double[] frequencies;
  private final double topicAffinity;

  public SyntheticKv(long seed, int n, int d, int needles, int span) {
    this(seed, n, d, needles, span, 0.6, 0.8);
  }

  /**
   * @param needles needle spans of {@code span} tokens each, at random positions
   * @param needleStrength how strongly needle keys point along the needle direction
   * @param topicAffinity how strongly queries prefer one topic
   */
  public SyntheticKv(long seed, int n, int d, int needles, int span, double needleStrength,
      double topicAffinity) {
    this.n = n;
    this.d = d;
    this.rnd = new Random(seed);
    this.frequencies = new double[d / 2];
    for (int i = 0; i < d / 2; i++) {
      frequencies[i] = Math.pow(500000.0, -2.0 * i / d);
    }
    this.topicAffinity = topicAffinity;
    this.keys = new float[n * d];
    this.values = new float[n * d];
    this.needleDirection = lowFrequencyDirection();
    this.topics = new float[TOPICS][];
    float[][] topicValues = new float[TOPICS][];
    for (int t = 0; t < TOPICS; t++) {
      topics[t] = gaussian(d, 1.0f);
      topicValues[t] = gaussian(d, 1.0f);
    }
    float[] offset = gaussian(d, 1.0f);
    float[] pre = new float[d];
    float[] strength = new float[n];
    needlePositions = new int[needles * span];
    for (int s = 0; s < needles; s++) {
      int start = 16 + rnd.nextInt(Math.max(1, n - 200 - span));
      float spanStrength = (float) (needleStrength * (0.8 + 0.6 * rnd.nextDouble()));
      for (int t = 0; t < span; t++) {
        strength[start + t] = spanStrength;
        needlePositions[s * span + t] = start + t;
      }
    }
    int topic = 0;
    int runLeft = 0;
    for (int j = 0; j < n; j++) {
      if (runLeft == 0) {
        topic = rnd.nextInt(TOPICS);
        runLeft = 32 + rnd.nextInt(481);
      }
      runLeft--;
      float[] tv = topics[topic];
      for (int i = 0; i < d; i++) {
        pre[i] = (float) (2.0 * offset[i] + tv[i] + 0.5 * rnd.nextGaussian()
            + strength[j] * needleDirection[i]);
      }
      rope(pre, j, keys, j * d);
      for (int i = 0; i < d; i++) {
        values[j * d + i] = (float) (topicValues[topic][i] + 0.5 * rnd.nextGaussian()
            + (strength[j] > 0 ? 1.5 : 0));
      }
    }
  }

  /** A query at position {@code n - 1} that looks for the needles and one topic, fresh noise. */
  public float[] query(int groupSize) {
    float[] q = new float[groupSize * d];
    float[] pre = new float[d];
    float[] topic = topics[rnd.nextInt(TOPICS)];
    for (int h = 0; h < groupSize; h++) {
      for (int i = 0; i < d; i++) {
        pre[i] = (float) ((0.8 + 0.3 * h) * needleDirection[i] + topicAffinity * topic[i]
            + 0.3 * rnd.nextGaussian());
      }
      rope(pre, n - 1, q, h * d);
    }
    return q;
  }

  private float[] lowFrequencyDirection() {
    float[] u = new float[d];
    int half = d / 2;
    // the slowest-rotating quarter of the frequency pairs (i close to half)
    for (int i = half - Math.max(1, half / 4); i < half; i++) {
      u[i] = (float) rnd.nextGaussian();
      u[i + half] = (float) rnd.nextGaussian();
    }
    double norm = 0;
    for (float x : u) {
      norm += x * x;
    }
    float scale = (float) (Math.sqrt(d) / Math.sqrt(norm));
    for (int i = 0; i < d; i++) {
      u[i] *= scale;
    }
    return u;
  }

  private float[] gaussian(int len, float sigma) {
    float[] x = new float[len];
    for (int i = 0; i < len; i++) {
      x[i] = (float) (sigma * rnd.nextGaussian());
    }
    return x;
  }

  /** RoPE, "rotate half" layout: pairs (i, i + d/2) rotate by pos * theta^(-2i/d). */
  public void rope(float[] src, int pos, float[] dst, int off) {
    int half = d / 2;
    for (int i = 0; i < half; i++) {
      double a = pos * frequencies[i];
      double c = Math.cos(a);
      double s = Math.sin(a);
      float x0 = src[i];
      float x1 = src[i + half];
      dst[off + i] = (float) (x0 * c - x1 * s);
      dst[off + i + half] = (float) (x0 * s + x1 * c);
    }
  }
}
