package org.retroinfer.serve;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.Stream;
import org.retroinfer.app.PromptCache;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * Runs what a request runs, once, at start: a prefill, a store put, a lookup that reuses the stored
 * prefix and prefills the rest, and a few decode steps, on scratch text in a temporary store that
 * is deleted afterwards (the server's store is not touched). A fresh JVM otherwise runs these
 * paths in the interpreter for its first requests: several seconds at 16K tokens.
 */
final class WarmUp {
  private static final int PROMPT = 640;
  private static final int MORE = 48;

  private WarmUp() {}

  static void run(Llama model, ModelFingerprint fingerprint, WaveConfig config) throws IOException {
    Path dir = Files.createTempDirectory("retroinfer-serve-warm-up");
    try {
      try (ContextStore store = ContextStore.open(dir)) {
        PromptCache cache = new PromptCache(model, store.scope(fingerprint, "", config.kvType()),
            config);
        int[] longer = scratch(PROMPT + MORE);
        int[] prompt = Arrays.copyOf(longer, PROMPT);
        PromptCache.Prepared p = cache.prepare(prompt, null);
        try (ContextCache c = p.cache()) {
          cache.save("", prompt, p);
          decode(model, c, p.logits());
        }
        PromptCache.Prepared q = cache.prepare(longer, null); // reuses the stored prompt
        try (ContextCache c = q.cache()) {
          decode(model, c, q.logits());
        }
      }
    } finally {
      try (Stream<Path> files = Files.walk(dir)) {
        for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(f);
        }
      }
    }
  }

  private static void decode(Llama model, ContextCache cache, float[] logits) {
    Decoder d = model.decoder(cache);
    int token = Sampler.argmax(logits);
    for (int i = 0; i < 4; i++) {
      token = Sampler.argmax(d.step(token));
    }
  }

  /** Python-like text as byte tokens, after the document start. */
  private static int[] scratch(int n) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; b.length() < n; i++) {
      b.append("def warm_up_").append(i).append("(x):\n    return x * ").append(i).append('\n');
    }
    int[] ids = new ByteTokenizer().encode(b.substring(0, n - 1));
    int[] out = new int[n];
    out[0] = ByteTokenizer.DOCUMENT_START;
    System.arraycopy(ids, 0, out, 1, n - 1);
    return out;
  }
}
