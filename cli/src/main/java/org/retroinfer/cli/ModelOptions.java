package org.retroinfer.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.LlamaConfig;
import picocli.CommandLine.Option;

/** Which checkpoint to load: {@code --model DIR}, by default the model shipped with the project. */
public final class ModelOptions {
  @Option(names = "--model", paramLabel = "DIR",
      description = "Checkpoint directory (config.json + model.safetensors, optional SHA256SUMS);"
          + " default: the shipped models/bytecode-llama-10m.")
  Path model;

  public ModelDirectory directory() {
    return model == null ? ModelDirectory.shipped() : ModelDirectory.of(model);
  }

  /**
   * The checkpoint's config.json alone (cheap: no weights read), for checking arguments against the
   * model, e.g. a context against the length it was trained for.
   */
  public LlamaConfig config() throws IOException {
    return LlamaConfig.read(directory().config());
  }

  /** Loads and verifies the model, and says so on {@code out}. */
  public Llama load(PrintWriter out) throws IOException {
    ModelDirectory dir = directory();
    List<String> verified = dir.verify();
    Llama llama = Llama.load(dir);
    LlamaConfig c = llama.config();
    long params = (long) c.vocabSize() * c.hiddenSize() * (c.tiedEmbeddings() ? 1 : 2)
        + (long) c.layers() * (2L * c.hiddenSize() * (c.queryWidth() + c.kvWidth())
            + 3L * c.hiddenSize() * c.intermediateSize() + 2L * c.hiddenSize())
        + c.hiddenSize();
    out.printf("model      %s: %.1fM parameters, %d layers, %d query / %d KV heads x %d, %s%n",
        dir.path().getFileName(), params / 1e6, c.layers(), c.queryHeads(), c.kvHeads(),
        c.headDim(), verified.isEmpty() ? "no SHA256SUMS to verify"
            : "sha256 verified (" + String.join(", ", verified) + ")");
    out.flush();
    return llama;
  }
}
