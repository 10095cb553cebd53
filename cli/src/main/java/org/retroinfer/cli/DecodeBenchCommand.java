package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.retroinfer.model.eval.BudgetStats;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Decode speed of attention methods side by side: one prefill, one cache per method filled with the
 * same K/V, then decode steps interleaved across methods (method A step, method B step, ...) on the
 * same input tokens, so that every method sees the same machine load at the same time.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
    description = "Decode speed side by side: prefills a Python prompt once, fills one cache per "
        + "method with the same K/V (timing the index build), then interleaves decode steps of all "
        + "methods on the same input tokens and prints time per step, tokens/s and the speedup over "
        + "the first method.")
public final class DecodeBenchCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;
  @Mixin org.retroinfer.app.cli.DeviceOption device;

  @Option(names = "--context", defaultValue = "16384",
      description = "Prompt tokens (default ${DEFAULT-VALUE}).")
  int context;

  @Option(names = "--steps", defaultValue = "200",
      description = "Timed decode steps per method (default ${DEFAULT-VALUE}).")
  int steps;

  @Option(names = "--warmup", defaultValue = "64",
      description = "Untimed steps per method first (default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--methods", split = ",", defaultValue = "full,wave",
      description = "Methods, in any case; the first is the baseline of the speedup (default"
          + " ${DEFAULT-VALUE}).")
  List<String> methods;

  @Option(names = "--haystack", paramLabel = "SOURCE", defaultValue = PythonCorpus.DEFAULT_NAME,
      description = "Haystack text: " + PythonCorpus.CHOICES + ".")
  String haystack;

  @Option(names = "--seed", defaultValue = "11", description = "Seed of the prompt text.")
  long seed;

  @Override
  public Integer call() throws Exception {
    // every argument is checked before the model loads
    Arguments.atLeast(spec, "--context", context, 1, "token");
    Arguments.atLeast(spec, "--steps", steps, 1, "timed step");
    Arguments.atLeast(spec, "--warmup", warmup, 0, "steps");
    List<MethodSpec> specs = Arguments.methods(spec, "--methods", methods);
    WaveConfig config = wave.config(spec);
    PythonCorpus corpus = Arguments.haystack(spec, haystack);
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    device.apply(err); // one line on standard error when the GPU was asked for but cannot run
    int trained = model.config().maxPositions();
    if (context + warmup + steps > trained) {
      err.printf("note       %,d prompt and %,d decoded tokens go beyond the %,d the model was"
          + " trained for; the speed is still measured%n", context, warmup + steps, trained);
    }
    byte[] text = corpus.text(context + warmup + steps, new SplittableRandom(seed));
    int[] ids = new ByteTokenizer().encode(text);
    try (Llama llama = model.load(out)) {
      PromptState state = new PromptState(llama.attentionShape());
      double prefill;
      try (Progress bar = Progress.prefill(err, context)) {
        llama.prefill(state, Arrays.copyOf(ids, context), null, bar::update);
        prefill = bar.seconds();
      }
      List<ContextCache> caches = new ArrayList<>();
      List<Decoder> decoders = new ArrayList<>();
      double[] index = new double[specs.size()];
      try {
        try (Progress bar = Progress.start(err, "index", "caches", specs.size())) {
          for (int m = 0; m < specs.size(); m++) {
            ContextCache cache = llama.newCache(specs.get(m).backend(config));
            caches.add(cache);
            state.copyInto(cache);
            long t0 = System.nanoTime();
            cache.endPrefill();
            index[m] = (System.nanoTime() - t0) / 1e9;
            decoders.add(llama.decoder(cache));
            bar.stepTo(m + 1);
          }
        }
        long[][] nanos = new long[specs.size()][steps];
        long[][] attention = new long[specs.size()][steps];
        List<BudgetStats> budgets = new ArrayList<>();
        for (int m = 0; m < specs.size(); m++) {
          budgets.add(new BudgetStats(llama.config().layers(), llama.config().kvHeads()));
        }
        try (Progress bar = Progress.start(err, "decode", "steps",
            (long) (warmup + steps) * specs.size())) {
          for (int i = 0; i < warmup + steps; i++) {
            int token = ids[context + i];
            for (int m = 0; m < specs.size(); m++) {
              Decoder decoder = decoders.get(m);
              long a0 = decoder.attentionNanos();
              long t0 = System.nanoTime();
              decoder.step(token);
              long dt = System.nanoTime() - t0;
              if (i >= warmup) {
                nanos[m][i - warmup] = dt;
                attention[m][i - warmup] = decoder.attentionNanos() - a0;
                budgets.get(m).addStep(caches.get(m));
              }
            }
            bar.stepTo((long) (i + 1) * specs.size());
          }
        }
        out.printf("prefill    %,d tokens in %.2f s (%,.0f tokens/s); K/V %s%n", context, prefill,
            context / prefill, config.kvType());
        out.printf("decode     %d steps per method after %d warm-up steps, interleaved across"
            + " methods, from position %,d%n%n", steps, warmup, context);
        int width = Math.max(12, specs.stream().mapToInt(s -> s.toString().length()).max().orElse(6));
        String col = "%-" + width + "s";
        out.printf(col + " %10s %10s %10s %10s %10s %9s %13s %10s %12s %10s %8s%n", "method",
            "median ms", "mean ms", "p90 ms", "max ms", "tokens/s", "speedup", "attention ms",
            "attn x", "exact/head", "index s", "index%");
        double base = median(nanos[0]);
        double baseAttention = median(attention[0]);
        for (int m = 0; m < specs.size(); m++) {
          double med = median(nanos[m]);
          double att = median(attention[m]);
          out.printf(col + " %10.3f %10.3f %10.3f %10.3f %10.1f %8.2fx %13.3f %9.2fx %12.0f %10.3f"
              + " %7.1f%%%n",
              specs.get(m), med / 1e6, Arrays.stream(nanos[m]).average().orElse(0) / 1e6,
              percentile(nanos[m], 0.9) / 1e6, Arrays.stream(nanos[m]).max().orElse(0) / 1e6,
              1e9 / med, base / med, att / 1e6,
              baseAttention / att, budgets.get(m).mean(), index[m],
              100 * index[m] / prefill);
        }
        out.println("\n(attention ms: median time per step inside the cache, append + attend of all"
            + " layers; the rest of a step is the model's own products, the same for every method."
            + " max ms: the slowest step, e.g. one that adds a segment to the wave index every"
            + " 1,024 decoded tokens)");
        out.printf("%nexact tokens per step and head, as read: mean, p10/p50/p90/max, then the"
            + " mean of each layer.kvHead%n%s%n", BudgetStats.header(width));
        for (int m = 0; m < specs.size(); m++) {
          out.println(budgets.get(m).row(specs.get(m).toString(), width));
        }
        out.flush();
      } finally {
        caches.forEach(ContextCache::close);
      }
    }
    return 0;
  }

  private static double median(long[] x) {
    return percentile(x, 0.5);
  }

  private static double percentile(long[] x, double p) {
    long[] s = x.clone();
    Arrays.sort(s);
    return s[Math.min(s.length - 1, (int) Math.floor(p * s.length))];
  }
}
