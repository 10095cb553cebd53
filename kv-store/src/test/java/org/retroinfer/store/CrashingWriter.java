package org.retroinfer.store;

import java.nio.file.Path;
import java.util.SplittableRandom;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Child process of {@link CrashSafetyTest}: puts context A (committed), then puts context B and
 * stops in the middle of it (after its K/V are written and flushed, before the commit), waiting to
 * be killed. Args: store dir, seed.
 */
public final class CrashingWriter {
  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    long seed = Long.parseLong(args[1]);
    CrashSafetyTest.Contexts c = CrashSafetyTest.Contexts.of(seed);
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache a = Synthetic.cache(c.kvA(), c.a().length);
        ContextCache b = Synthetic.cache(c.kvB(), c.b().length)) {
      ContextStore.Scope scope = store.scope(c.model(), "", KvDType.BFLOAT16);
      scope.put("a", "prompt", c.a(), a, null, null);
      System.out.println("COMMITTED A");
      System.out.flush();
      scope.put("b", "prompt", c.b(), b, null, phase -> {
        if (phase.equals("written")) {
          System.out.println("MID-PUT B");
          System.out.flush();
          try {
            Thread.sleep(120_000); // killed here
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      });
      System.out.println("COMMITTED B (should have been killed)");
    }
  }

  static SplittableRandom random(long seed) {
    return new SplittableRandom(seed);
  }
}
