package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.lucene.ContextWriter;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

class ContextStoreTest {
  @TempDir Path dir;

  @Test
  void exactHitAttendsBitForBitLikeTheCacheThatWasPut() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int n = 300;
    int[] tokens = Synthetic.tokens(r, n);
    float[][][] kv = Synthetic.kv(r, n);
    float[] logits = Synthetic.queries(r);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache original = Synthetic.cache(kv, n)) {
      ContextStore.Scope scope = store.scope(Synthetic.fingerprint(r), "", KvDType.BFLOAT16);
      ContextInfo info = scope.put("a", "prompt", tokens, original, logits, null);
      assertEquals(n, info.tokens());
      assertTrue(info.hasLogits());

      PrefixMatch m = scope.find(tokens).orElseThrow();
      assertTrue(m.exact(), "seed " + seed);
      try (ReusedContext reused = (scope.load(m.context().id(), tokens, n, false))) {
        assertArrayEquals(logits, reused.logits());
        float[] q = Synthetic.queries(r);
        float[] a = new float[q.length];
        float[] b = new float[q.length];
        for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
          original.attend(l, q, a);
          reused.cache().attend(l, q, b);
          assertArrayEquals(a, b, "layer " + l + ", seed " + seed);
        }
      }
    }
  }

  /**
   * find() against a brute-force reference over every stored context: the longest common prefix
   * with the prompt among the contexts that share at least one whole chunk, ties to the shorter
   * context. The contexts branch off one another at random points, so prompts share keys with
   * several of them at different lengths.
   */
  @Test
  void findReturnsTheLongestVerifiedPrefixAmongManyContexts() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int c = Synthetic.CHUNK;
    int[] base = Synthetic.tokens(r, 12 * c);
    float[][][] kv = Synthetic.kv(r, 12 * c);
    List<int[]> stored = new java.util.ArrayList<>();
    try (ContextStore store = ContextStore.open(dir, c)) {
      ContextStore.Scope scope = store.scope(Synthetic.fingerprint(r), "", KvDType.BFLOAT16);
      for (int k = 0; k < 6; k++) {
        int n = c + r.nextInt(11 * c); // at least one whole chunk
        int[] tokens = Arrays.copyOf(base, n);
        int branch = r.nextInt(n + 1); // diverges from the base here (n: not at all)
        for (int i = branch; i < n; i++) {
          tokens[i] = r.nextInt(256);
        }
        try (ContextCache cache = Synthetic.cache(kv, n)) {
          scope.put("c" + k, "prompt", tokens, cache, null, null);
        }
        stored.add(tokens);
      }
      for (int trial = 0; trial < 40; trial++) {
        int n = 1 + r.nextInt(12 * c);
        int[] prompt = Arrays.copyOf(trial % 3 == 0 ? stored.get(r.nextInt(6)) : base, n);
        prompt = Arrays.copyOf(prompt, n);
        int branch = r.nextInt(n + 1);
        for (int i = branch; i < n; i++) {
          prompt[i] = r.nextInt(256);
        }
        int bestMatch = 0;
        int bestTokens = Integer.MAX_VALUE;
        for (int[] t : stored) {
          int m = Arrays.mismatch(t, prompt);
          m = m < 0 ? t.length : Math.min(m, Math.min(t.length, prompt.length));
          if (m >= c && (m > bestMatch || (m == bestMatch && t.length < bestTokens))) {
            bestMatch = m;
            bestTokens = t.length;
          }
        }
        Optional<PrefixMatch> found = scope.find(prompt);
        String where = "seed " + seed + ", trial " + trial;
        if (bestMatch == 0) {
          assertEquals(Optional.empty(), found, where);
        } else {
          PrefixMatch m = found.orElseThrow(() -> new AssertionError("nothing found; " + where));
          assertEquals(bestMatch, m.matchedTokens(), where);
          assertEquals(bestTokens, m.context().tokens(), where);
        }
      }
    }
  }

  @Test
  void partialMatchKeepsWholeSegmentsAndRebuildsTheCutOne() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    // every cluster retrieved: wave attention is then exact, to compare with a float64 reference
    WaveConfig exact = Synthetic.CONFIG.toBuilder().retrievalFraction(1).estimationFraction(0).build();
    int n = 400;
    int[] tokens = Synthetic.tokens(r, n);
    float[][][] kv = Synthetic.kv(r, n);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache original = Synthetic.cache(kv, n, exact)) {
      ContextStore.Scope scope = store.scope(Synthetic.fingerprint(r), "", KvDType.BFLOAT16);
      scope.put("", "prompt", tokens, original, null, null);
      WaveHeadCache head0 = (WaveHeadCache) original.head(0, 0);
      // a prompt that diverges inside the second wave segment
      int cut = head0.index().segmentFirstPosition(1) + head0.index().segmentTokens(1) / 2;
      int[] prompt = Arrays.copyOf(tokens, cut + 40);
      for (int i = cut; i < prompt.length; i++) {
        prompt[i] = (tokens[i] + 1 + r.nextInt(255)) % 256;
      }
      PrefixMatch m = scope.find(prompt).orElseThrow();
      assertEquals(cut, m.matchedTokens(), "the hash chain matches whole chunks, then the match is"
          + " extended token by token; seed " + seed);
      assertThrows(IllegalArgumentException.class,
          () -> scope.load(m.context().id(), prompt, cut + 1, true));
      try (ReusedContext reused = (scope.load(m.context().id(), prompt, cut, true))) {
        ContextCache c = reused.cache();
        for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
          for (int h = 0; h < Synthetic.SHAPE.kvHeads(); h++) {
            WaveHeadCache w = (WaveHeadCache) c.head(l, h);
            assertEquals(cut, w.size());
            assertEquals(1, w.index().segmentCount(), "only the first segment lies wholly inside");
            assertFalse(w.prefillDone());
          }
        }
        // append fresh tokens (the rest of the prompt), end the prefill: the tail is clustered
        float[][][] extra = Synthetic.kv(r, 40);
        int w = Synthetic.SHAPE.kvWidth();
        for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
          for (int p = 0; p < 40; p++) {
            c.append(l, Arrays.copyOfRange(extra[0][l], p * w, (p + 1) * w),
                Arrays.copyOfRange(extra[1][l], p * w, (p + 1) * w));
          }
        }
        c.endPrefill();
        assertTrue(((WaveHeadCache) c.head(0, 0)).index().segmentCount() > 1,
            "the cut segment is rebuilt when the prefill ends");
        float[] q = Synthetic.queries(r);
        float[] out = new float[q.length];
        for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
          c.attend(l, q, out);
          double[] ref = Reference.attention(q, kv, extra, l, cut, 40, KvDType.BFLOAT16);
          for (int i = 0; i < out.length; i++) {
            assertEquals(ref[i], out[i], 1e-4 * (1 + Math.abs(ref[i])), "layer " + l + " [" + i
                + "], seed " + seed);
          }
        }
      }
    }
  }

  @Test
  void neverServesAnotherTenantModelTypeOrPrefix() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int n = 200;
    int[] tokens = Synthetic.tokens(r, n);
    float[][][] kv = Synthetic.kv(r, n);
    ModelFingerprint model = Synthetic.fingerprint(r);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache cache = Synthetic.cache(kv, n)) {
      ContextStore.Scope alice = store.scope(model, "alice-salt", KvDType.BFLOAT16);
      String id = alice.put("", "prompt", tokens, cache, null, null).id();
      assertTrue(alice.find(tokens).isPresent());

      ContextStore.Scope bob = store.scope(model, "bob-salt", KvDType.BFLOAT16);
      ContextStore.Scope noTenant = store.scope(model, "", KvDType.BFLOAT16);
      ContextStore.Scope otherModel = store.scope(Synthetic.fingerprint(r), "alice-salt",
          KvDType.BFLOAT16);
      ContextStore.Scope otherType = store.scope(model, "alice-salt", KvDType.FLOAT32);
      for (ContextStore.Scope s : List.of(bob, noTenant, otherModel, otherType)) {
        assertEquals(Optional.empty(), s.find(tokens), "seed " + seed);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> s.load(id, tokens, n, false));
        assertTrue(e.getMessage().contains("another model"), e.getMessage());
      }
      // Another prefix: same chunks after the first, a different first chunk. A per-chunk hash would
      // match chunks 2..; the chained one matches nothing.
      int[] other = tokens.clone();
      other[0] = (other[0] + 1) % 256;
      assertEquals(Optional.empty(), alice.find(other));
      // Too short for one whole chunk: no key, no hit.
      assertEquals(Optional.empty(), alice.find(Arrays.copyOf(tokens, Synthetic.CHUNK - 1)));
    }
  }

  @Test
  void aForgedPrefixKeyIsRejectedByTheTokenCheck() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int n = 120;
    int[] tokens = Synthetic.tokens(r, n);
    int[] victim = Synthetic.tokens(r, n);
    ModelFingerprint model = Synthetic.fingerprint(r);
    String id;
    String[] victimKeys;
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache cache = Synthetic.cache(Synthetic.kv(r, n), n)) {
      ContextStore.Scope scope = store.scope(model, "", KvDType.BFLOAT16);
      id = scope.put("", "prompt", tokens, cache, null, null).id();
      victimKeys = scope.hasher().chain(victim);
    }
    // What a hash collision would look like: the victim prompt's keys point at another context.
    try (var d = FSDirectory.open(dir.resolve("index"));
        IndexWriter w = new IndexWriter(d, ContextWriter.indexWriterConfig())) {
      for (int i = 0; i < victimKeys.length; i++) {
        Document p = new Document();
        p.add(new StringField(StoreFields.CONTEXT, id, Field.Store.YES));
        p.add(new StringField(StoreFields.KIND, StoreFields.KIND_PREFIX, Field.Store.NO));
        p.add(new StringField(StoreFields.PREFIX, victimKeys[i], Field.Store.NO));
        p.add(new StoredField(StoreFields.PREFIX_TOKENS, (i + 1) * Synthetic.CHUNK));
        w.addDocument(p);
      }
      w.commit();
    }
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      ContextStore.Scope scope = store.scope(model, "", KvDType.BFLOAT16);
      assertEquals(Optional.empty(), scope.find(victim), "seed " + seed);
      assertThrows(IllegalArgumentException.class, () -> scope.load(id, victim, n, false));
      assertTrue(scope.find(tokens).isPresent());
    }
  }

  @Test
  void listDeleteReopenAndOneWriterAtATime() throws Exception {
    SplittableRandom r = new SplittableRandom(Synthetic.seed());
    ModelFingerprint model = Synthetic.fingerprint(r);
    int[] a = Synthetic.tokens(r, 100);
    int[] b = Synthetic.tokens(r, 150);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache ca = Synthetic.cache(Synthetic.kv(r, 100), 100);
        ContextCache cb = Synthetic.cache(Synthetic.kv(r, 150), 150)) {
      ContextStore.Scope scope = store.scope(model, "t", KvDType.BFLOAT16);
      String ida = scope.put("doc-a", "document", a, ca, null, null).id();
      scope.put("b", "prompt", b, cb, null, null);
      scope.put("b", "prompt", b, cb, null, null); // replaces: still two contexts
      assertEquals(2, store.list().size());
      // A second writer opens (no lock until it writes), then waits for the lock and gives up.
      try (ContextStore second = ContextStore.open(dir, Synthetic.CHUNK, Duration.ofMillis(300))) {
        assertEquals(2, second.list().size());
        IllegalStateException busy = assertThrows(IllegalStateException.class,
            () -> second.delete(ida));
        assertTrue(busy.getMessage().contains("another process")
            && busy.getMessage().contains("waited 300 ms"), busy.getMessage());
      }
      assertTrue(store.delete(ida));
      assertFalse(store.delete(ida));
      assertEquals(1, store.list().size());
    }
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      List<ContextInfo> all = store.list();
      assertEquals(1, all.size());
      assertEquals(150, all.get(0).tokens());
      assertEquals(Synthetic.CHUNK, store.chunkTokens());
      assertThrows(IllegalStateException.class, () -> store.delete(all.get(0).id()));
    }
    IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
        () -> ContextStore.openReadOnly(dir.resolve("nothing")));
    assertTrue(none.getMessage().contains("no context store"), none.getMessage());
  }

  @Test
  void aPutOfTheWrongKvTypeOrLengthIsRejectedAndLeavesNothing() throws Exception {
    SplittableRandom r = new SplittableRandom(Synthetic.seed());
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache c = Synthetic.cache(Synthetic.kv(r, 80), 80)) {
      ContextStore.Scope f32 = store.scope(Synthetic.fingerprint(r), "", KvDType.FLOAT32);
      assertThrows(IllegalArgumentException.class,
          () -> f32.put("", "prompt", Synthetic.tokens(r, 80), c, null, null));
      ContextStore.Scope bf = store.scope(Synthetic.fingerprint(r), "", KvDType.BFLOAT16);
      assertThrows(IllegalArgumentException.class,
          () -> bf.put("", "prompt", Synthetic.tokens(r, 79), c, null, null));
      assertTrue(store.list().isEmpty());
      assertNull(store.info("c0").orElse(null));
    }
  }
}
