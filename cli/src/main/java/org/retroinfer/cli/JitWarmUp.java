package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.SplittableRandom;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.llama.Generation;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * Compiles the decode path of every method before anything is timed: a prompt of {@link #TOKENS}
 * tokens, decoded {@link #STEPS} steps by each method. Without it the first method to run pays for
 * the JIT compilation of the shared model code and looks slower than the ones after it. The prompt
 * is long enough that the wave index has several times more clusters than the retrieval floor:
 * with a barely indexed prompt every cluster is retrieved, the estimation zone stays tiny, and its
 * kernels were still interpreted or half-compiled when a timed 16K decode began (measured: wave's
 * median step 6.5 ms instead of about 2 ms).
 */
final class JitWarmUp {
  /** Decode steps per method: C2 compiles the wave path only after that many. */
  static final int STEPS = 256;
  static final int TOKENS = 4096;

  private JitWarmUp() {}

  /**
   * Runs the warm-up with {@code steps} decode steps per method (0 skips it), showing progress on
   * {@code err}.
   */
  static void run(Llama llama, WaveConfig config, List<MethodSpec> methods, int steps,
      PrintWriter err) {
    if (steps == 0) {
      return;
    }
    int[] prompt = new int[Math.max(TOKENS, config.minIndexedContext() + 128)];
    SplittableRandom r = new SplittableRandom(1);
    for (int i = 0; i < prompt.length; i++) {
      prompt[i] = 32 + r.nextInt(90);
    }
    // one unit per prefilled and per decoded token: the bar moves through both parts
    long total = prompt.length + (long) steps * methods.size();
    try (Progress progress = Progress.start(err, "warm-up", "tokens", total)) {
      PromptState s = new PromptState(llama.attentionShape());
      llama.prefill(s, prompt, null, (done, all) -> progress.stepTo(done));
      long[] done = {prompt.length};
      for (MethodSpec m : methods) {
        try (ContextCache cache = llama.newCache(m.backend(config))) {
          s.copyInto(cache);
          cache.endPrefill();
          Generation.run(llama.decoder(cache), s.lastLogits(), Sampler.greedy(), steps, null,
              id -> progress.stepTo(++done[0]));
        }
      }
    }
  }
}
