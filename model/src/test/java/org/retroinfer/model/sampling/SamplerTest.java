package org.retroinfer.model.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class SamplerTest {
  final Random random = new Random();

  float[] randomLogits(int n) {
    float[] l = new float[n];
    for (int i = 0; i < n; i++) {
      l[i] = (float) (random.nextGaussian() * 3);
    }
    return l;
  }

  @Test
  void greedyIsArgmax() {
    float[] l = randomLogits(256);
    int best = 0;
    for (int i = 0; i < l.length; i++) {
      if (l[i] > l[best]) {
        best = i;
      }
    }
    assertEquals(best, Sampler.greedy().sample(l));
    assertEquals(best, Sampler.of(0, 0.9, 1).sample(l));
  }

  @Test
  void nucleusKeepsTheSmallestSetReachingTopP() {
    float[] l = randomLogits(64);
    double t = 0.7;
    double topP = 0.8;
    double[] p = TopPSampler.probabilities(l, t, topP);
    // reference: full softmax at temperature t, in float64
    double max = Double.NEGATIVE_INFINITY;
    for (float x : l) {
      max = Math.max(max, x);
    }
    double[] full = new double[l.length];
    double z = 0;
    for (int i = 0; i < l.length; i++) {
      full[i] = Math.exp((l[i] - max) / t);
      z += full[i];
    }
    double kept = 0;
    double smallestKept = Double.POSITIVE_INFINITY;
    double largestDropped = 0;
    double total = 0;
    for (int i = 0; i < l.length; i++) {
      full[i] /= z;
      total += p[i];
      if (p[i] > 0) {
        kept += full[i];
        smallestKept = Math.min(smallestKept, full[i]);
      } else {
        largestDropped = Math.max(largestDropped, full[i]);
      }
    }
    assertEquals(1.0, total, 1e-12);
    assertTrue(kept >= topP - 1e-12, "kept mass " + kept);
    assertTrue(kept - smallestKept < topP, "the set is not the smallest: " + kept);
    assertTrue(largestDropped <= smallestKept, "dropped a likelier token");
    for (int i = 0; i < l.length; i++) {
      if (p[i] > 0) {
        assertEquals(full[i] / kept, p[i], 1e-12);
      }
    }
  }

  @Test
  void drawsFollowTheDistribution() {
    float[] l = {2.0f, 1.0f, 0.5f, -1f, -3f};
    double[] p = TopPSampler.probabilities(l, 1.0, 1.0);
    TopPSampler s = new TopPSampler(1.0, 1.0, random.nextLong());
    int n = 40000;
    int[] counts = new int[l.length];
    for (int i = 0; i < n; i++) {
      counts[s.sample(l)]++;
    }
    for (int i = 0; i < l.length; i++) {
      double sd = Math.sqrt(p[i] * (1 - p[i]) / n);
      assertEquals(p[i], (double) counts[i] / n, 5 * sd + 1e-9, "token " + i);
    }
    // same seed, same draws
    TopPSampler a = new TopPSampler(0.8, 0.9, 42);
    TopPSampler b = new TopPSampler(0.8, 0.9, 42);
    for (int i = 0; i < 100; i++) {
      assertEquals(a.sample(l), b.sample(l));
    }
  }

  @Test
  void invalidSettingsAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> new TopPSampler(-1, 0.9, 0));
    assertThrows(IllegalArgumentException.class, () -> new TopPSampler(1, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new TopPSampler(1, 1.5, 0));
  }
}
