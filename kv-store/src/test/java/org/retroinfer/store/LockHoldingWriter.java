package org.retroinfer.store;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Child process of {@link WriterLockTest}: puts context A (which takes the store's write lock and
 * keeps it while the store is open), says {@code HOLDING}, and closes the store (releasing the lock)
 * when a line arrives on its standard input. Args: store dir, seed.
 */
public final class LockHoldingWriter {
  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    WriterLockTest.Contexts c = WriterLockTest.Contexts.of(Long.parseLong(args[1]));
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK);
        ContextCache a = Synthetic.cache(c.kvA(), c.a().length)) {
      store.scope(c.model(), "", KvDType.BFLOAT16).put("a", "prompt", c.a(), a, null, null);
      System.out.println("HOLDING");
      System.out.flush();
      new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
    }
    System.out.println("RELEASED");
    System.out.flush();
  }
}
