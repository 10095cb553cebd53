package org.retroinfer.store;

/**
 * Chronicle libraries send usage analytics over the network when their first classes initialise,
 * unless {@code chronicle.analytics.disable} is set. This project never talks to the network, so the
 * property is set here, in code, before any Chronicle class is touched, in addition to the
 * {@code -Dchronicle.analytics.disable=true} JVM flag. Every class that uses Chronicle calls
 * {@link #apply()} from its static initializer.
 */
public final class ChronicleSettings {
  static {
    System.setProperty("chronicle.analytics.disable", "true");
  }

  private ChronicleSettings() {}

  /** Makes sure the property is set (the work is done once, by this class's initializer). */
  public static void apply() {
    // the static initializer above has run by the time this method executes
  }
}
