package org.retroinfer.model.sampling;

/** Picks the next token from logits. Implementations may keep state (a random generator). */
@FunctionalInterface
public interface Sampler {

  /** The chosen token id; {@code logits} is not modified. */
  int sample(float[] logits);

  /** Always the most likely token (ties: the smallest id). */
  static Sampler greedy() {
    return Sampler::argmax;
  }

  /**
   * Greedy when {@code temperature == 0}, otherwise {@link TopPSampler} with the given temperature,
   * nucleus mass and seed.
   */
  static Sampler of(double temperature, double topP, long seed) {
    return temperature == 0 ? greedy() : new TopPSampler(temperature, topP, seed);
  }

  /** Index of the largest logit; the first on ties. */
  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }
}
