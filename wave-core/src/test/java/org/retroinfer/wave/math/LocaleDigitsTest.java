package org.retroinfer.wave.math;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Wave attention's softmax in a JVM whose default locale writes non-ASCII digits: JDK 25's Vector
 * API would fail its first EXP there ({@link VectorMath}). Each case is a fresh JVM (a routine
 * linked once stays linked, so the test JVM cannot show it) started with the user's locale, whose
 * kernels must give the same softmax as in the root locale.
 */
class LocaleDigitsTest {
  /** Runs a softmax through the kernels; prints its sum and the locale's digits. */
  public static void main(String[] args) {
    float[] x = new float[100];
    for (int i = 0; i < x.length; i++) {
      x[i] = (i % 17) * 0.25f - 2f;
    }
    float sum = KvKernels.expShifted(x, 0, x.length, 2f);
    System.out.println(String.format("%d", 16) + " " + Float.floatToIntBits(sum));
  }

  @ParameterizedTest
  @ValueSource(strings = {"ar-SA", "th-TH-u-nu-thai", "fa-IR", "en-US"})
  void kernelsRunInALocaleWithOtherDigits(String tag) throws Exception {
    String root = run("und");
    String other = run(tag);
    assertEquals(root.split(" ")[1], other.split(" ")[1], tag + ": the same softmax sum");
    if (!tag.equals("en-US")) {
      assertTrue(!other.split(" ")[0].equals("16"), tag + " writes other digits (" + other
          + "): the case tests nothing otherwise");
    }
  }

  private static String run(String tag) throws IOException, InterruptedException {
    Locale l = Locale.forLanguageTag(tag);
    List<String> cmd = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "--add-modules=jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
        "-Duser.language=" + l.getLanguage(), "-Duser.country=" + l.getCountry()));
    if (l.getUnicodeLocaleType("nu") != null) {
      cmd.add("-Duser.extensions=u-nu-" + l.getUnicodeLocaleType("nu"));
    }
    cmd.add(LocaleDigitsTest.class.getName());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the JVM did not end");
    assertEquals(0, p.exitValue(), tag + ": " + out);
    String[] lines = out.split("\n");
    return lines[lines.length - 1].trim();
  }
}
