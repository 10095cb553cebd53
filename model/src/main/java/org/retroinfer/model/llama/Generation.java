package org.retroinfer.model.llama;

import java.util.Arrays;
import java.util.function.IntPredicate;
import org.retroinfer.model.sampling.Sampler;

/**
 * Generated tokens and the wall time of each decode step that produced them.
 *
 * @param tokens the generated token ids
 * @param stepNanos {@code stepNanos[i]}: the decode step run on {@code tokens[i]}
 */
public record Generation(int[] tokens, long[] stepNanos) {

  /** Receives each token as it is chosen. */
  @FunctionalInterface
  public interface Listener {
    void token(int id);
  }

  /**
   * Samples up to {@code maxTokens} tokens, starting from {@code logits} (the distribution after the
   * prompt), running each through {@code decoder}; stops early after a token for which {@code stop}
   * is true.
   */
  public static Generation run(Decoder decoder, float[] logits, Sampler sampler, int maxTokens,
      IntPredicate stop, Listener listener) {
    if (maxTokens < 0) {
      throw new IllegalArgumentException("maxTokens must be >= 0, got " + maxTokens);
    }
    int[] tokens = new int[maxTokens];
    long[] nanos = new long[maxTokens];
    float[] current = logits.clone();
    int n = 0;
    while (n < maxTokens) {
      int token = sampler.sample(current);
      tokens[n] = token;
      if (listener != null) {
        listener.token(token);
      }
      long t0 = System.nanoTime();
      current = decoder.step(token);
      nanos[n] = System.nanoTime() - t0;
      n++;
      if (stop != null && stop.test(token)) {
        break;
      }
    }
    return new Generation(Arrays.copyOf(tokens, n), Arrays.copyOf(nanos, n));
  }

  /** Median time of one decode step, in milliseconds (robust to a JIT compile or a GC pause). */
  public double medianStepMillis() {
    if (stepNanos.length == 0) {
      return Double.NaN;
    }
    long[] s = stepNanos.clone();
    Arrays.sort(s);
    int m = s.length / 2;
    return (s.length % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2.0) / 1e6;
  }

  /** Mean time of one decode step, in milliseconds. */
  public double meanStepMillis() {
    return Arrays.stream(stepNanos).average().orElse(Double.NaN) / 1e6;
  }
}
