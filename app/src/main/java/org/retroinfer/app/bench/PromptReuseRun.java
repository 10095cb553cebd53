package org.retroinfer.app.bench;

import org.retroinfer.app.ModelFingerprints;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.retroinfer.lucene.WaveField;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.eval.NeedleTask;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.app.PromptCache;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * One session of prompt-prefix caching, as its own process: loads the shipped model, builds a
 * deterministic needle prompt of {@code tokens} tokens (seeded), prepares it through a
 * {@link PromptCache} over the store (reusing whatever the store holds), decodes {@code decode}
 * tokens greedily with wave attention, stores the prompt if it was not reused, and prints one JSON
 * line (Jackson): the decoded ids and the times: the store's open, then from the prompt to its
 * first token the prefix lookup ({@code findMs}), the context's open ({@code loadMs}, of which
 * {@code verifyMs} checking the K/V checksums) or the prefill and index build, and the first decode
 * step after it ({@code firstStepMs}: the first attention over the opened K/V).
 *
 * <p>Args: {@code STORE_DIR TOKENS SEED DECODE}. Used by {@link PromptReuseBenchmark} and the
 * integration tests, which start it twice: the second process finds the first one's prompt.
 */
public final class PromptReuseRun {
  private PromptReuseRun() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 4) {
      System.err.println("usage: PromptReuseRun STORE_DIR TOKENS SEED DECODE");
      System.exit(2);
    }
    Path store = Path.of(args[0]);
    int tokens = Integer.parseInt(args[1]);
    long seed = Long.parseLong(args[2]);
    int decode = Integer.parseInt(args[3]);
    System.out.println(run(store, tokens, seed, decode));
  }

  /** The deterministic prompt of a run. */
  public static int[] prompt(int tokens, long seed) {
    return NeedleTask.build(PythonCorpus.fallback(), tokens, 0.5, 0, seed).prompt();
  }

  static String run(Path storeDir, int tokens, long seed, int decode) throws IOException {
    long start = System.nanoTime();
    ModelDirectory dir = ModelDirectory.shipped();
    ModelFingerprint fp = ModelFingerprints.of(dir);
    WaveConfig config = WaveConfig.defaults();
    int[] prompt = prompt(tokens, seed);
    Map<String, Object> out = new LinkedHashMap<>();
    try (Llama model = Llama.load(dir)) {
      long o0 = System.nanoTime();
      try (ContextStore store = ContextStore.open(storeDir)) {
        long ready = System.nanoTime();
        session(model, store, fp, config, prompt, decode, start, ready - o0, ready, out);
      }
    }
    return new ObjectMapper().writeValueAsString(out); // one line
  }

  private static void session(Llama model, ContextStore store, ModelFingerprint fp,
      WaveConfig config, int[] prompt, int decode, long start, long openNanos, long ready,
      Map<String, Object> out) throws IOException {
    {
      PromptCache cache = new PromptCache(model, store.scope(fp, "", config.kvType()), config);
      long v0 = WaveField.verifyNanos();
      long t0 = System.nanoTime();
      PromptCache.Prepared p = cache.prepare(prompt, null);
      int first = Sampler.argmax(p.logits());
      long t1 = System.nanoTime();
      long verify = WaveField.verifyNanos() - v0;
      int[] ids = new int[decode];
      try (ContextCache c = p.cache()) {
        long saveNanos = 0;
        if (p.reusedTokens() == 0) {
          long s0 = System.nanoTime();
          cache.save("bench", prompt, p);
          saveNanos = System.nanoTime() - s0;
        }
        Decoder d = model.decoder(c);
        long d0 = System.nanoTime();
        long firstStep = 0;
        if (decode > 0) {
          ids[0] = first;
          float[] logits;
          for (int i = 1; i < decode; i++) {
            long s0 = System.nanoTime();
            logits = d.step(ids[i - 1]);
            if (i == 1) {
              firstStep = System.nanoTime() - s0;
            }
            ids[i] = Sampler.argmax(logits);
          }
        }
        long d1 = System.nanoTime();
        out.put("tokens", prompt.length);
        out.put("reused", p.reusedTokens());
        out.put("context", p.contextId());
        out.put("setupMs", ms(ready - start));
        out.put("storeOpenMs", ms(openNanos));
        out.put("findMs", ms(p.findNanos()));
        out.put("loadMs", ms(p.loadNanos()));
        out.put("verifyMs", ms(verify));
        out.put("firstTokenUs", (t1 - t0) / 1000);
        out.put("firstStepMs", ms(firstStep));
        out.put("kvBytesOwned", c.memoryBytes());
        out.put("prefillMs", ms(p.prefillNanos()));
        out.put("indexMs", ms(p.indexNanos()));
        out.put("firstTokenMs", ms(t1 - t0));
        out.put("jvmUptimeAtFirstTokenMs",
            ManagementFactory.getRuntimeMXBean().getUptime() - ms(System.nanoTime() - t1));
        out.put("saveMs", ms(saveNanos));
        out.put("decodeMsPerToken", decode > 1 ? (d1 - d0) / 1e6 / (decode - 1) : 0);
        out.put("ids", ids);
      }
    }
  }

  private static long ms(long nanos) {
    return nanos / 1_000_000;
  }
}
