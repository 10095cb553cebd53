package org.retroinfer.serve;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Who a request is: the tenant that its API key names. With a key file, every request must carry
 * one of its keys ({@code Authorization: Bearer KEY}); without one, every request is the single
 * local tenant (the store's default tenant, as {@code retroinfer store} without {@code --tenant}).
 *
 * <p>The key file has one {@code KEY TENANT} pair per line ({@code #} starts a comment). The tenant
 * name is the tenant salt of the store, so {@code retroinfer store list --tenant TENANT} shows what
 * that tenant's requests stored. Several keys may name the same tenant.
 */
final class ApiKeys {
  /** The single tenant of a server without a key file: the store's default tenant. */
  static final String LOCAL = "";

  private final Map<String, String> tenantByKeyHash; // SHA-256 of the key -> tenant
  private final Path file;

  private ApiKeys(Map<String, String> tenantByKeyHash, Path file) {
    this.tenantByKeyHash = tenantByKeyHash;
    this.file = file;
  }

  /** No key file: one local tenant. */
  static ApiKeys none() {
    return new ApiKeys(null, null);
  }

  static ApiKeys read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("no API key file at " + file.toAbsolutePath()
          + "; give a file of 'KEY TENANT' lines, or no --api-keys for one local tenant");
    }
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    Map<String, String> map = new HashMap<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] parts = line.split("\\s+");
      if (parts.length != 2) {
        throw new IllegalArgumentException(file + " line " + (i + 1) + ": expected 'KEY TENANT'"
            + " (two words), got " + parts.length + " words");
      }
      String previous = map.put(hash(parts[0]), parts[1]);
      if (previous != null && !previous.equals(parts[1])) {
        throw new IllegalArgumentException(file + " line " + (i + 1) + ": this key was already"
            + " given to tenant " + previous + "; a key selects exactly one tenant");
      }
    }
    if (map.isEmpty()) {
      throw new IllegalArgumentException(file + " holds no 'KEY TENANT' line; add one, or give no"
          + " --api-keys for one local tenant");
    }
    return new ApiKeys(map, file);
  }

  boolean required() {
    return tenantByKeyHash != null;
  }

  int size() {
    return tenantByKeyHash == null ? 0 : tenantByKeyHash.size();
  }

  /** The tenant of a request's {@code Authorization} header (null when it has none). */
  String tenant(String authorization) {
    if (tenantByKeyHash == null) {
      return LOCAL;
    }
    if (authorization == null || authorization.isBlank()) {
      throw ApiError.unauthorized("no API key: send 'Authorization: Bearer KEY' with a key from"
          + " the server's key file");
    }
    String key = authorization.strip();
    if (key.regionMatches(true, 0, "Bearer ", 0, 7)) {
      key = key.substring(7).strip();
    }
    String tenant = tenantByKeyHash.get(hash(key));
    if (tenant == null) {
      throw ApiError.unauthorized("incorrect API key; use a key from the server's key file");
    }
    return tenant;
  }

  private static String hash(String key) {
    try {
      return java.util.HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
          .digest(key.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String toString() {
    return file == null ? "no API keys (one local tenant)" : size() + " API keys from " + file;
  }
}
