package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.model.eval.EvaluationReport;
import org.retroinfer.model.eval.MethodOutcome;
import org.retroinfer.model.eval.MethodSpec;
import org.retroinfer.model.eval.NeedleEvaluation;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Llama;
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

  @Option(names = "--context", split = ",", paramLabel = "TOKENS",
      defaultValue = "2048,4096,8192,16384",
      description = "Context lengths (default ${DEFAULT-VALUE}).")
  List<Integer> contexts;

  @Option(names = "--depths", split = ",", paramLabel = "FRACTION",
      defaultValue = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
      description = "Needle depths (default ${DEFAULT-VALUE}).")
  List<Double> depths;

  @Option(names = "--trials", defaultValue = "1",
      description = "Prompts per context and depth (default ${DEFAULT-VALUE}).")
  int trials;

  @Option(names = "--methods", split = ",", defaultValue = "full,wave,quest,streaming",
      description = "Methods, each optionally with a retrieval budget, e.g. wave:0.05 (default"
          + " ${DEFAULT-VALUE}). Baselines read as many tokens exactly as wave does.")
  List<String> methods;

  @Option(names = "--scored-tokens", defaultValue = "128",
      description = "Haystack tokens per prompt scored for bits per byte and agreement (at most"
          + " context/16; default ${DEFAULT-VALUE}).")
  int scored;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = "system",
      description = "'system', 'builtin', or comma-separated directories of Python sources.")
  String haystack;

  @Option(names = "--seed", defaultValue = "20260101", description = "Seed of every prompt.")
  long seed;

  @Option(names = "--json", description = "Print the report as JSON (with every trial).")
  boolean json;

  @Option(names = "--save", paramLabel = "FILE",
      description = "Also write the JSON report (with every trial) to FILE.")
  java.nio.file.Path save;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    WaveConfig config = wave.config();
    List<MethodSpec> specs = methods.stream().map(MethodSpec::parse).toList();
    PythonCorpus corpus = PythonCorpus.named(haystack);
    try (Llama llama = model.load(err)) {
      err.printf("haystack   %s; K/V %s; %d prompts%n", corpus.description(), config.kvType(),
          contexts.size() * depths.size() * trials);
      NeedleEvaluation.Options options = new NeedleEvaluation.Options(contexts, depths, trials,
          specs, config, corpus, scored, seed);
      EvaluationReport report = new NeedleEvaluation(llama, options).run(
          new NeedleEvaluation.Listener() {
            double prefill;
            int done;
            int total;

            @Override
            public void prefillDone(int context, int done, int total, double seconds) {
              this.prefill = seconds;
              this.done = done;
              this.total = total;
            }

            @Override
            public void trialDone(int context, double depth, int trial, List<MethodOutcome> os) {
              StringBuilder sb = new StringBuilder(String.format(
                  "[%d/%d] %,d tokens, depth %.0f%%, trial %d: prefill %.1f s |", done, total,
                  context, depth * 100, trial, prefill));
              for (MethodOutcome o : os) {
                sb.append(String.format(" %s %s %s %.1f tok/s |", o.method(), o.answer(),
                    o.correct() ? "ok" : "MISS", o.decodeSteps() / (o.decodeNanos() / 1e9)));
              }
              err.println(sb);
              err.flush();
            }
          });
      if (save != null) {
        java.nio.file.Files.writeString(save, report.toJson() + "\n");
      }
      out.print(json ? report.toJson() + "\n" : report.toTable());
      out.flush();
    }
    return 0;
  }
}
