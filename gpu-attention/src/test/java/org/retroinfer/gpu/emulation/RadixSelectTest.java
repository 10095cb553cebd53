package org.retroinfer.gpu.emulation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.math.TopSelection;

/**
 * The select kernel's radix select and tie rule against a full sort (wave-core's packing: larger
 * score first, then lower id), with many exact ties, zeros and tiny values.
 */
class RadixSelectTest {
  private final Random rnd = new Random(System.nanoTime());

  @Test
  void selectionEqualsSortWithTies() {
    for (int trial = 0; trial < 200; trial++) {
      int nc = 1 + rnd.nextInt(3000);
      double rf = rnd.nextDouble() * 0.3;
      double ef = rnd.nextDouble() * (1 - rf);
      WaveConfig config = WaveConfig.fixed().toBuilder().retrievalFraction(rf).estimationFraction(ef)
          .retrievalMinClusters(rnd.nextInt(5)).build();
      int[] sizes = new int[nc];
      Arrays.fill(sizes, 1);
      for (int c = 0; c < nc; c++) {
        sizes[c] = 1 + rnd.nextInt(30);
      }
      BatchTables t = new BatchTables(16, 1, KvDType.BFLOAT16, new int[] {5}, new int[][] {sizes},
          config);
      float[] scores = new float[nc];
      float[] palette = {0f, Float.MIN_VALUE, 1e-30f, 0.25f, 0.5f, 1f, 3f};
      for (int c = 0; c < nc; c++) {
        scores[c] = rnd.nextBoolean() ? palette[rnd.nextInt(palette.length)] : rnd.nextFloat();
      }
      Selection s = Selection.allocate(t);
      KernelEmulator.select(t, scores, nc, s);
      long[] keys = new long[nc];
      for (int c = 0; c < nc; c++) {
        keys[c] = TopSelection.pack(scores[c], c);
      }
      Arrays.sort(keys);
      int r = t.retrieve[0];
      int e = t.estimate[0];
      int[] ret = new int[r];
      int[] est = new int[e];
      for (int i = 0; i < r; i++) {
        ret[i] = TopSelection.id(keys[nc - 1 - i]);
      }
      for (int i = 0; i < e; i++) {
        est[i] = TopSelection.id(keys[nc - 1 - r - i]);
      }
      Arrays.sort(ret);
      Arrays.sort(est);
      assertArrayEquals(ret, Arrays.copyOf(s.retIds(), r), "retrieved, trial " + trial);
      assertArrayEquals(est, Arrays.copyOf(s.estIds(), e), "estimated, trial " + trial);
    }
  }
}
