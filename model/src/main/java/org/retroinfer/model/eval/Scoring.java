package org.retroinfer.model.eval;

/** Log-likelihood arithmetic, in double precision. */
public final class Scoring {
  private Scoring() {}

  /** {@code -log2 softmax(logits)[token]}: the bits a model spends on {@code token}. */
  public static double bits(float[] logits, int token) {
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double z = 0;
    for (float l : logits) {
      z += Math.exp(l - max);
    }
    return (Math.log(z) - (logits[token] - max)) / Math.log(2);
  }

  /** Byte tokens as text, with control characters escaped (for printing answers). */
  public static String printable(int[] ids) {
    StringBuilder sb = new StringBuilder();
    for (int id : ids) {
      if (id >= 32 && id < 127) {
        sb.append((char) id);
      } else {
        sb.append(String.format("\\x%02x", id));
      }
    }
    return sb.toString();
  }
}
