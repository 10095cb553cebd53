package org.retroinfer.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Objects;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.LlamaConfig;

/**
 * What identifies a model for the store: the SHA-256 of its weights file together with its parsed
 * configuration. Two checkpoints share a fingerprint only if they have the same weights bytes and the
 * same hyper-parameters, so K/V computed by one are never served to the other.
 *
 * @param hex 64 lower-case hex digits
 */
public record ModelFingerprint(String hex) {

  public ModelFingerprint {
    Objects.requireNonNull(hex, "hex");
    if (!hex.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException("a model fingerprint is 64 lower-case hex digits, got '"
          + hex + "'");
    }
  }

  /**
   * The fingerprint of weights with SHA-256 {@code weightsSha256} (hex) and configuration
   * {@code config}. The configuration enters in its canonical form (the parsed record), so
   * reformatting config.json does not change it but changing any hyper-parameter does.
   */
  public static ModelFingerprint of(String weightsSha256, LlamaConfig config) {
    Objects.requireNonNull(config, "config");
    if (weightsSha256 == null || !weightsSha256.matches("[0-9a-fA-F]{64}")) {
      throw new IllegalArgumentException("weights SHA-256 must be 64 hex digits, got '"
          + weightsSha256 + "'");
    }
    byte[] text = ("retroinfer.model.v1\nweights=" + weightsSha256.toLowerCase() + "\nconfig="
        + config + "\n").getBytes(StandardCharsets.UTF_8);
    return new ModelFingerprint(HexFormat.of().formatHex(Hashing.sha256(text)));
  }

  /** The fingerprint of a checkpoint directory: hashes its weights file and reads its config. */
  public static ModelFingerprint of(ModelDirectory dir) throws IOException {
    return of(ModelDirectory.sha256(dir.weights()), LlamaConfig.read(dir.config()));
  }

  /** The first 12 hex digits, for listings. */
  public String shortHex() {
    return hex.substring(0, 12);
  }

  @Override
  public String toString() {
    return hex;
  }
}
