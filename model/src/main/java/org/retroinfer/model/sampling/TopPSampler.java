package org.retroinfer.model.sampling;

import java.util.SplittableRandom;

/**
 * Temperature and nucleus (top-p) sampling: softmax of {@code logits / temperature}, keep the most
 * likely tokens whose cumulative probability first reaches {@code topP}, renormalise, draw. Seeded,
 * so a run is reproducible.
 */
public final class TopPSampler implements Sampler {
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;

  public TopPSampler(double temperature, double topP, long seed) {
    if (!(temperature > 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be a positive number, got " + temperature
          + " (use 0 for greedy decoding)");
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  @Override
  public int sample(float[] logits) {
    return pick(probabilities(logits, temperature, topP), random.nextDouble());
  }

  /**
   * The distribution this sampler draws from: softmax at {@code temperature}, restricted to the
   * nucleus of mass {@code topP}, renormalised (double precision; zeros outside the nucleus).
   */
  public static double[] probabilities(float[] logits, double temperature, double topP) {
    int n = logits.length;
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] p = new double[n];
    double z = 0;
    for (int i = 0; i < n; i++) {
      p[i] = Math.exp((logits[i] - max) / temperature);
      z += p[i];
    }
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
      p[i] /= z;
    }
    final double[] probs = p;
    java.util.Arrays.sort(order, (a, b) -> probs[a] != probs[b] ? Double.compare(probs[b], probs[a])
        : Integer.compare(a, b));
    double kept = 0;
    int count = 0;
    while (count < n && (count == 0 || kept < topP)) {
      kept += p[order[count++]];
    }
    double[] out = new double[n];
    for (int i = 0; i < count; i++) {
      out[order[i]] = p[order[i]] / kept;
    }
    return out;
  }

  /** The token at cumulative probability {@code u} in [0, 1). */
  static int pick(double[] p, double u) {
    double acc = 0;
    int last = -1;
    for (int i = 0; i < p.length; i++) {
      if (p[i] > 0) {
        acc += p[i];
        last = i;
        if (u < acc) {
          return i;
        }
      }
    }
    return last;
  }
}
