package org.retroinfer.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.wave.attention.MethodSpec;
import org.retroinfer.model.llama.Generation;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.LlamaConfig;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.app.cli.Progress;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Continues a prompt with the model, through any attention method. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = "Continues a prompt (text or a file) with the model, through any attention"
        + " method; greedy by default, or temperature / top-p sampling.")
public final class GenerateCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Mixin ModelOptions model;
  @Mixin WaveOptions wave;
  @Mixin org.retroinfer.app.cli.DeviceOption device;

  static final class Prompt {
    @Option(names = "--prompt", paramLabel = "TEXT", description = "The prompt text.")
    String text;

    @Option(names = "--prompt-file", paramLabel = "FILE", description = "Read the prompt from a file.")
    Path file;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Prompt prompt;

  @Option(names = "--method", defaultValue = "wave",
      description = "Attention method, in any case: full, wave, quest, streaming, oracle, optionally"
          + " with a budget, e.g. wave:5% (default ${DEFAULT-VALUE}).")
  String method;

  @Option(names = "--max-tokens", defaultValue = "200",
      description = "Tokens to generate, 0 or more (default ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0",
      description = "0 for greedy decoding (default), otherwise the sampling temperature.")
  double temperature;

  @Option(names = "--top-p", defaultValue = "0.95", description = "Nucleus mass when sampling.")
  double topP;

  @Option(names = "--seed", defaultValue = "1", description = "Sampling seed.")
  long seed;

  @Option(names = "--no-document-start", negatable = false,
      description = "Do not start the prompt with the document-start token (byte 2).")
  boolean noDocumentStart;

  @Option(names = "--allow-long-prompt", description = "Accept a prompt longer than the model's"
      + " trained context (max_position_embeddings): it is prefilled whole, at positions the model"
      + " never saw in training, so the output degrades, and time and memory grow with its length."
      + " Without it such a prompt is refused before any work.")
  boolean allowLong;

  @Override
  public Integer call() throws Exception {
    // every argument is checked before the model loads
    MethodSpec m = Arguments.methods(spec, "--method", List.of(method)).get(0);
    Arguments.atLeast(spec, "--max-tokens", maxTokens, 0, "tokens");
    if (!(temperature >= 0)) {
      throw Arguments.invalid(spec, "--temperature must be 0 (greedy) or more, got %s", temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw Arguments.invalid(spec, "--top-p must be above 0 and at most 1, got %s", topP);
    }
    WaveConfig config = wave.config(spec);
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    device.apply(err); // one line on standard error when the GPU was asked for but cannot run
    Sampler sampler = Sampler.of(temperature, topP, seed);
    byte[] text = prompt.text != null ? prompt.text.getBytes(StandardCharsets.UTF_8)
        : Files.readAllBytes(prompt.file);
    ByteTokenizer tokenizer = new ByteTokenizer();
    int[] body = tokenizer.encode(text);
    int[] ids = body;
    if (!noDocumentStart) {
      ids = new int[body.length + 1];
      ids[0] = tokenizer.documentStart();
      System.arraycopy(body, 0, ids, 1, body.length);
    }
    if (ids.length == 0) {
      throw new IllegalArgumentException("the prompt is empty");
    }
    LlamaConfig trainedFor = model.config();
    try {
      trainedFor.checkPromptLength(ids.length, allowLong, "pass --allow-long-prompt");
    } catch (IllegalArgumentException e) {
      throw Arguments.invalid(spec, "%s", e.getMessage()); // a usage error: nothing was loaded
    }
    int trained = trainedFor.maxPositions();
    if (ids.length + maxTokens > trained) {
      err.printf("note: %,d prompt and %,d generated tokens go beyond the %,d the model was"
          + " trained for%n", ids.length, maxTokens, trained);
    }
    try (Llama llama = model.load(err)) {
      PromptState state = new PromptState(llama.attentionShape());
      try (Progress bar = Progress.prefill(err, ids.length)) {
        llama.prefill(state, ids, null, bar::update);
      }
      try (ContextCache cache = llama.newCache(m.backend(config))) {
        state.copyInto(cache);
        try (Progress bar = Progress.start(err, "index", "heads",
            (long) cache.shape().layers() * cache.shape().kvHeads())) {
          cache.endPrefill(bar::update);
        }
        Utf8Printer printer = new Utf8Printer(out);
        Generation g = Generation.run(llama.decoder(cache), state.lastLogits(), sampler, maxTokens,
            null, printer::write);
        printer.finish();
        err.printf("%n%d tokens%s with %s attention over %,d tokens%n", g.tokens().length,
            g.tokens().length == 0 ? ""
                : String.format(", %.2f ms/token (median)", g.medianStepMillis()),
            m, ids.length + g.tokens().length);
      }
    }
    return 0;
  }

  /** Prints byte tokens as UTF-8 text as soon as each character is complete. */
  static final class Utf8Printer {
    private final PrintWriter out;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    Utf8Printer(PrintWriter out) {
      this.out = out;
    }

    void write(int id) {
      pending.write(id);
      byte[] b = pending.toByteArray();
      int lead = b[0] & 0xFF;
      int need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (b.length >= need) {
        out.print(new String(b, StandardCharsets.UTF_8));
        out.flush();
        pending.reset();
      }
    }

    void finish() {
      if (pending.size() > 0) {
        out.print(pending.toString(StandardCharsets.UTF_8));
      }
      out.println();
      out.flush();
    }
  }
}
