package org.retroinfer.store.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine.Option;

/** Options shared by the store commands: where the store is, which model and tenant, output form. */
public final class StoreOptions {
  @Option(names = "--store", paramLabel = "DIR",
      description = "Store directory (default: $XDG_DATA_HOME/retroinfer/store or"
          + " ~/.local/share/retroinfer/store).")
  Path store;

  @Option(names = "--tenant", paramLabel = "SALT", defaultValue = "",
      description = "Tenant salt: contexts stored under one salt are never served to another.")
  String tenant;

  @Option(names = "--model", paramLabel = "DIR",
      description = "Checkpoint directory (default: the shipped models/bytecode-llama-10m).")
  Path model;

  @Option(names = "--json", description = "Print JSON for scripts instead of text.")
  boolean json;

  Path storeDirectory() {
    return store != null ? store : ContextStore.defaultDirectory();
  }

  ModelDirectory modelDirectory() {
    return model == null ? ModelDirectory.shipped() : ModelDirectory.of(model);
  }

  /** The model (verified) and its fingerprint. */
  Loaded loadModel() throws IOException {
    ModelDirectory dir = modelDirectory();
    Llama llama = Llama.load(dir);
    return new Loaded(llama, ModelFingerprint.of(dir));
  }

  record Loaded(Llama model, ModelFingerprint fingerprint) implements AutoCloseable {
    @Override
    public void close() {
      model.close();
    }
  }

  static WaveConfig config() {
    return WaveConfig.defaults();
  }

  /** Token ids of a text or a file: bytes, with the document-start token first unless present. */
  static int[] tokens(String text, Path file, boolean documentStart) throws IOException {
    if ((text == null) == (file == null)) {
      throw new IllegalArgumentException("give the prompt with exactly one of --text or --file");
    }
    byte[] bytes = text != null ? text.getBytes(java.nio.charset.StandardCharsets.UTF_8)
        : Files.readAllBytes(file);
    int[] ids = new ByteTokenizer().encode(bytes);
    if (!documentStart || (ids.length > 0 && ids[0] == ByteTokenizer.DOCUMENT_START)) {
      return ids;
    }
    int[] out = new int[ids.length + 1];
    out[0] = ByteTokenizer.DOCUMENT_START;
    System.arraycopy(ids, 0, out, 1, ids.length);
    return out;
  }

  static ObjectMapper json() {
    SimpleModule m = new SimpleModule();
    m.addSerializer(Instant.class, ToStringSerializer.instance);
    return new ObjectMapper().registerModule(m).enable(SerializationFeature.INDENT_OUTPUT);
  }
}
