package org.retroinfer.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.eval.PythonCorpus;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/**
 * Checks of option values that every command runs before it loads anything. A failed check is a
 * usage error (exit code 2) whose message names the option as the user typed it, what it must be,
 * and the value given.
 */
final class Arguments {
  private Arguments() {}

  /** A usage error of this command. */
  static ParameterException invalid(CommandSpec spec, String format, Object... args) {
    return new ParameterException(spec.commandLine(), String.format(Locale.ROOT, format, args));
  }

  /** {@code value >= min}; {@code what} says what the option counts, e.g. "tokens". */
  static void atLeast(CommandSpec spec, String option, long value, long min, String what) {
    if (value < min) {
      throw invalid(spec, "%s must be at least %,d %s, got %d", option, min, what, value);
    }
  }

  /** {@code value} in [0, 1]. */
  static void fraction(CommandSpec spec, String option, double value) {
    if (!(value >= 0 && value <= 1)) {
      throw invalid(spec, "%s must be a fraction from 0 to 1, got %s", option, value);
    }
  }

  /** Methods as named on the command line, in any case (wave, WAVE, wave:5%). */
  static List<MethodSpec> methods(CommandSpec spec, String option, List<String> names) {
    List<MethodSpec> methods = new ArrayList<>();
    for (String name : names) {
      try {
        methods.add(MethodSpec.parse(name.toLowerCase(Locale.ROOT)));
      } catch (IllegalArgumentException e) {
        throw invalid(spec, "%s: %s", option, e.getMessage());
      }
    }
    if (methods.isEmpty()) {
      throw invalid(spec, "%s names no method", option);
    }
    return methods;
  }

  /** The haystack corpus of {@code --haystack} (reading it is cheap next to loading the model). */
  static PythonCorpus haystack(CommandSpec spec, String name) {
    try {
      return PythonCorpus.named(name);
    } catch (IllegalArgumentException e) {
      throw invalid(spec, "--haystack: %s", e.getMessage());
    }
  }

  /** A file the command will write at the end: its directory must exist now. */
  static void writable(CommandSpec spec, String option, Path file) {
    Path dir = file.toAbsolutePath().getParent();
    if (Files.isDirectory(file) || dir == null || !Files.isDirectory(dir)
        || !Files.isWritable(dir)) {
      throw invalid(spec, "%s %s cannot be written: %s", option, file,
          Files.isDirectory(file) ? "it is a directory" : "no writable directory " + dir);
    }
  }
}
