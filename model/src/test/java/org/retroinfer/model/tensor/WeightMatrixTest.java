package org.retroinfer.model.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.retroinfer.model.safetensors.TensorDType;
import org.retroinfer.model.safetensors.TestCheckpoint;

/** Matrix-vector and matrix-matrix products of every dtype against a float64 reference. */
class WeightMatrixTest {
  final Random random = new Random();

  WeightMatrix matrix(String dtype, int rows, int cols, float[] stored, Arena arena) {
    float[] values = new float[rows * cols];
    for (int i = 0; i < values.length; i++) {
      double g = random.nextGaussian();
      // include float16 subnormals (|x| < 6.1e-5) and large magnitudes
      values[i] = (float) (i % 17 == 0 ? g * 1e-6 : i % 29 == 0 ? g * 3000 : g);
      stored[i] = TestCheckpoint.stored(dtype, values[i]);
    }
    byte[] file = new TestCheckpoint().add("w", dtype, new long[] {rows, cols}, values).bytes();
    MemorySegment seg = arena.allocate(file.length);
    MemorySegment.copy(file, 0, seg, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, file.length);
    long dataStart = file.length - (long) rows * cols * TensorDType.valueOf(dtype).bytes();
    return new WeightMatrix("w", TensorDType.valueOf(dtype),
        seg.asSlice(dataStart, seg.byteSize() - dataStart), rows, cols);
  }

  @ParameterizedTest
  @CsvSource({"F32,37,384", "F16,37,384", "BF16,37,384", "F16,8,33", "BF16,5,34", "F32,3,7",
      "F16,64,1024", "BF16,130,96"})
  void productsMatchFloat64(String dtype, int rows, int cols) {
    try (Arena arena = Arena.ofShared()) {
      float[] w = new float[rows * cols];
      WeightMatrix m = matrix(dtype, rows, cols, w, arena);
      int n = 7;
      float[] x = new float[n * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) random.nextGaussian();
      }
      float[] y = new float[rows];
      float[] yPar = new float[rows];
      float[] yMat = new float[n * (rows + 3)];
      m.matmul(x, n, yMat, rows + 3);
      for (int t = 0; t < n; t++) {
        m.matvec(x, t * cols, y, 0, 0, rows);
        m.matvec(x, t * cols, yPar, 0);
        for (int r = 0; r < rows; r++) {
          double ref = 0;
          double mag = 0;
          for (int c = 0; c < cols; c++) {
            ref += (double) w[r * cols + c] * x[t * cols + c];
            mag += Math.abs((double) w[r * cols + c] * x[t * cols + c]);
          }
          double tol = 1e-5 * mag + 1e-30;
          assertEquals(ref, y[r], tol, dtype + " matvec row " + r);
          assertEquals(ref, yPar[r], tol, dtype + " parallel matvec row " + r);
          assertEquals(ref, yMat[t * (rows + 3) + r], tol, dtype + " matmul row " + r + " input " + t);
        }
      }
      float[] row = new float[cols];
      int r = random.nextInt(rows);
      m.readRow(r, row, 0);
      for (int c = 0; c < cols; c++) {
        assertEquals(w[r * cols + c], row[c], 0f);
      }
    }
  }

  @ParameterizedTest
  @CsvSource({"F16", "BF16", "F32"})
  void nonFiniteWeightsAreRejected(String dtype) {
    try (Arena arena = Arena.ofShared()) {
      float[] w = new float[4 * 8];
      WeightMatrix ok = matrix(dtype, 4, 8, w, arena);
      ok.checkFinite();
      float[] values = new float[32];
      values[13] = Float.NaN;
      byte[] file = new TestCheckpoint().add("w", dtype, new long[] {4, 8}, values).bytes();
      MemorySegment seg = arena.allocate(file.length);
      MemorySegment.copy(file, 0, seg, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, file.length);
      long start = file.length - 32L * TensorDType.valueOf(dtype).bytes();
      WeightMatrix bad = new WeightMatrix("bad", TensorDType.valueOf(dtype),
          seg.asSlice(start, seg.byteSize() - start), 4, 8);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, bad::checkFinite);
      assertTrue(e.getMessage().contains("[1, 5]"), e.getMessage());
    }
  }
}
