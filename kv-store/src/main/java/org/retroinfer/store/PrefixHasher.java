package org.retroinfer.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Objects;
import org.retroinfer.wave.kv.KvDType;

/**
 * Prefix keys as in vLLM's and LMCache's prefix caches: a prompt is cut into chunks of
 * {@link #chunkTokens()} token ids and chunk {@code i} is keyed by
 * {@code h_i = SHA-256(h_(i-1) || ids of chunk i)}, so a key names the whole prefix up to the end
 * of its chunk, not just the chunk. The chain starts from a seed that hashes the model fingerprint,
 * the K/V storage type, the chunk size and the tenant salt: the same tokens under another model or
 * another tenant give unrelated keys.
 *
 * <p>Only whole chunks are keyed (a prompt shorter than one chunk has no key). A key match is a
 * claim, not a proof: the store verifies every hit against the stored token ids.
 *
 * <p>The tenant salt is hashed into the seed and never stored; {@link #namespace()} (the seed) is
 * what the store records.
 */
public final class PrefixHasher {
  /** The default chunk: 256 tokens, as in vLLM / LMCache. */
  public static final int DEFAULT_CHUNK_TOKENS = 256;

  private final byte[] seed;
  private final int chunkTokens;

  /**
   * @param tenantSalt a secret per tenant, or "" for none
   */
  public PrefixHasher(ModelFingerprint model, String tenantSalt, KvDType kvType, int chunkTokens) {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(tenantSalt, "tenantSalt (use \"\" for no tenant)");
    Objects.requireNonNull(kvType, "kvType");
    if (chunkTokens < 1) {
      throw new IllegalArgumentException("chunk size must be at least 1 token, got " + chunkTokens);
    }
    this.chunkTokens = chunkTokens;
    MessageDigest md = Hashing.sha256();
    byte[] salt = tenantSalt.getBytes(StandardCharsets.UTF_8);
    // Length-prefixed fields: no two (model, type, chunk, salt) tuples share a byte string.
    md.update(("retroinfer.prefix.v1\nmodel=" + model.hex() + "\nkv=" + kvType.name() + "\nchunk="
        + chunkTokens + "\nsalt=" + salt.length + ":").getBytes(StandardCharsets.UTF_8));
    md.update(salt);
    this.seed = md.digest();
  }

  public int chunkTokens() {
    return chunkTokens;
  }

  /** The chain's seed in hex: what a stored context records as its namespace. */
  public String namespace() {
    return HexFormat.of().formatHex(seed);
  }

  /** Whole chunks in a prompt of {@code tokens} tokens. */
  public int chunks(int tokens) {
    return tokens / chunkTokens;
  }

  /** Hex keys of every whole chunk of {@code tokens}: {@code [i]} names {@code tokens[0, (i+1) * chunk)}. */
  public String[] chain(int[] tokens) {
    return chain(tokens, tokens.length);
  }

  /** Hex keys of the whole chunks of {@code tokens[0, length)}. */
  public String[] chain(int[] tokens, int length) {
    if (length < 0 || length > tokens.length) {
      throw new IllegalArgumentException("length " + length + " outside [0, " + tokens.length + "]");
    }
    int n = chunks(length);
    String[] out = new String[n];
    byte[] prev = seed;
    ByteBuffer buf = ByteBuffer.allocate(chunkTokens * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    MessageDigest md = Hashing.sha256();
    for (int i = 0; i < n; i++) {
      buf.clear();
      for (int t = i * chunkTokens; t < (i + 1) * chunkTokens; t++) {
        buf.putInt(tokens[t]);
      }
      md.update(prev);
      md.update(buf.array(), 0, buf.position());
      prev = md.digest();
      out[i] = HexFormat.of().formatHex(prev);
    }
    return out;
  }
}
