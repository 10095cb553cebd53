package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.eval.NeedleTask;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.eval.Scoring;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Generation;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.LlamaConfig;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.attention.AttentionBackends;
import org.retroinfer.wave.attention.ContextCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The project's main job: a needle in a long haystack of Python source, answered by the shipped
 * model with wave attention and with full attention, from one prefill. The haystack is the shipped
 * corpus by default, so the prompt, the needle and the answers are the same on every machine.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Needle in a haystack on the shipped model: builds a long prompt of Python source with a "
        + "line '# KEY_x = 12345' in it and '# recall KEY_x: ' at the end, prefills it once, builds "
        + "the wave index, then decodes the answer with wave attention and with full attention and "
        + "prints both answers and the time per token.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
        "0:both methods answered correctly",
        "1:an error the message explains (e.g. a missing model)",
        "2:invalid arguments (nothing was loaded)",
        "3:full or wave attention answered wrong (the output says which)"})
public final class DemoCommand implements Callable<Integer> {
  /** Exit code when a method's answer is wrong. */
  static final int WRONG_ANSWER = 3;
  /** Tokens of the answer: 5 digits. */
  static final int ANSWER_TOKENS = 5;

  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;
  @Mixin org.retroinfer.app.cli.DeviceOption device;

  @Option(names = "--context", paramLabel = "TOKENS", defaultValue = "16384",
      description = "Prompt length in tokens, up to the model's trained context (default"
          + " ${DEFAULT-VALUE}; try 4096 for a quick run).")
  int context;

  @Option(names = "--depth", paramLabel = "FRACTION", defaultValue = "0.5",
      description = "Where the needle goes in the haystack, 0..1 (default ${DEFAULT-VALUE}).")
  double depth;

  @Option(names = "--tokens", paramLabel = "N", defaultValue = "32",
      description = "Tokens decoded per method; the first 5 are the answer (default ${DEFAULT-VALUE}).")
  int tokens;

