package org.retroinfer.gpu.emulation;

/**
 * Partial softmax states, as the split-K and estimation kernels write them: per item {@code parts}
 * states; per state and query head the max logit {@code m}, the normaliser {@code Z} and the
 * unnormalised output {@code O[d]}. Index of state p of item i: {@code i * parts + p}; its head h
 * at {@code (i * parts + p) * g + h} in {@code m}/{@code l}, times {@code d} in {@code o}.
 */
public record Partials(int items, int parts, int groupSize, int dim, float[] m, float[] l, float[] o) {
  public static Partials allocate(int items, int parts, int groupSize, int dim) {
    long n = (long) items * parts * groupSize;
    if (n * dim > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(items + " items x " + parts + " parts are too many partial"
          + " states for one emulation");
    }
    return new Partials(items, parts, groupSize, dim, new float[(int) n], new float[(int) n],
        new float[(int) (n * dim)]);
  }
}
