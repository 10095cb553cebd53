package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * A second writer waits for another process's write lock, and succeeds once it is released; with a
 * timeout that runs out first, it fails with a clear error and leaves nothing behind.
 */
class WriterLockTest {
  @TempDir Path dir;

  /** The contexts both processes derive from one seed. */
  record Contexts(ModelFingerprint model, int[] a, float[][][] kvA, int[] b, float[][][] kvB) {
    static Contexts of(long seed) {
      SplittableRandom r = new SplittableRandom(seed);
      ModelFingerprint m = Synthetic.fingerprint(r);
      int[] a = Synthetic.tokens(r, 200);
      float[][][] kvA = Synthetic.kv(r, a.length);
      int[] b = Synthetic.tokens(r, 180);
      float[][][] kvB = Synthetic.kv(r, b.length);
      return new Contexts(m, a, kvA, b, kvB);
    }
  }

  @Test
  void aSecondWriterWaitsForTheLockThenSucceeds() throws Exception {
    long seed = Synthetic.seed();
    Contexts c = Contexts.of(seed);
    Process child = ChildJvm.of(LockHoldingWriter.class, dir.toString(), Long.toString(seed))
        .redirectErrorStream(true).start();
    try (BufferedReader out = new BufferedReader(
            new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        Writer in = new OutputStreamWriter(child.getOutputStream(), StandardCharsets.UTF_8);
        ContextCache b = Synthetic.cache(c.kvB(), c.b().length)) {
      StringBuilder log = new StringBuilder();
      String line;
      while ((line = out.readLine()) != null && !line.equals("HOLDING")) {
        log.append(line).append('\n');
      }
      assertEquals("HOLDING", line, "the child did not take the lock:\n" + log);

      // The lock is held: a writer that does not wait fails at once, clearly, and stores nothing.
      try (ContextStore impatient = ContextStore.open(dir, Synthetic.CHUNK, Duration.ZERO)) {
        ContextStore.Scope s = impatient.scope(c.model(), "", KvDType.BFLOAT16);
        IllegalStateException busy = assertThrows(IllegalStateException.class,
            () -> s.put("b", "prompt", c.b(), b, null, null));
        assertTrue(busy.getMessage().contains("being written by another process"),
            busy.getMessage());
        assertEquals(1, impatient.list().size(), "only the child's context");
      }

      // A patient writer waits while the lock is held ...
      try (ContextStore patient = ContextStore.open(dir, Synthetic.CHUNK, Duration.ofSeconds(60))) {
        ContextStore.Scope s = patient.scope(c.model(), "", KvDType.BFLOAT16);
        CompletableFuture<ContextInfo> put = CompletableFuture.supplyAsync(() -> {
          try {
            return s.put("b", "prompt", c.b(), b, null, null);
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        });
        Thread.sleep(500); // time to fail at once, if it did not wait
        assertFalse(put.isDone(), "the second writer must wait while the lock is held: "
            + (put.isDone() ? put.handle((v, e) -> String.valueOf(e)).get() : ""));
        // ... and succeeds once the child closes its store.
        in.write("release\n");
        in.flush();
        ContextInfo stored = put.get(60, TimeUnit.SECONDS);
        assertEquals(c.b().length, stored.tokens());
        assertEquals("RELEASED", out.readLine());
        assertEquals(2, patient.list().size());
        assertEquals(c.b().length, s.find(c.b()).orElseThrow().matchedTokens());
        assertEquals(c.a().length, s.find(c.a()).orElseThrow().matchedTokens());
      }
    } finally {
      child.destroyForcibly();
      assertTrue(child.waitFor(60, TimeUnit.SECONDS));
    }
  }
}
