package org.retroinfer.app.bench;

import org.retroinfer.app.ModelFingerprints;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.app.PromptCache;
import org.retroinfer.app.rag.DocumentReuse;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * RAG reuse on the shipped model, side by side in one run: per trial, {@code DOCS} documents of
 * {@code DOC_TOKENS} tokens of Python text, one of them (chosen at random) holding a needle line
 * {@code # KEY_name = 5 digits} at a random line, then the question {@code # recall KEY_name: }.
 * Each prompt is answered (5 greedy tokens, wave attention with the default configuration) twice:
 * from a full recompute of the composed prompt, and from the documents' stored K/V composed by
 * re-rotation ({@link DocumentReuse}: only the question is prefilled). Prints recall and the time
 * to the first answer token of both.
 *
 * <p>Args: {@code [TRIALS (10)] [DOCS (4)] [DOC_TOKENS (1024)] [SEED (1)]}.
 */
public final class RagReuseBenchmark {
  private RagReuseBenchmark() {}

  public static void main(String[] args) throws Exception {
    int trials = args.length > 0 ? Integer.parseInt(args[0]) : 10;
    int docCount = args.length > 1 ? Integer.parseInt(args[1]) : 4;
    int docTokens = args.length > 2 ? Integer.parseInt(args[2]) : 1024;
    long seed = args.length > 3 ? Long.parseLong(args[3]) : 1;
    SplittableRandom r = new SplittableRandom(seed);
    WaveConfig config = WaveConfig.defaults();
    ByteTokenizer tok = new ByteTokenizer();
    Path dir = Files.createTempDirectory("retroinfer-rag");
    ModelDirectory md = ModelDirectory.shipped();
    int fullHits = 0;
    int reuseHits = 0;
    int agree = 0;
    long fullNanos = 0;
    long reuseNanos = 0;
    System.out.printf("RAG reuse: %d trials, %d documents of %d tokens, needle in a random"
        + " document, seed %d%n", trials, docCount, docTokens, seed);
    System.out.printf("%5s %6s %6s %8s %8s %12s %12s%n", "trial", "doc", "needle", "full",
        "reused", "full ms", "reused ms");
    try (Llama model = Llama.load(md); ContextStore store = ContextStore.open(dir)) {
      ContextStore.Scope scope = store.scope(ModelFingerprints.of(md), "", config.kvType());
      DocumentReuse rag = new DocumentReuse(model, scope, config);
      for (int t = 0; t < trials; t++) {
        String key = "KEY_" + new String[] {"river", "stone", "maple", "comet"}[r.nextInt(4)]
            + r.nextInt(100);
        String answer = Integer.toString(10000 + r.nextInt(90000));
        int holder = r.nextInt(docCount);
        List<int[]> docs = new ArrayList<>();
        for (int i = 0; i < docCount; i++) {
          String text = new String(PythonCorpus.fallback().text(docTokens, r),
              StandardCharsets.ISO_8859_1);
          if (i == holder) {
            int at = text.indexOf('\n', r.nextInt(Math.max(1, text.length() - 64))) + 1;
            at = at <= 0 ? text.length() : at;
            text = text.substring(0, at) + "# " + key + " = " + answer + "\n" + text.substring(at);
          }
          docs.add(tok.encode(text.getBytes(StandardCharsets.ISO_8859_1)));
        }
        int[] question = tok.encode("# recall " + key + ": ");
        // documents are stored ahead of the question (what a RAG system indexes up front)
        for (int[] d : docs) {
          rag.storeDocument("doc", d);
        }
        int total = docs.stream().mapToInt(d -> d.length).sum() + question.length;
        int[] prompt = new int[total];
        int at = 0;
        for (int[] d : docs) {
          System.arraycopy(d, 0, prompt, at, d.length);
          at += d.length;
        }
        System.arraycopy(question, 0, prompt, at, question.length);

        long f0 = System.nanoTime();
        PromptState full = model.prefill(prompt);
        ContextCache fullCache = model.newCache(new WaveAttention(config));
        full.copyInto(fullCache);
        fullCache.endPrefill();
        long f1 = System.nanoTime();
        String fullAnswer;
        try (fullCache) {
          fullAnswer = decode(model, fullCache, full.lastLogits(), 5);
        }
        long g0 = System.nanoTime();
        PromptCache.Prepared p = rag.prepare(docs, question);
        long g1 = System.nanoTime();
        String reusedAnswer;
        try (ContextCache c = p.cache()) {
          reusedAnswer = decode(model, c, p.logits(), 5);
        }
        fullNanos += f1 - f0;
        reuseNanos += g1 - g0;
        fullHits += fullAnswer.equals(answer) ? 1 : 0;
        reuseHits += reusedAnswer.equals(answer) ? 1 : 0;
        agree += fullAnswer.equals(reusedAnswer) ? 1 : 0;
        System.out.printf("%5d %6d %6s %8s %8s %12d %12d%n", t, holder, answer, printable(fullAnswer),
            printable(reusedAnswer), (f1 - f0) / 1_000_000, (g1 - g0) / 1_000_000);
      }
    }
    System.out.printf("recall: full recompute %d/%d, reused KV %d/%d; same answer %d/%d%n",
        fullHits, trials, reuseHits, trials, agree, trials);
    System.out.printf("mean time to the first answer token: full recompute %d ms, reused KV %d ms"
        + " (%.1fx)%n", fullNanos / trials / 1_000_000, reuseNanos / trials / 1_000_000,
        (double) fullNanos / reuseNanos);
  }

  static String decode(Llama model, ContextCache cache, float[] logits, int n) {
    Decoder d = model.decoder(cache);
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < n; i++) {
      int t = Sampler.argmax(logits);
      s.append((char) t);
      if (i + 1 < n) {
        logits = d.step(t);
      }
    }
    return s.toString();
  }

  private static String printable(String s) {
    return s.replaceAll("[^\\x20-\\x7e]", "?");
  }
}
