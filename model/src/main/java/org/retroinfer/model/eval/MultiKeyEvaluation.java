package org.retroinfer.model.eval;

import org.retroinfer.wave.attention.MethodSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.wave.WaveConfig;

/**
 * Recall, bits per byte and top-1 agreement of several attention methods on {@link MultiKeyTask}
 * prompts: keys with near-identical names, half of them in text fed through the decoder so that
 * the index grows during decode, then all of them asked for in a row. Each prompt's prefix is
 * prefilled once and every method decodes from a copy of the same K/V; full attention runs first
 * and is the reference for agreement, baselines read as many tokens exactly as wave did.
 */
public final class MultiKeyEvaluation {

  /**
   * @param contexts prompt lengths in tokens (recalls included)
   * @param trials prompts per context
   * @param methods attention methods to compare
   * @param config the wave configuration
   * @param corpus haystack text
   * @param decodedTokens haystack tokens at the end fed token by token and scored
   * @param seed the seed of every prompt
   */
  public record Options(List<Integer> contexts, int trials, List<MethodSpec> methods,
      WaveConfig config, PythonCorpus corpus, int decodedTokens, long seed) {

    public Options {
      if (contexts.isEmpty() || methods.isEmpty() || trials < 1) {
        throw new IllegalArgumentException("need at least one context, method and trial");
      }
      contexts = List.copyOf(contexts);
      methods = List.copyOf(methods);
    }
  }

  private final Llama model;
  private final Options options;

  public MultiKeyEvaluation(Llama model, Options options) {
    this.model = model;
    this.options = options;
  }

  public EvaluationReport run(NeedleEvaluation.Listener listener) {
    List<MethodSpec> methods = NeedleEvaluation.orderForRun(options.methods());
    List<EvaluationReport.Trial> trials = new ArrayList<>();
    int total = options.contexts().size() * options.trials();
    int done = 0;
    for (int context : options.contexts()) {
      for (int t = 0; t < options.trials(); t++) {
        RecallPrompt prompt = MultiKeyTask.build(options.corpus(), context,
            options.decodedTokens(), NeedleEvaluation.seed(options.seed(), context, -1, t));
        trials.add(NeedleEvaluation.runPrompt(model, prompt, methods, options.config(), context,
            Double.NaN, t, listener, ++done, total));
      }
    }
    Map<String, Object> about = NeedleEvaluation.about(options.config(), options.corpus(),
        options.seed(), options.trials());
    about.put("decodedTokens", options.decodedTokens());
    return EvaluationReport.of(about, options.contexts(), methods, trials);
  }
}
