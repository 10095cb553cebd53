package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.kv.KvDType;

class PrefixHasherTest {

  /** The chain written out by hand with the JDK's digest: seed, then h_i = H(h_(i-1) || ids). */
  static String[] reference(ModelFingerprint m, String salt, KvDType type, int chunk, int[] t)
      throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    byte[] saltBytes = salt.getBytes(StandardCharsets.UTF_8);
    md.update(("retroinfer.prefix.v1\nmodel=" + m.hex() + "\nkv=" + type + "\nchunk=" + chunk
        + "\nsalt=" + saltBytes.length + ":").getBytes(StandardCharsets.UTF_8));
    md.update(saltBytes);
    byte[] h = md.digest();
    String[] out = new String[t.length / chunk];
    for (int i = 0; i < out.length; i++) {
      md.update(h);
      for (int j = i * chunk; j < (i + 1) * chunk; j++) {
        md.update(new byte[] {(byte) t[j], (byte) (t[j] >>> 8), (byte) (t[j] >>> 16),
            (byte) (t[j] >>> 24)});
      }
      h = md.digest();
      out[i] = HexFormat.of().formatHex(h);
    }
    return out;
  }

  @Test
  void chainMatchesTheSpecAndNamesWholePrefixes() throws Exception {
    SplittableRandom r = new SplittableRandom(Synthetic.seed());
    ModelFingerprint m = Synthetic.fingerprint(r);
    int[] t = Synthetic.tokens(r, 100);
    PrefixHasher h = new PrefixHasher(m, "salt", KvDType.BFLOAT16, 16);
    String[] chain = h.chain(t);
    assertEquals(6, chain.length, "only whole chunks");
    assertArrayEquals(reference(m, "salt", KvDType.BFLOAT16, 16, t), chain);
    // a prefix's chain is the prefix of the chain; a change anywhere changes every later key
    assertArrayEquals(Arrays.copyOf(chain, 3), h.chain(Arrays.copyOf(t, 50)));
    int[] u = t.clone();
    u[20] ^= 1;
    String[] cu = h.chain(u);
    assertEquals(chain[0], cu[0]);
    for (int i = 1; i < chain.length; i++) {
      assertNotEquals(chain[i], cu[i]);
    }
    // every part of the seed separates namespaces
    Set<String> firsts = new HashSet<>();
    for (PrefixHasher x : List.of(h, new PrefixHasher(m, "", KvDType.BFLOAT16, 16),
        new PrefixHasher(m, "salt2", KvDType.BFLOAT16, 16),
        new PrefixHasher(m, "salt", KvDType.FLOAT32, 16),
        new PrefixHasher(Synthetic.fingerprint(r), "salt", KvDType.BFLOAT16, 16))) {
      firsts.add(x.chain(t)[0]);
      firsts.add(x.namespace());
    }
    assertEquals(10, firsts.size());
    assertThrows(IllegalArgumentException.class, () -> new PrefixHasher(m, "", KvDType.FLOAT32, 0));
  }

  @Test
  void fingerprintCoversWeightsAndConfig() {
    String c = "LlamaConfig[hidden=384, ropeTheta=500000.0]";
    String other = "LlamaConfig[hidden=384, ropeTheta=10000.0]";
    String w = "ab".repeat(32);
    ModelFingerprint f = ModelFingerprint.of(w, c);
    assertEquals(f, ModelFingerprint.of(w.toUpperCase(), c));
    assertNotEquals(f, ModelFingerprint.of("ac".repeat(32), c));
    assertNotEquals(f, ModelFingerprint.of(w, other));
    assertThrows(IllegalArgumentException.class, () -> ModelFingerprint.of("abc", c));
    assertThrows(IllegalArgumentException.class, () -> new ModelFingerprint("XYZ"));
  }
}
