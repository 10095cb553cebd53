package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.retroinfer.model.eval.NeedleTask;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.eval.Scoring;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Generation;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionBackends;
import org.retroinfer.wave.attention.ContextCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The project's main job: a needle in a long haystack of Python source, answered by the shipped
 * model with wave attention and with full attention, from one prefill.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Needle in a haystack on the shipped model: builds a long prompt of Python source with a "
        + "line '# KEY_x = 12345' in it and '# recall KEY_x: ' at the end, prefills it once, builds "
        + "the wave index, then decodes the answer with wave attention and with full attention and "
        + "prints both answers and the time per token.")
public final class DemoCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;

  @Option(names = "--context", paramLabel = "TOKENS", defaultValue = "16384",
      description = "Prompt length in tokens (default ${DEFAULT-VALUE}; try 4096 for a quick run).")
  int context;

  @Option(names = "--depth", paramLabel = "FRACTION", defaultValue = "0.5",
      description = "Where the needle goes in the haystack, 0..1 (default ${DEFAULT-VALUE}).")
  double depth;

  @Option(names = "--tokens", paramLabel = "N", defaultValue = "32",
      description = "Tokens decoded per method; the first 5 are the answer (default ${DEFAULT-VALUE}).")
  int tokens;

  @Option(names = "--seed", defaultValue = "7", description = "Seed of the haystack and needle.")
  long seed;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = "system",
      description = "'system' (Python sources in /usr/lib/python3*, else the built-in snippets),"
          + " 'builtin', or comma-separated directories.")
  String haystack;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (tokens < 5) {
      throw new IllegalArgumentException("--tokens must be at least 5 (the answer), got " + tokens);
    }
    WaveConfig config = wave.config();
    out.printf("RetroInfer demo: a needle in a %,d-token haystack%n%n", context);
    try (Llama llama = model.load(out)) {
      PythonCorpus corpus = PythonCorpus.named(haystack);
      NeedleTask task = NeedleTask.build(corpus, context, depth, 0, seed);
      out.printf("haystack   %s, seed %d%n", corpus.description(), seed);
      out.printf("needle     \"# %s = %s\" at token %,d (%.0f%% deep)%n", task.key(), task.answer(),
          task.needlePosition(), 100.0 * task.needlePosition() / context);
      out.printf("question   \"# recall %s: \" at the end; K/V stored as %s%n%n", task.key(),
          config.kvType());
      out.flush();

      warmUp(llama, config);
      ProgressBar bar = new ProgressBar(err, "prefill", "tokens");
      PromptState state = new PromptState(llama.attentionShape());
      llama.prefill(state, task.prompt(), null, bar::update);
      double prefill = bar.seconds();
      out.printf("prefill    %,d tokens in %.1f s (%,.0f tokens/s, exact causal attention)%n",
          context, prefill, context / prefill);

      // then one untimed pass of both methods over this very prompt: the JIT finishes compiling
      // the decode path for this context's shapes (cluster counts, zone sizes). Measured: with the
      // synthetic warm-up alone wave's steps took 2.5-7 ms, with this pass alone 4.5-5 ms, with
      // both 1.7-2.7 ms (bench decode, after 100 warm-up steps: 2.2 ms)
      err.println("warm-up    both methods decode once untimed (JIT compilation)");
      err.flush();
      decode(llama, state, "full", config, null);
      decode(llama, state, "wave", config, null);
      Result full = decode(llama, state, "full", config, null);
      Result waveResult = decode(llama, state, "wave", config,
          new ProgressBar(err, "index", "(layer, KV head) caches"));
      out.printf("index      wave index built in %.2f s (%.1f%% of the prefill): %,d clusters"
          + " per KV head%n%n", waveResult.indexSeconds, 100 * waveResult.indexSeconds / prefill,
          waveResult.clusters);

      out.printf("%-6s %-8s %-8s %10s %14s   %s%n", "method", "answer", "correct", "ms/token",
          "exact reads", "continuation");
      for (Result r : new Result[] {full, waveResult}) {
        out.printf("%-6s %-8s %-8s %10.2f %14s   %s%n", r.method, r.answer,
            r.answer.equals(task.answer()) ? "yes" : "NO", r.generation.medianStepMillis(),
            String.format("%,d (%.1f%%)", r.exactPerHead, 100.0 * r.exactPerHead / context),
            r.continuation);
      }
      // greedy continuations are compared up to their first difference: after it, each method
      // continues its own text
      int same = 0;
      while (same < tokens && full.generation.tokens()[same] == waveResult.generation.tokens()[same]) {
        same++;
      }
      double speedup = full.generation.medianStepMillis() / waveResult.generation.medianStepMillis();
      out.printf("%nexpected answer %s. Wave attention read %.1f%% of the tokens exactly per head"
          + " and step, decoded %.1fx as fast as full attention, and generated the same first %d of"
          + " %d tokens.%n", task.answer(), 100.0 * waveResult.exactPerHead / context, speedup,
          same, tokens);
      out.println("(ms/token: median over the decoded tokens, whole model step: 6 layers, both"
          + " KV heads, output head)");
      out.flush();
      return full.answer.equals(task.answer()) && waveResult.answer.equals(task.answer()) ? 0 : 3;
    }
  }

  private record Result(String method, String answer, String continuation, Generation generation,
      double indexSeconds, long exactPerHead, int clusters) {}

  private Result decode(Llama llama, PromptState state, String method, WaveConfig config,
      ProgressBar indexBar) {
    try (ContextCache cache = llama.newCache(AttentionBackends.create(method, config))) {
      state.copyInto(cache);
      long t0 = System.nanoTime();
      if (indexBar != null) {
        cache.endPrefill(indexBar::update);
      } else {
        cache.endPrefill();
      }
      double index = (System.nanoTime() - t0) / 1e9;
      Decoder decoder = llama.decoder(cache);
      Generation g = Generation.run(decoder, state.lastLogits(), Sampler.greedy(), tokens, null,
          null);
      long exact = 0;
      for (int l = 0; l < cache.shape().layers(); l++) {
        for (int h = 0; h < cache.shape().kvHeads(); h++) {
          exact += cache.head(l, h).lastExactTokens();
        }
      }
      int clusters = cache.head(0, 0) instanceof WaveHeadCache w ? w.index().clusterCount() : 0;
      String answer = Scoring.printable(java.util.Arrays.copyOf(g.tokens(), 5));
      String rest = Scoring.printable(java.util.Arrays.copyOfRange(g.tokens(), 5, g.tokens().length));
      return new Result(method, answer, rest, g, index, exact / (cache.shape().layers()
          * cache.shape().kvHeads()), clusters);
    }
  }

  /** Decode steps per method before anything is timed: C2 compiles the wave path only after that many. */
  static final int WARM_UP_STEPS = 256;
  static final int WARM_UP_TOKENS = 4096;

  /**
   * Compiles the decode path of both methods before anything is timed (a prompt of
   * {@link #WARM_UP_TOKENS} tokens, decoded {@link #WARM_UP_STEPS} steps), so that neither method's
   * time per token includes JIT compilation. The prompt is long enough that the wave index has
   * several times more clusters than the retrieval floor: with a barely indexed prompt every
   * cluster is retrieved, the estimation zone stays tiny, and its kernels were still interpreted
   * or half-compiled when the timed 16K decode began (measured: wave's median step 6.5 ms instead
   * of about 2 ms).
   */
  private static void warmUp(Llama llama, WaveConfig config) {
    int[] prompt = new int[Math.max(WARM_UP_TOKENS, config.minIndexedContext() + 128)];
    SplittableRandom r = new SplittableRandom(1);
    for (int i = 0; i < prompt.length; i++) {
      prompt[i] = 32 + r.nextInt(90);
    }
    PromptState s = llama.prefill(prompt);
    for (String m : new String[] {"full", "wave"}) {
      try (ContextCache cache = llama.newCache(AttentionBackends.create(m, config))) {
        s.copyInto(cache);
        cache.endPrefill();
        Generation.run(llama.decoder(cache), s.lastLogits(), Sampler.greedy(), WARM_UP_STEPS, null,
            null);
      }
    }
  }
}
