package org.retroinfer.store;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Objects;

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
   * {@code config} in a canonical text form (the application passes the parsed configuration
   * record's text, so reformatting config.json does not change it but changing any
   * hyper-parameter does). The store never reads a model itself.
   */
  public static ModelFingerprint of(String weightsSha256, String config) {
    Objects.requireNonNull(config, "config");
    if (weightsSha256 == null || !weightsSha256.matches("[0-9a-fA-F]{64}")) {
      throw new IllegalArgumentException("weights SHA-256 must be 64 hex digits, got '"
          + weightsSha256 + "'");
    }
    byte[] text = ("retroinfer.model.v1\nweights=" + weightsSha256.toLowerCase() + "\nconfig="
        + config + "\n").getBytes(StandardCharsets.UTF_8);
    return new ModelFingerprint(HexFormat.of().formatHex(Hashing.sha256(text)));
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
