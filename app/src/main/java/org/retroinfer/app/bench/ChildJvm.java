package org.retroinfer.app.bench;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts a child JVM from this test's classpath with this JVM's flags (the root pom's
 * retroinfer.jvm.flags, which surefire passed us: Vector API, Chronicle's exports and opens,
 * {@code -Dchronicle.analytics.disable=true}).
 */
public final class ChildJvm {
  private ChildJvm() {}

  public static ProcessBuilder of(Class<?> main, String... args) {
    return of(System.getProperty("java.class.path"), main.getName(), args);
  }

  /** A child JVM running {@code mainClass} from {@code classPath} (e.g. another build's jar). */
  public static ProcessBuilder of(String classPath, String mainClass, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-") || a.startsWith("--enable-native-access")
          || a.startsWith("--sun-misc") || a.startsWith("-Dchronicle") || a.startsWith("-Xss")) {
        cmd.add(a);
      }
    }
    if (cmd.stream().noneMatch(a -> a.startsWith("-Dchronicle.analytics.disable"))) {
      cmd.add("-Dchronicle.analytics.disable=true");
    }
    cmd.add("-cp");
    cmd.add(classPath);
    cmd.add(mainClass);
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd).redirectErrorStream(true);
  }
}
