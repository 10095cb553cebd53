package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** kill -9 in the middle of a put: the store opens at its last commit, nothing half-visible. */
class CrashSafetyTest {
  @TempDir Path dir;

  /** The two contexts both processes derive from one seed. */
  record Contexts(ModelFingerprint model, int[] a, float[][][] kvA, int[] b, float[][][] kvB) {
    static Contexts of(long seed) {
      SplittableRandom r = new SplittableRandom(seed);
      ModelFingerprint m = Synthetic.fingerprint(r);
      int[] a = Synthetic.tokens(r, 260);
      float[][][] kvA = Synthetic.kv(r, a.length);
      // B extends A's first 100 tokens: a half-visible B would also show up as a longer match
      int[] b = java.util.Arrays.copyOf(a, 300);
      System.arraycopy(Synthetic.tokens(r, 200), 0, b, 100, 200);
      float[][][] kvB = Synthetic.kv(r, b.length);
      return new Contexts(m, a, kvA, b, kvB);
    }
  }

  @Test
  void killedMidPutOpensAtTheLastCommit() throws Exception {
    long seed = Synthetic.seed();
    Process child = ChildJvm.of(CrashingWriter.class, dir.toString(), Long.toString(seed)).start();
    StringBuilder log = new StringBuilder();
    try (BufferedReader out = new BufferedReader(
        new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = out.readLine()) != null) {
        log.append(line).append('\n');
        if (line.equals("MID-PUT B")) {
          child.destroyForcibly(); // SIGKILL: no shutdown hooks, no close
          break;
        }
      }
    } finally {
      child.destroyForcibly();
      assertTrue(child.waitFor(60, TimeUnit.SECONDS));
    }
    assertTrue(log.toString().contains("COMMITTED A") && log.toString().contains("MID-PUT B"),
        "the child did not reach the middle of the second put:\n" + log);

    Contexts c = Contexts.of(seed);
    // Readers first (no lock), then a writer: both open at the last commit.
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      checkOnlyA(store, c);
    }
    try (ContextStore store = ContextStore.open(dir);
        ContextCache b = Synthetic.cache(c.kvB(), c.b().length)) {
      checkOnlyA(store, c);
      ContextStore.Scope scope = store.scope(c.model(), "", KvDType.BFLOAT16);
      scope.put("b", "prompt", c.b(), b, null, null);
      assertEquals(300, scope.find(c.b()).orElseThrow().matchedTokens());
      assertEquals(2, store.list().size());
    }
  }

  private static void checkOnlyA(ContextStore store, Contexts c) throws Exception {
    List<ContextInfo> all = store.list();
    assertEquals(1, all.size(), "only A is committed: " + all);
    assertEquals("a", all.get(0).name());
    ContextStore.Scope scope = store.scope(c.model(), "", KvDType.BFLOAT16);
    Optional<PrefixMatch> m = scope.find(c.b());
    assertEquals(100, m.orElseThrow().matchedTokens(), "B's prompt finds only A's shared 100 tokens");
    try (ReusedContext a = scope.load(all.get(0).id(), c.a(), c.a().length, false)) {
      assertEquals(c.a().length, a.cache().length(0));
      // the K/V are A's: compare a row with what was written
      float[] k = new float[Synthetic.SHAPE.headDim()];
      org.retroinfer.wave.WaveHeadCache h = (org.retroinfer.wave.WaveHeadCache) a.cache().head(1, 1);
      h.sinkKeys().read(2, k, 0);
      float[] expect = new float[k.length];
      for (int i = 0; i < k.length; i++) {
        expect[i] = KvDType.BFLOAT16.round(c.kvA()[0][1][2 * Synthetic.SHAPE.kvWidth()
            + Synthetic.SHAPE.headDim() + i]);
      }
      assertArrayEquals(expect, k);
    }
  }
}
