package org.retroinfer.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

class RopeTest {
  final Random random = new Random();

  @Test
  void rotatesHalvesByPositionTimesFrequency() {
    int d = 64;
    double theta = 500000;
    Rope rope = new Rope(d, theta);
    int pos = random.nextInt(16384);
    float[] x = new float[2 * d];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    float[] y = x.clone();
    float[] cos = new float[d / 2];
    float[] sin = new float[d / 2];
    rope.angles(pos, cos, sin, 0);
    rope.rotate(y, 0, 2, cos, sin, 0);
    for (int h = 0; h < 2; h++) {
      for (int i = 0; i < d / 2; i++) {
        double angle = pos * Math.pow(theta, -2.0 * i / d);
        double a = x[h * d + i];
        double b = x[h * d + i + d / 2];
        // float32 angles (as Hugging Face computes them) drift by up to ~pos * 2^-24 rad
        double tol = 1e-5 + pos * 1.2e-7 * (Math.abs(a) + Math.abs(b));
        assertEquals(a * Math.cos(angle) - b * Math.sin(angle), y[h * d + i], tol);
        assertEquals(b * Math.cos(angle) + a * Math.sin(angle), y[h * d + i + d / 2], tol);
      }
    }
  }

  @Test
  void scoresDependOnlyOnRelativePosition() {
    int d = 64;
    Rope rope = new Rope(d, 10000);
    float[] q = new float[d];
    float[] k = new float[d];
    for (int i = 0; i < d; i++) {
      q[i] = (float) random.nextGaussian();
      k[i] = (float) random.nextGaussian();
    }
    int m = 10 + random.nextInt(500);
    int n = random.nextInt(m);
    double s1 = rotatedDot(rope, q, m, k, n);
    double s2 = rotatedDot(rope, q, m + 77, k, n + 77);
    assertEquals(s1, s2, 1e-3);
  }

  private static double rotatedDot(Rope rope, float[] q, int qPos, float[] k, int kPos) {
    int d = q.length;
    float[] cos = new float[d / 2];
    float[] sin = new float[d / 2];
    float[] a = q.clone();
    float[] b = k.clone();
    rope.angles(qPos, cos, sin, 0);
    rope.rotate(a, 0, 1, cos, sin, 0);
    rope.angles(kPos, cos, sin, 0);
    rope.rotate(b, 0, 1, cos, sin, 0);
    double s = 0;
    for (int i = 0; i < d; i++) {
      s += (double) a[i] * b[i];
    }
    return s;
  }
}