  @Option(names = "--seed", defaultValue = "7", description = "Seed of the haystack and needle.")
  long seed;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = PythonCorpus.DEFAULT_NAME,
      description = "Haystack text: " + PythonCorpus.CHOICES + ".")
  String haystack;

  @Override
  public Integer call() throws Exception {
    // every argument is checked before the model loads
    Arguments.atLeast(spec, "--context", context, NeedleTask.minimumContext(0),
        "tokens (the needle line, the question and some haystack)");
    Arguments.fraction(spec, "--depth", depth);
    Arguments.atLeast(spec, "--tokens", tokens, ANSWER_TOKENS, "(the answer's 5 digits)");
    WaveConfig config = wave.config(spec);
    PythonCorpus corpus = Arguments.haystack(spec, haystack);
    LlamaConfig modelConfig = model.config();
    if (context > modelConfig.maxPositions()) {
      throw Arguments.invalid(spec, "--context %,d is longer than the %,d tokens the model was"
          + " trained for (max_position_embeddings in %s), where it no longer recalls the needle;"
          + " use at most %d", context, modelConfig.maxPositions(), model.directory().config(),
          modelConfig.maxPositions());
    }
    NeedleTask task = NeedleTask.build(corpus, context, depth, 0, seed);

    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    device.apply(err); // one line on standard error when the GPU was asked for but cannot run
    out.printf("RetroInfer demo: a needle in a %,d-token haystack%n%n", context);
    try (Llama llama = model.load(out)) {
      out.printf("haystack   %s, seed %d%n", corpus.description(), seed);
      out.printf("needle     \"# %s = %s\" at token %,d (%.0f%% deep)%n", task.key(), task.answer(),
          task.needlePosition(), 100.0 * task.needlePosition() / context);
      out.printf("question   \"# recall %s: \" at the end; K/V stored as %s%n%n", task.key(),
          config.kvType());
      out.flush();

      JitWarmUp.run(llama, config, List.of(MethodSpec.parse("full"), MethodSpec.parse("wave")),
          JitWarmUp.STEPS, err);
      PromptState state = new PromptState(llama.attentionShape());
      double prefill;
      try (Progress bar = Progress.prefill(err, context)) {
        llama.prefill(state, task.prompt(), null, bar::update);
        prefill = bar.seconds();
      }
      out.printf("prefill    %,d tokens in %.1f s (%,.0f tokens/s, exact causal attention)%n",
          context, prefill, context / prefill);
      out.flush();

      // then one untimed pass of both methods over this very prompt: the JIT finishes compiling
      // the decode path for this context's shapes (cluster counts, zone sizes). Measured: with the
      // synthetic warm-up alone wave's steps took 2.5-7 ms, with this pass alone 4.5-5 ms, with
      // both 1.7-2.7 ms (bench decode, after 100 warm-up steps: 2.2 ms)
      int heads = llama.config().layers() * llama.config().kvHeads();
      try (Progress bar = Progress.start(err, "untimed", "steps", 2L * tokens + heads)) {
        decode(llama, state, "full", config, (done, all) -> bar.stepTo(done), null);
        decode(llama, state, "wave", config, (done, all) -> bar.stepTo(tokens + done),
            (done, all) -> bar.stepTo(tokens + heads + done));
      }
      Result full = decode(llama, state, "full", config, null, null);
      Result waveResult;
      try (Progress bar = Progress.start(err, "index", "heads", heads)) {
        waveResult = decode(llama, state, "wave", config, null, bar::update);
      }
      out.printf("index      wave index built in %.2f s (%.1f%% of the prefill): %,d clusters"
          + " per KV head%n%n", waveResult.indexSeconds, 100 * waveResult.indexSeconds / prefill,
          waveResult.clusters);

      out.printf("%-6s %-8s %-8s %10s   %-26s %s%n", "method", "answer", "correct", "ms/token",
          "exact reads (last step)", "continuation");
      for (Result r : new Result[] {full, waveResult}) {
        out.printf("%-6s %-8s %-8s %10.2f   %-26s %s%n", r.method, r.answer,
            r.answer.equals(task.answer()) ? "yes" : "NO", r.generation.medianStepMillis(),
            String.format("%,d of %,d (%.1f%%)", r.exactPerHead, r.attended,
                100.0 * r.exactPerHead / r.attended), r.continuation);
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
          + " %d tokens.%n", task.answer(), 100.0 * waveResult.exactPerHead / waveResult.attended,
          speedup, same, tokens);
      out.println("(ms/token: median over the decoded tokens, whole model step: 6 layers, both"
          + " KV heads, output head. exact reads: tokens read exactly per KV head at the last"
          + " step, of all the tokens in the cache then: the prompt and the decoded ones)");
      boolean right = full.answer.equals(task.answer()) && waveResult.answer.equals(task.answer());
      if (!right) {
        out.printf("%nexit code %d: %s answered wrong%n", WRONG_ANSWER,
            !full.answer.equals(task.answer()) ? "full attention (the model itself)"
                : "wave attention");
      }
      out.flush();
      return right ? 0 : WRONG_ANSWER;
    }
  }

  /**
   * @param attended tokens in the cache at the last step: the prompt and the decoded tokens
   */
  private record Result(String method, String answer, String continuation, Generation generation,
      double indexSeconds, long exactPerHead, long attended, int clusters) {}

  private Result decode(Llama llama, PromptState state, String method, WaveConfig config,
      Llama.Progress steps, java.util.function.BiConsumer<Integer, Integer> index) {
    try (ContextCache cache = llama.newCache(AttentionBackends.create(method, config))) {
      state.copyInto(cache);
      long t0 = System.nanoTime();
      if (index != null) {
        cache.endPrefill(index);
      } else {
        cache.endPrefill();
      }
      double indexSeconds = (System.nanoTime() - t0) / 1e9;
      Decoder decoder = llama.decoder(cache);
      int[] done = {0};
      Generation g = Generation.run(decoder, state.lastLogits(), Sampler.greedy(), tokens, null,
          steps == null ? null : id -> steps.update(++done[0], tokens));
      long exact = 0;
      for (int l = 0; l < cache.shape().layers(); l++) {
        for (int h = 0; h < cache.shape().kvHeads(); h++) {
          exact += cache.head(l, h).lastExactTokens();
        }
      }
      int clusters = HeadLayout.isWave(cache.head(0, 0))
          ? HeadLayout.of(cache.head(0, 0)).index().clusterCount() : 0;
      String answer = Scoring.printable(java.util.Arrays.copyOf(g.tokens(), ANSWER_TOKENS));
      String rest = Scoring.printable(java.util.Arrays.copyOfRange(g.tokens(), ANSWER_TOKENS,
          g.tokens().length));
      return new Result(method, answer, rest, g, indexSeconds,
          exact / (cache.shape().layers() * cache.shape().kvHeads()), cache.length(0), clusters);
    }
  }
}
