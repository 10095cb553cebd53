package org.retroinfer.model.llama;

/**
 * Rotary position embeddings in the "rotate half" layout of Hugging Face Llama: dimension
 * {@code i < d/2} of a head is paired with {@code i + d/2} and the pair is rotated by
 * {@code pos * theta^(-2i/d)}. Frequencies and angles are computed in float32 as Hugging Face does,
 * so that positions far into a long context get exactly the rotation the model was trained with.
 */
public final class Rope {
  private final int headDim;
  private final float[] invFreq;

  public Rope(int headDim, double theta) {
    this.headDim = headDim;
    this.invFreq = new float[headDim / 2];
    for (int i = 0; i < invFreq.length; i++) {
      float exponent = (float) (2 * i) / headDim;
      invFreq[i] = (float) (1.0 / (float) Math.pow(theta, exponent));
    }
  }

  /** Pairs per head: d/2. */
  public int pairs() {
    return invFreq.length;
  }

  /** The cosines and sines of position {@code pos} into {@code cos/sin[off .. off + d/2)}. */
  public void angles(int pos, float[] cos, float[] sin, int off) {
    for (int i = 0; i < invFreq.length; i++) {
      float angle = (float) pos * invFreq[i];
      cos[off + i] = (float) Math.cos(angle);
      sin[off + i] = (float) Math.sin(angle);
    }
  }

  /**
   * Rotates {@code heads} consecutive heads of {@code x} starting at {@code xOff} by the angles
   * {@code cos/sin[csOff ..]} of one position.
   */
  public void rotate(float[] x, int xOff, int heads, float[] cos, float[] sin, int csOff) {
    int half = invFreq.length;
    for (int h = 0; h < heads; h++) {
      int base = xOff + h * headDim;
      for (int i = 0; i < half; i++) {
        float a = x[base + i];
        float b = x[base + i + half];
        float c = cos[csOff + i];
        float s = sin[csOff + i];
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}
