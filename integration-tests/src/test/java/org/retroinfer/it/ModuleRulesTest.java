package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The module rules of the README ("Modules"), checked on every main source file of the build: which
 * of our modules a module's code may use (through imports and fully qualified names), and that no
 * main code outside wave-core names {@code WaveHeadCache} (it goes through {@code HeadLayout}).
 * Tests may use more, but only what {@link #TEST_EXTRAS} lists, each with its reason: the rules are
 * about what ships, and a test-scoped dependency on a module above is named here, not slipped in.
 */
class ModuleRulesTest {
  /** Module -> the modules of ours its main code may use (itself always). */
  static final Map<String, Set<String>> ALLOWED = Map.of(
      "wave-core", Set.of(),
      "lucene-codec", Set.of("wave-core"),
      "kv-store", Set.of("lucene-codec", "wave-core"),
      "model", Set.of("wave-core"),
      "gpu-attention", Set.of("wave-core"),
      "app", Set.of("wave-core", "model", "lucene-codec", "kv-store", "gpu-attention"),
      "serve", Set.of("wave-core", "model", "kv-store", "app"),
      "cli", Set.of("wave-core", "model", "lucene-codec", "kv-store", "gpu-attention", "app",
          "serve"),
      "benchmarks", Set.of("wave-core"),
      // wave-core: the types of lucene-codec's API it maps (KvDType, AttentionShape of a context)
      "opensearch-plugin", Set.of("kv-store", "lucene-codec", "wave-core"));

  /**
   * Module -> the modules of ours its tests use beyond what its main code may: test data and
   * references from the model, and the commands that opensearch-plugin's tests run against the real
   * cluster they start once (the test-scoped dependencies in the modules' poms).
   */
  static final Map<String, Set<String>> TEST_EXTRAS = Map.of(
      // the shipped model's data as test input
      "lucene-codec", Set.of("model"),
      "gpu-attention", Set.of("model"),
      // the store commands (app) and two `retroinfer serve` instances against the real cluster
      "opensearch-plugin", Set.of("model", "app", "serve"));

  private static final Pattern REFERENCE = Pattern.compile("\\borg\\.retroinfer\\.([a-z]+)\\b");

  @Test
  void everyModuleUsesOnlyWhatItsRuleAllows() {
    Path root = Path.of("").toAbsolutePath().getParent();
    assertTrue(Files.isRegularFile(root.resolve("pom.xml")), "the project root is " + root);
    List<String> violations = check(root);
    assertEquals(List.of(), violations, "module rules broken (README, \"Modules\")");
    // every module with main code has a rule
    for (String module : modules(root)) {
      assertTrue(ALLOWED.containsKey(module), "module " + module + " has no rule here; add one"
          + " (and draw it in the README)");
    }
  }

  @Test
  void everyModulesTestsUseOnlyItsRuleAndItsListedExtras() {
    Path root = Path.of("").toAbsolutePath().getParent();
    Map<String, Set<String>> allowed = new TreeMap<>();
    for (Map.Entry<String, Set<String>> e : ALLOWED.entrySet()) {
      Set<String> s = new java.util.TreeSet<>(e.getValue());
      s.addAll(TEST_EXTRAS.getOrDefault(e.getKey(), Set.of()));
      allowed.put(e.getKey(), s);
    }
    assertEquals(List.of(), check(root, "src/test/java", allowed),
        "a module's tests use one of ours that neither its rule nor TEST_EXTRAS allows");
  }

  @Test
  void aBrokenRuleIsReported(@TempDir Path root) throws IOException {
    write(root, "wave-core", "org/retroinfer/wave/A.java",
        "package org.retroinfer.wave;\nclass A {}\n");
    write(root, "model", "org/retroinfer/model/M.java",
        "package org.retroinfer.model;\nclass M {}\n");
    write(root, "kv-store", "org/retroinfer/store/S.java",
        "package org.retroinfer.store;\nimport org.retroinfer.model.M;\nimport org.retroinfer.wave"
            + ".A;\nclass S { Object w = (org.retroinfer.wave.WaveHeadCache) null; }\n");
    List<String> violations = check(root);
    assertEquals(2, violations.size(), violations.toString());
    assertTrue(violations.get(0).contains("kv-store") && violations.get(0).contains("model"),
        violations.toString());
    assertTrue(violations.get(1).contains("WaveHeadCache"), violations.toString());
  }

  @Test
  void aTestUsingAModuleNotListedIsReported(@TempDir Path root) throws IOException {
    write(root, "serve", "org/retroinfer/serve/S.java", "package org.retroinfer.serve;\nclass S {}\n");
    write(root, "cli", "org/retroinfer/cli/C.java", "package org.retroinfer.cli;\nclass C {}\n");
    write(root, "opensearch-plugin", "org/retroinfer/opensearch/P.java",
        "package org.retroinfer.opensearch;\nclass P {}\n");
    Path test = root.resolve("opensearch-plugin/src/test/java/org/retroinfer/opensearch/T.java");
    Files.createDirectories(test.getParent());
    Files.writeString(test, "package org.retroinfer.opensearch;\nimport org.retroinfer.serve.S;\n"
        + "class T { Object c = (org.retroinfer.cli.C) null; }\n");
    Map<String, Set<String>> rules = Map.of("opensearch-plugin", Set.of("serve"));
    List<String> violations = check(root, "src/test/java", rules);
    assertEquals(1, violations.size(), violations.toString());
    assertTrue(violations.get(0).contains("opensearch-plugin uses cli"), violations.toString());
  }

  private static void write(Path root, String module, String file, String text) throws IOException {
    Path p = root.resolve(module).resolve("src/main/java").resolve(file);
    Files.createDirectories(p.getParent());
    Files.writeString(p, text);
  }

  /** The modules with main Java code under {@code root}. */
  static List<String> modules(Path root) {
    try (Stream<Path> dirs = Files.list(root)) {
      return dirs.filter(d -> Files.isDirectory(d.resolve("src/main/java")))
          .map(d -> d.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The rule violations in the main code under {@code root}, one line each. */
  static List<String> check(Path root) {
    return check(root, "src/main/java", ALLOWED);
  }

  /**
   * The rule violations in the sources under each module's {@code sources} folder, one line each;
   * which module owns a package is read from the main code.
   */
  static List<String> check(Path root, String sources, Map<String, Set<String>> rules) {
    // which module owns each of our top-level packages (org.retroinfer.X), from where its files are
    Map<String, String> owner = new TreeMap<>();
    Map<Path, String> files = new TreeMap<>();
    for (String module : modules(root)) {
      Path src = root.resolve(module).resolve("src/main/java");
      try (Stream<Path> walk = Files.walk(src)) {
        walk.filter(f -> f.toString().endsWith(".java")).forEach(f -> {
          files.put(f, module);
          Path rel = src.relativize(f);
          if (rel.getNameCount() > 3 && rel.getName(0).toString().equals("org")
              && rel.getName(1).toString().equals("retroinfer")) {
            owner.putIfAbsent(rel.getName(2).toString(), module);
          }
        });
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    List<String> violations = new ArrayList<>();
    if (!sources.equals("src/main/java")) {
      files.clear();
      for (String module : modules(root)) {
        Path src = root.resolve(module).resolve(sources);
        if (!Files.isDirectory(src)) {
          continue;
        }
        try (Stream<Path> walk = Files.walk(src)) {
          walk.filter(f -> f.toString().endsWith(".java")).forEach(f -> files.put(f, module));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
    for (Map.Entry<Path, String> e : files.entrySet()) {
      String module = e.getValue();
      String text;
      try {
        text = Files.readString(e.getKey());
      } catch (IOException x) {
        throw new UncheckedIOException(x);
      }
      Set<String> allowed = rules.getOrDefault(module, Set.of());
      Set<String> seen = new java.util.TreeSet<>();
      Matcher m = REFERENCE.matcher(text);
      while (m.find()) {
        String used = owner.get(m.group(1));
        if (used != null && !used.equals(module) && !allowed.contains(used) && seen.add(used)) {
          violations.add(root.relativize(e.getKey()) + ": " + module + " uses " + used
              + " (org.retroinfer." + m.group(1) + "), which its rule does not allow; " + module
              + " may use " + (allowed.isEmpty() ? "none of our modules" : allowed));
        }
      }
      if (sources.equals("src/main/java") && !module.equals("wave-core")
          && text.contains("WaveHeadCache")) {
        violations.add(root.relativize(e.getKey()) + ": names WaveHeadCache outside wave-core;"
            + " read and rebuild wave caches through HeadLayout");
      }
    }
    return violations;
  }
}
