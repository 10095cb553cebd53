package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** Readers (separate read-only stores) find and load while one writer puts and deletes. */
class ConcurrentReadersTest {
  @TempDir Path dir;

  @Test
  void readersSeeOnlyWholeContextsWhileAWriterWrites() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    ModelFingerprint model = Synthetic.fingerprint(r);
    int count = 6;
    List<int[]> prompts = new ArrayList<>();
    List<float[][][]> kvs = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int n = 150 + r.nextInt(150);
      prompts.add(Synthetic.tokens(r, n));
      kvs.add(Synthetic.kv(r, n));
    }
    // what a reader must find for prompt i if it finds it at all: its first key row, rounded
    Map<Integer, Float> firstKey = new ConcurrentHashMap<>();
    for (int i = 0; i < count; i++) {
      firstKey.put(i, KvDType.BFLOAT16.round(kvs.get(i)[0][0][0]));
    }
    AtomicBoolean done = new AtomicBoolean();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    AtomicInteger loads = new AtomicInteger();
    try (ContextStore writer = ContextStore.open(dir, Synthetic.CHUNK)) {
      ContextStore.Scope ws = writer.scope(model, "", KvDType.BFLOAT16);
      List<Thread> readers = new ArrayList<>();
      for (int t = 0; t < 2; t++) {
        Thread th = new Thread(() -> {
          try (ContextStore store = ContextStore.openReadOnly(dir)) {
            ContextStore.Scope s = store.scope(model, "", KvDType.BFLOAT16);
            int i = 0;
            while (!done.get()) {
              store.refresh();
              int[] p = prompts.get(i % count);
              Optional<PrefixMatch> m = s.find(p);
              if (m.isPresent()) {
                assertEquals(p.length, m.get().matchedTokens());
                try (ReusedContext c = s.load(m.get().context().id(), p, p.length, false)) {
                  assertEquals(p.length, c.cache().length(0));
                  for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
                    assertEquals(p.length, c.cache().length(l));
                  }
                  WaveHeadCache h = (WaveHeadCache) c.cache().head(0, 0);
                  assertEquals(firstKey.get(i % count), h.sinkKeys().get(0, 0));
                  loads.incrementAndGet();
                } catch (IllegalArgumentException deleted) {
                  // deleted between find and load: allowed, as long as it is all or nothing
                  assertTrue(deleted.getMessage().contains("no context"), deleted.getMessage());
                }
              }
              i++;
            }
          } catch (Throwable e) {
            failure.compareAndSet(null, e);
          }
        });
        readers.add(th);
        th.start();
      }
      for (int round = 0; round < 2; round++) {
        for (int i = 0; i < count; i++) {
          try (ContextCache c = Synthetic.cache(kvs.get(i), prompts.get(i).length)) {
            ws.put("p" + i, "prompt", prompts.get(i), c, null, null);
          }
          if (i % 2 == 1) {
            writer.delete(ws.contextId("prompt", prompts.get(i - 1)));
          }
        }
      }
      done.set(true);
      for (Thread th : readers) {
        th.join(120_000);
      }
    }
    if (failure.get() != null) {
      throw new AssertionError("reader failed (seed " + seed + ")", failure.get());
    }
    assertTrue(loads.get() > 0, "the readers never loaded anything");
  }
}
