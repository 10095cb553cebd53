package org.retroinfer.model;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.retroinfer.model.safetensors.CheckpointException;

/**
 * A Hugging Face style checkpoint directory: {@code config.json}, {@code model.safetensors}, and
 * optionally {@code SHA256SUMS} (lines of {@code <sha256>  <file>}, as written by
 * {@code sha256sum}) and {@code reference.json}.
 *
 * <p>{@link #verify()} checks every file listed in {@code SHA256SUMS}, and for the model shipped with
 * the project ({@link #shipped()}) also the weights' hash that the code itself carries, so a corrupt
 * or swapped checkpoint fails at load with a message saying how to restore it.
 */
public final class ModelDirectory {
  /** Where the shipped model lives, relative to the project root. */
  public static final String SHIPPED_PATH = "models/bytecode-llama-10m";
  /** SHA-256 of the shipped {@code model.safetensors} (also in its MODEL_CARD.md and SHA256SUMS). */
  public static final String SHIPPED_SHA256 =
      "5629b8fdfd29ab3ab01ddead1cc2617eb24be0853bf8b0e2118088586fedf3e7";

  private final Path dir;
  private final String expectedWeightsSha256;

  private ModelDirectory(Path dir, String expectedWeightsSha256) {
    this.dir = dir;
    this.expectedWeightsSha256 = expectedWeightsSha256;
  }

  /** A checkpoint directory; it must hold config.json and model.safetensors. */
  public static ModelDirectory of(Path dir) {
    return of(dir, null);
  }

  /** A checkpoint directory whose weights must have the given SHA-256 (hex), or null for any. */
  public static ModelDirectory of(Path dir, String expectedWeightsSha256) {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException("model directory " + dir.toAbsolutePath() + " does not exist;"
          + " pass the directory that holds config.json and model.safetensors");
    }
    for (String f : new String[] {"config.json", "model.safetensors"}) {
      if (!Files.isRegularFile(dir.resolve(f))) {
        throw new CheckpointException("model directory " + dir.toAbsolutePath() + " has no " + f
            + " (it holds " + list(dir) + "); a Hugging Face checkpoint has config.json and"
            + " model.safetensors");
      }
    }
    return new ModelDirectory(dir, expectedWeightsSha256);
  }

  /**
   * The model shipped with the project, found (in this order) at the system property
   * {@code retroinfer.model}, at {@code <retroinfer.home>/models/bytecode-llama-10m}, or in
   * {@code models/bytecode-llama-10m} of the working directory, the code's location, or any of their
   * parents.
   */
  public static ModelDirectory shipped() {
    List<Path> tried = new ArrayList<>();
    String explicit = System.getProperty("retroinfer.model");
    if (explicit != null) {
      return of(Path.of(explicit), null);
    }
    List<Path> roots = new ArrayList<>();
    String home = System.getProperty("retroinfer.home");
    if (home != null) {
      roots.add(Path.of(home));
    }
    roots.add(Path.of("").toAbsolutePath());
    try {
      var src = ModelDirectory.class.getProtectionDomain().getCodeSource();
      if (src != null) {
        roots.add(Path.of(src.getLocation().toURI()).toAbsolutePath());
      }
    } catch (URISyntaxException | SecurityException | IllegalArgumentException e) {
      // an unusual class loader: the other roots still apply
    }
    for (Path root : roots) {
      for (Path p = root; p != null; p = p.getParent()) {
        Path candidate = p.resolve(SHIPPED_PATH);
        tried.add(candidate);
        if (Files.isRegularFile(candidate.resolve("model.safetensors"))) {
          return of(candidate, SHIPPED_SHA256);
        }
      }
    }
    throw new CheckpointException("cannot find the shipped model " + SHIPPED_PATH + " (looked in "
        + tried.subList(0, Math.min(6, tried.size())) + (tried.size() > 6 ? " ..." : "")
        + "); run from the project checkout, or pass --model DIR / -Dretroinfer.model=DIR");
  }

  public Path path() {
    return dir;
  }

  public Path config() {
    return dir.resolve("config.json");
  }

  public Path weights() {
    return dir.resolve("model.safetensors");
  }

  /** {@code reference.json} (conformance data), which may not exist. */
  public Path reference() {
    return dir.resolve("reference.json");
  }

  /**
   * Checks the SHA-256 of every file listed in {@code SHA256SUMS} and, if this directory was created
   * with an expected hash, of {@code model.safetensors}. Returns the files checked.
   *
   * @throws CheckpointException on a mismatch or a listed file that is missing
   */
  public List<String> verify() throws IOException {
    Map<String, String> expected = new LinkedHashMap<>();
    Path sums = dir.resolve("SHA256SUMS");
    if (Files.isRegularFile(sums)) {
      for (String line : Files.readAllLines(sums)) {
        String l = line.strip();
        if (l.isEmpty() || l.startsWith("#")) {
          continue;
        }
        String[] parts = l.split("\\s+\\*?", 2);
        if (parts.length != 2 || !parts[0].matches("[0-9a-fA-F]{64}")) {
          throw new CheckpointException(sums + ": cannot read line '" + line
              + "'; expected '<64 hex digits>  <file name>' as sha256sum writes it");
        }
        expected.put(parts[1], parts[0].toLowerCase());
      }
    }
    if (expectedWeightsSha256 != null) {
      String listed = expected.get("model.safetensors");
      if (listed != null && !listed.equals(expectedWeightsSha256)) {
        throw new CheckpointException(sums + " lists model.safetensors as " + listed
            + " but this model is known as " + expectedWeightsSha256
            + "; the directory was modified: restore it with git checkout -- " + dir);
      }
      expected.put("model.safetensors", expectedWeightsSha256);
    }
    List<String> checked = new ArrayList<>();
    for (Map.Entry<String, String> e : expected.entrySet()) {
      Path f = dir.resolve(e.getKey());
      if (!Files.isRegularFile(f)) {
        throw new CheckpointException(f + " is listed in SHA256SUMS but missing; restore the model"
            + " directory");
      }
      String actual = sha256(f);
      if (!actual.equals(e.getValue())) {
        throw new CheckpointException("sha256 of " + f + " is " + actual + ", expected "
            + e.getValue() + "; the file is corrupt, truncated or was replaced (a Git LFS pointer?):"
            + " restore it (git checkout -- " + f + ") or copy the checkpoint again");
      }
      checked.add(e.getKey());
    }
    return checked;
  }

  /** Hex SHA-256 of a file. */
  public static String sha256(Path file) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
    byte[] buf = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static List<String> list(Path dir) {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().limit(10).toList();
    } catch (IOException e) {
      return List.of("?");
    }
  }

  @Override
  public String toString() {
    return dir.toString();
  }
}
