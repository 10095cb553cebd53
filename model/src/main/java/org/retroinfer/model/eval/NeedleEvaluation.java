package org.retroinfer.model.eval;

import org.retroinfer.wave.attention.MethodSpec;
import java.util.ArrayList;
import java.util.List;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.wave.WaveConfig;

/**
 * Needle recall, bits per byte and top-1 agreement of several attention methods on the same prompts:
 * for every context length, needle depth and trial, one {@link NeedleTask} is built, its prefix is
 * prefilled once (exact attention, float32), and every method decodes from a copy of the same K/V
 * (see {@link NeedleTrial}). Full attention, if listed, runs first and is the reference for
 * agreement. All randomness comes from {@link Options#seed}.
 */
public final class NeedleEvaluation {

  /**
   * @param contexts prompt lengths in tokens
   * @param depths needle depths in [0, 1]
   * @param trials prompts per (context, depth)
   * @param methods attention methods to compare
   * @param config the wave configuration (K/V type, budgets); baselines get its exact-read budget
   * @param corpus haystack text
   * @param scoredTokens haystack tokens per prompt fed token by token and scored
   * @param seed the seed of every prompt
   */
  public record Options(List<Integer> contexts, List<Double> depths, int trials,
      List<MethodSpec> methods, WaveConfig config, PythonCorpus corpus, int scoredTokens, long seed) {

    public Options {
      if (contexts.isEmpty() || depths.isEmpty() || methods.isEmpty() || trials < 1) {
        throw new IllegalArgumentException("need at least one context, depth, method and trial");
      }
      contexts = List.copyOf(contexts);
      depths = List.copyOf(depths);
      methods = List.copyOf(methods);
    }

    /** The default grid: 2K..16K, depths 10%..90%, full/wave/quest/streaming, 128 scored tokens. */
    public static Options defaults() {
      return new Options(List.of(2048, 4096, 8192, 16384),
          List.of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), 1,
          List.of(MethodSpec.parse("full"), MethodSpec.parse("wave"), MethodSpec.parse("quest"),
              MethodSpec.parse("streaming")),
          WaveConfig.defaults(), PythonCorpus.stdlib(), 128, 20260101L);
    }
  }

  /** Told about each finished prompt. */
  public interface Listener {
    void prefillDone(int context, int done, int total, double seconds);

    void trialDone(int context, double depth, int trial, List<MethodOutcome> outcomes);

    /** Prefill progress of the current prompt: {@code done} of {@code total} tokens. */
    default void prefillProgress(int done, int total) {}
  }

  private final Llama model;
  private final Options options;

  public NeedleEvaluation(Llama model, Options options) {
    this.model = model;
    this.options = options;
  }

  /** The seed of one prompt: distinct per (context, depth, trial), fixed by the base seed. */
  static long seed(long base, int context, int depthIndex, int trial) {
    long h = base;
    h = h * 0x9E3779B97F4A7C15L + context;
    h = h * 0x9E3779B97F4A7C15L + depthIndex;
    h = h * 0x9E3779B97F4A7C15L + trial;
    return h ^ (h >>> 31);
  }

  /**
   * The order methods run in on each prompt: full attention first (the reference for agreement),
   * then the wave methods, then the baselines, which read as many tokens exactly as the first wave
   * method did on average on the same prompt unless they were given a budget of their own.
   */
  static List<MethodSpec> orderForRun(List<MethodSpec> methods) {
    List<MethodSpec> ordered = new ArrayList<>(methods);
    ordered.sort(java.util.Comparator.comparingInt(
        m -> m.isFull() ? 0 : m.name().equals("wave") ? 1 : 2));
    return ordered;
  }

  public EvaluationReport run(Listener listener) {
    List<MethodSpec> methods = orderForRun(options.methods());
    List<EvaluationReport.Trial> trials = new ArrayList<>();
    int total = options.contexts().size() * options.depths().size() * options.trials();
    int done = 0;
    for (int context : options.contexts()) {
      int scored = Math.min(options.scoredTokens(), Math.max(16, context / 16));
      for (int di = 0; di < options.depths().size(); di++) {
        double depth = options.depths().get(di);
        for (int t = 0; t < options.trials(); t++) {
          NeedleTask task = NeedleTask.build(options.corpus(), context, depth, scored,
              seed(options.seed(), context, di, t));
          trials.add(runPrompt(model, task.recallPrompt(), methods, options.config(), context,
              depth, t, listener, ++done, total));
        }
      }
    }
    return EvaluationReport.of(about(options.config(), options.corpus(), options.seed(),
        options.trials()), options.contexts(), methods, trials);
  }

  static java.util.Map<String, Object> about(WaveConfig config, PythonCorpus corpus, long seed,
      int trials) {
    java.util.Map<String, Object> about = new java.util.LinkedHashMap<>();
    about.put("kvType", config.kvType().toString());
    about.put("waveConfig", config); // a JSON object of the record's fields
    about.put("corpus", corpus.description());
    about.put("seed", seed);
    about.put("trials", trials);
    return about;
  }

  /**
   * Prefills one prompt and runs every method on it, in {@link #orderForRun} order: full attention's
   * top-1 predictions are the reference for agreement, and the baselines read as many tokens
   * exactly as the first wave method did on this prompt.
   */
  static EvaluationReport.Trial runPrompt(Llama model, RecallPrompt prompt, List<MethodSpec> ordered,
      WaveConfig config, int context, double depth, int trial, Listener listener, int done,
      int total) {
    long p0 = System.nanoTime();
    PromptState state = new PromptState(model.attentionShape());
    model.prefill(state, prompt.prefix(), null, listener == null ? null : listener::prefillProgress);
    double seconds = (System.nanoTime() - p0) / 1e9;
    if (listener != null) {
      listener.prefillDone(context, done, total, seconds);
    }
    boolean haveFull = ordered.get(0).isFull();
    int scored = prompt.scoredEnd() - prompt.prefixLength();
    int[] reference = null;
    List<MethodOutcome> outcomes = new ArrayList<>();
    Integer waveBudget = null;
    for (MethodSpec m : ordered) {
      int[] top1 = new int[scored];
      MethodSpec run = waveBudget == null ? m : m.withTokens(waveBudget);
      MethodOutcome o = NeedleTrial.run(model, prompt, state, m.toString(), run.backend(config),
          reference, top1);
      if (haveFull && reference == null) {
        reference = top1;
      }
      if (waveBudget == null && m.name().equals("wave")) {
        waveBudget = (int) Math.round(o.exactPerHead());
      }
      outcomes.add(o);
    }
    if (listener != null) {
      listener.trialDone(context, depth, trial, outcomes);
    }
    return new EvaluationReport.Trial(context, depth, trial, prompt.recalls(), seconds, outcomes);
  }
}
