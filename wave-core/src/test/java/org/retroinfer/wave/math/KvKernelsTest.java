package org.retroinfer.wave.math;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import java.util.stream.Stream;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/** Every kernel, every storage type, odd head dims and group sizes, against float64 loops. */
class KvKernelsTest {

  static Stream<Arguments> shapes() {
    Stream.Builder<Arguments> b = Stream.builder();
    for (KvDType type : KvDType.values()) {
      for (int d : new int[] {8, 20, 64, 72, 128}) {
        for (int g : new int[] {1, 2, 3, 4, 5, 6, 7}) {
          b.add(Arguments.of(type, d, g));
        }
      }
    }
    return b.build();
  }

  /**
   * Every finite 16-bit pattern, widened by the vector helpers, equals the JDK's scalar conversion
   * bit for bit: normal and subnormal values, both zeros, both signs.
   */
  @Test
  void sixteenBitWideningIsExactForEveryFiniteValue() {
    int lanes = KvKernels.lanes();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment all = arena.allocate(2L * 65536, 64);
      for (int bits = 0; bits < 65536; bits++) {
        all.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, bits, (short) bits);
      }
      float[] got = new float[lanes];
      for (int from = 0; from < 65536; from += lanes) {
        KvKernels.loadF16(all, 2L * from).intoArray(got, 0);
        for (int i = 0; i < lanes; i++) {
          short bits = (short) (from + i);
          float expected = Float.float16ToFloat(bits);
          if (Float.isFinite(expected)) {
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(got[i]),
                () -> "float16 bits 0x" + Integer.toHexString(bits & 0xFFFF));
          }
        }
        KvKernels.loadBf16(all, 2L * from).intoArray(got, 0);
        for (int i = 0; i < lanes; i++) {
          int bits = from + i;
          assertEquals(bits << 16, Float.floatToRawIntBits(got[i]),
              () -> "bfloat16 bits 0x" + Integer.toHexString(bits));
        }
      }
    }
  }

  @ParameterizedTest(name = "{0} d={1} g={2}")
  @MethodSource("shapes")
  void kernelsMatchFloat64(KvDType type, int d, int g) {
    Random rnd = new Random(d * 31L + g * 7L + type.ordinal());
    int n = 77;
    VectorStore store = VectorStore.allocate(d, type, 8);
    float[] row = new float[d];
    for (int j = 0; j < n; j++) {
      for (int t = 0; t < d; t++) {
        // include float16 subnormals and negative zero-ish values
        row[t] = (float) (rnd.nextGaussian() * (t % 9 == 0 ? 1e-6 : 3));
      }
      store.append(row, 0);
    }
    float[][] stored = new float[n][];
    for (int j = 0; j < n; j++) {
      stored[j] = store.row(j);
    }
    float[] q = new float[g * d + 5];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) rnd.nextGaussian();
    }
    int qOff = 5;
    int from = 3;
    int rows = 60;
    int stride = 64;
    float[] out = new float[g * stride + 2];
    KvKernels.scores(store, from, rows, q, qOff, g, 0.5f, out, 2, stride);
    for (int h = 0; h < g; h++) {
      for (int j = 0; j < rows; j++) {
        double s = 0;
        for (int t = 0; t < d; t++) {
          s += (double) q[qOff + h * d + t] * stored[from + j][t];
        }
        assertEquals(0.5 * s, out[2 + h * stride + j], 1e-4 * (1 + Math.abs(s)), "score h=" + h + " j=" + j);
      }
    }

    float[] p = new float[g * stride];
    for (int i = 0; i < p.length; i++) {
      p[i] = rnd.nextFloat();
    }
    float[] o = new float[g * d + 1];
    for (int i = 0; i < o.length; i++) {
      o[i] = rnd.nextFloat();
    }
    float[] o0 = o.clone();
    KvKernels.accumulate(store, from, rows, p, 0, stride, g, o, 1);
    int[] ids = new int[rows];
    for (int i = 0; i < rows; i++) {
      ids[i] = rnd.nextInt(n);
    }
    float[] o2 = o0.clone();
    KvKernels.accumulateRows(store, ids, rows, p, 0, stride, g, o2, 1);
    for (int h = 0; h < g; h++) {
      for (int t = 0; t < d; t++) {
        double a = o0[1 + h * d + t];
        double b = o0[1 + h * d + t];
        for (int j = 0; j < rows; j++) {
          a += (double) p[h * stride + j] * stored[from + j][t];
          b += (double) p[h * stride + j] * stored[ids[j]][t];
        }
        assertEquals(a, o[1 + h * d + t], 1e-4 * (1 + Math.abs(a)));
        assertEquals(b, o2[1 + h * d + t], 1e-4 * (1 + Math.abs(b)));
      }
    }
    assertEquals(o0[0], o[0], 0f, "wrote before its offset");
    store.close();
  }

  @ParameterizedTest
  @MethodSource("lengths")
  void reductionsMatchFloat64(int n) {
    Random rnd = new Random(n);
    float[] x = new float[n + 3];
    float[] y = new float[n + 3];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian() * 4;
      y[i] = (float) rnd.nextGaussian();
    }
    double max = Double.NEGATIVE_INFINITY;
    double dot = 0;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[3 + i]);
      dot += (double) x[3 + i] * y[3 + i];
    }
    assertEquals(max, KvKernels.max(x, 3, n), 0);
    assertEquals(dot, KvKernels.dot(x, 3, y, 3, n), 1e-4 * (1 + Math.abs(dot)));
    float[] e = x.clone();
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(x[3 + i] - 1.5);
    }
    assertEquals(sum, KvKernels.expShifted(e, 3, n, 1.5f), 1e-5 * sum + 1e-30);
    for (int i = 0; i < n; i++) {
      assertEquals(Math.exp(x[3 + i] - 1.5), e[3 + i], 2e-6 * Math.exp(x[3 + i] - 1.5));
    }
    float[] z = y.clone();
    KvKernels.axpy(0.25f, x, 3, z, 3, n);
    for (int i = 0; i < n; i++) {
      assertEquals(y[3 + i] + 0.25 * x[3 + i], z[3 + i], 1e-5);
    }
    assertEquals(y[0], z[0]);
  }

  static Stream<Integer> lengths() {
    return Stream.of(1, 7, 16, 33, 100, 1000);
  }
}
