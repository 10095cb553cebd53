package org.retroinfer.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.model.eval.EvaluationReport;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.eval.MultiKeyEvaluation;
import org.retroinfer.model.eval.MultiKeyTask;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code eval multikey}: several keys, the index growing during decode, recalls in a row. */
@Command(name = "multikey", mixinStandardHelpOptions = true,
    description = "A harder recall task: four keys in one haystack, two pairs with near-identical"
        + " names (KEY_river42, KEY_river47); one key of each pair is prefilled, the other lies in"
        + " the last --decoded tokens, which are fed through the decoder so that the wave index"
        + " grows during decode; then all four are asked for in a row, each method answering with"
        + " its own digits. Prints per context and method: recall per answer (prefilled and decoded"
        + " keys apart), bits per byte and top-1 agreement with full attention over the decoded"
        + " text, decode tokens/s, and the tokens read exactly per head and step.")
public final class MultiKeyCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;
  @Mixin org.retroinfer.app.cli.DeviceOption device;

  @Option(names = "--context", split = ",", paramLabel = "TOKENS", defaultValue = "16384",
      description = "Context lengths, recalls included (default ${DEFAULT-VALUE}).")
  List<Integer> contexts;

  @Option(names = "--trials", defaultValue = "8",
      description = "Prompts per context, four recalls each (default ${DEFAULT-VALUE}).")
  int trials;

  @Option(names = "--decoded", paramLabel = "TOKENS", defaultValue = "1400",
      description = "Haystack tokens at the end fed through the decoder (default ${DEFAULT-VALUE};"
          + " more than W + U = 1,088 grows the index by a segment).")
  int decoded;

  @Option(names = "--methods", split = ",", defaultValue = "full,wave,wave:fixed,oracle",
      description = "Methods, as for eval niah (default ${DEFAULT-VALUE}).")
  List<String> methods;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = "stdlib",
      description = "'stdlib' (the shipped corpus), 'system', 'builtin', or comma-separated"
          + " directories of Python sources (default ${DEFAULT-VALUE}).")
  String haystack;

  @Option(names = "--seed", defaultValue = "20261207", description = "Seed of every prompt.")
  long seed;

  @Option(names = "--warmup-steps", paramLabel = "STEPS", defaultValue = "" + JitWarmUp.STEPS,
      description = "Untimed decode steps per method before the first prompt, so that no method"
          + " pays the JIT's compilation in its tok/s (default ${DEFAULT-VALUE}; 0 skips).")
  int warmupSteps;

  @Option(names = "--json", description = "Print the report as JSON (with every prompt).")
  boolean json;

  @Option(names = "--save", paramLabel = "FILE",
      description = "Also write the JSON report (with every prompt) to FILE.")
  java.nio.file.Path save;

  @Override
  public Integer call() throws Exception {
    // every argument is checked before the model loads
    Arguments.atLeast(spec, "--decoded", decoded, MultiKeyTask.MIN_DECODED, "tokens");
    for (int context : contexts) {
      Arguments.atLeast(spec, "--context", context, MultiKeyTask.minimumContext(decoded),
          "tokens (four keys, four recalls and twice the " + decoded + " decoded tokens)");
    }
    Arguments.atLeast(spec, "--trials", trials, 1, "prompt per context");
    Arguments.atLeast(spec, "--warmup-steps", warmupSteps, 0, "steps");
    List<MethodSpec> specs = Arguments.methods(spec, "--methods", methods);
    WaveConfig config = wave.config(spec);
    if (save != null) {
      Arguments.writable(spec, "--save", save);
    }
    PythonCorpus corpus = Arguments.haystack(spec, haystack);
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    device.apply(err); // one line on standard error when the GPU was asked for but cannot run
    int prompts = contexts.size() * trials;
    err.printf("eval multikey  %d prompt%s of %d recalls, %,d tokens decoded before them, each"
        + " decoded by %s%n", prompts, prompts == 1 ? "" : "s", MultiKeyTask.KEYS, decoded,
        String.join(", ", specs.stream().map(MethodSpec::toString).toList()));
    err.flush();
    MultiKeyEvaluation.Options options = new MultiKeyEvaluation.Options(contexts, trials, specs,
        config, corpus, decoded, seed);
    try (Llama llama = model.load(err)) {
      err.printf("haystack   %s; K/V %s%n", corpus.description(), config.kvType());
      err.flush();
      JitWarmUp.run(llama, config, specs, warmupSteps, err);
      long work = (long) trials * contexts.stream().mapToLong(c -> c).sum();
      EvaluationReport report;
      try (Progress progress = Progress.start(err, "eval multikey", "tokens", work)) {
        report = new MultiKeyEvaluation(llama, options).run(new EvalListener(err, progress));
      }
      if (save != null) {
        Files.writeString(save, report.toJson() + "\n");
      }
      out.print(json ? report.toJson() + "\n" : report.toTable());
      out.flush();
    }
    return 0;
  }
}
