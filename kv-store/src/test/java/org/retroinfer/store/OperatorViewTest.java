package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** The operator's view that eviction by capacity needs: every tenant's contexts, evict, size. */
class OperatorViewTest {
  @TempDir Path dir;

  @Test
  void evictingFreesTheBytesOfAnyTenantsContext() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int n = 300;
    ModelFingerprint model = Synthetic.fingerprint(r);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK)) {
      long empty = store.sizeInBytes();
      ContextStore.Scope alice = store.scope(model, "alice", KvDType.BFLOAT16);
      ContextStore.Scope bob = store.scope(model, "bob", KvDType.BFLOAT16);
      String a;
      String b;
      try (ContextCache ca = Synthetic.cache(Synthetic.kv(r, n), n);
          ContextCache cb = Synthetic.cache(Synthetic.kv(r, n), n)) {
        a = alice.put("", "prompt", Synthetic.tokens(r, n), ca, null, null).id();
        b = bob.put("", "prompt", Synthetic.tokens(r, n), cb, null, null).id();
      }
      long two = store.sizeInBytes();
      // K/V of 300 tokens, 2 layers x 2 KV heads x 16 dims x 2 (K and V) in bfloat16, per context
      long kvBytes = 300L * 2 * 2 * 16 * 2 * 2;
      assertTrue(two - empty > 2 * kvBytes, "seed " + seed + ": " + empty + " -> " + two);
      assertEquals(List.of(a, b), store.everyTenantsContexts().stream().map(ContextInfo::id)
          .toList());
      assertTrue(store.evict(b));
      assertFalse(store.evict(b));
      store.reclaimDeleted();
      long one = store.sizeInBytes();
      assertTrue(one < two - kvBytes, "seed " + seed + ": " + two + " -> " + one);
      assertEquals(List.of(a), store.everyTenantsContexts().stream().map(ContextInfo::id)
          .toList());
      assertTrue(alice.find(alice.stored(a).tokens()).isPresent());
      assertEquals(List.of(), store.tenant("bob").list());
    }
  }
}
