package org.retroinfer.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.retroinfer.model.eval.EvaluationReport;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.eval.NeedleEvaluation;
import org.retroinfer.model.eval.NeedleTask;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code eval niah}: needle recall, bits per byte, agreement and decode speed per method. */
@Command(name = "niah", mixinStandardHelpOptions = true,
    description = "Needle in a haystack: for each context length, needle depth and trial, one prompt is "
        + "prefilled once and every method decodes from the same K/V. Prints per context and "
        + "method: recall (exact 5-digit answers), bits per byte and top-1 agreement with full "
        + "attention on the last haystack tokens (fed token by token through the method), decode "
        + "tokens/s, tokens read exactly per head and step, prefill and index build time.")
public final class NiahCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;
  @Mixin org.retroinfer.app.cli.DeviceOption device;

  @Option(names = "--context", split = ",", paramLabel = "TOKENS",
      defaultValue = "2048,4096,8192,16384",
      description = "Context lengths (default ${DEFAULT-VALUE}).")
  List<Integer> contexts;

  @Option(names = "--depths", split = ",", paramLabel = "FRACTION",
      defaultValue = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
      description = "Needle depths (default ${DEFAULT-VALUE}).")
  List<Double> depths;

  @Option(names = "--trials", defaultValue = "1",
      description = "Prompts per context and depth (default ${DEFAULT-VALUE}): the run has"
          + " contexts x depths x trials prompts, e.g. 9 for one context at the default depths.")
  int trials;

  @Option(names = "--methods", split = ",", defaultValue = "full,wave,quest,streaming",
      description = "Methods, in any case, each optionally with settings: wave:fixed, wave:adaptive:mass=0.9,"
          + " wave:fixed:r=5%%:e=20%%:min=0, oracle:tokens=1100 (default ${DEFAULT-VALUE})."
          + " Baselines read as many tokens exactly as the first wave method did on the same"
          + " prompt, unless given tokens=.")
  List<String> methods;

  @Option(names = "--scored-tokens", defaultValue = "128",
      description = "Haystack tokens per prompt scored for bits per byte and agreement (at most"
          + " context/16; default ${DEFAULT-VALUE}).")
  int scored;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = PythonCorpus.DEFAULT_NAME,
      description = "Haystack text: " + PythonCorpus.CHOICES + ".")
  String haystack;

  @Option(names = "--seed", defaultValue = "20260101", description = "Seed of every prompt.")
  long seed;

  @Option(names = "--json", description = "Print the report as JSON (with every trial).")
  boolean json;

  @Option(names = "--save", paramLabel = "FILE",
      description = "Also write the JSON report (with every trial) to FILE.")
  Path save;

  @Option(names = "--warmup-steps", paramLabel = "N", defaultValue = "" + JitWarmUp.STEPS,
      description = "Decode steps per method on a 4K-token prompt before the evaluation, so that"
          + " JIT compilation lands in no method's tokens/s (default ${DEFAULT-VALUE}; 0 skips"
          + " it).")
  int warmupSteps;

  @Override
  public Integer call() throws Exception {
    // every argument is checked before the model loads
    for (int context : contexts) {
      // the scored tokens of a prompt, as NeedleEvaluation chooses them
      int scoredHere = Math.min(scored, Math.max(16, context / 16));
      Arguments.atLeast(spec, "--context", context, NeedleTask.minimumContext(scoredHere),
          "tokens (the needle line, the question and " + scoredHere + " scored tokens of"
          + " haystack, twice over)");
    }
    for (double depth : depths) {
      Arguments.fraction(spec, "--depths", depth);
    }
    Arguments.atLeast(spec, "--trials", trials, 1, "prompt per context and depth");
    Arguments.atLeast(spec, "--scored-tokens", scored, 1, "token");
    Arguments.atLeast(spec, "--warmup-steps", warmupSteps, 0, "steps");
    List<MethodSpec> specs = Arguments.methods(spec, "--methods", methods);
    WaveConfig config = wave.config(spec);
    if (save != null) {
      Arguments.writable(spec, "--save", save);
    }
    PythonCorpus corpus = Arguments.haystack(spec, haystack);
    int trained = model.config().maxPositions();

    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    device.apply(err); // one line on standard error when the GPU was asked for but cannot run
    int prompts = contexts.size() * depths.size() * trials;
    err.printf("eval niah  %d prompt%s: %d context%s (%s) x %d depth%s (%s) x %d trial%s, each"
        + " decoded by %s%n", prompts, prompts == 1 ? "" : "s", contexts.size(),
        contexts.size() == 1 ? "" : "s", join(contexts.stream().map(c -> String.format("%,d", c))),
        depths.size(), depths.size() == 1 ? "" : "s",
        join(depths.stream().map(d -> String.format("%.0f%%", 100 * d))), trials,
        trials == 1 ? "" : "s", join(specs.stream().map(MethodSpec::toString)));
    for (int context : contexts) {
      if (context > trained) {
        err.printf("note       %,d tokens is beyond the %,d the model was trained for: expect"
            + " recall to drop there, with every method%n", context, trained);
      }
    }
    err.flush();
    try (Llama llama = model.load(err)) {
      err.printf("haystack   %s; K/V %s%n", corpus.description(), config.kvType());
      err.flush();
      JitWarmUp.run(llama, config, specs, warmupSteps, err);
      NeedleEvaluation.Options options = new NeedleEvaluation.Options(contexts, depths, trials,
          specs, config, corpus, scored, seed);
      long work = (long) depths.size() * trials * contexts.stream().mapToLong(c -> c).sum();
      EvaluationReport report;
      // one unit per prefilled token: a 16K prompt weighs eight times a 2K one
      try (Progress progress = Progress.start(err, "eval niah", "tokens", work)) {
        report = new NeedleEvaluation(llama, options).run(new EvalListener(err, progress));
      }
      if (save != null) {
        Files.writeString(save, report.toJson() + "\n");
      }
      out.print(json ? report.toJson() + "\n" : report.toTable());
      out.flush();
    }
    return 0;
  }

  private static String join(Stream<String> items) {
    return items.collect(Collectors.joining(", "));
  }
}
