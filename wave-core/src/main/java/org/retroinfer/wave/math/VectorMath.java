package org.retroinfer.wave.math;

import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Links the Vector API's math routines once per JVM, in a way that does not depend on the user's
 * locale.
 *
 * <p>JDK 25's Vector API finds its native math routines (Intel's SVML, in the JDK) by a name that it
 * formats with {@link String#format} in the default locale. Where that locale writes other digits
 * than ASCII (Arabic, {@code ar-SA}; Thai with Thai digits, {@code th-TH-u-nu-thai}; Persian;
 * ...), the name is wrong and the first {@code EXP} fails with {@code InternalError: not supported:
 * EXP Species[float, 16, S_512_BIT] __jsvml_expf١٦_ha_z0}: softmax, and with it attention, would
 * fail for those users. A routine found once stays linked for the JVM, so {@link #link} finds the
 * ones this project uses under the root locale, before any kernel runs: the kernels' classes call
 * it when they load.
 */
public final class VectorMath {
  private static volatile boolean linked;

  private VectorMath() {}

  /** Links EXP on the preferred float species (idempotent, thread-safe). */
  public static void link() {
    if (linked) {
      return;
    }
    synchronized (VectorMath.class) {
      if (linked) {
        return;
      }
      boolean asciiDigits = String.format("%d", 16).equals("16");
      Locale format = Locale.getDefault(Locale.Category.FORMAT);
      if (!asciiDigits) {
        Locale.setDefault(Locale.Category.FORMAT, Locale.ROOT);
      }
      try {
        FloatVector.broadcast(FloatVector.SPECIES_PREFERRED, 0f).lanewise(VectorOperators.EXP);
      } finally {
        if (!asciiDigits) {
          Locale.setDefault(Locale.Category.FORMAT, format);
        }
      }
      linked = true;
    }
  }
}
