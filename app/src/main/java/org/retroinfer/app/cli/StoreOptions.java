package org.retroinfer.app.cli;

import org.retroinfer.app.ModelFingerprints;
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
import org.retroinfer.model.llama.LlamaConfig;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** Options shared by the store commands: where the store is, which model and tenant, output form. */
public final class StoreOptions {
  @Option(names = "--store", paramLabel = "DIR|URL",
      description = "Store directory (default: $XDG_DATA_HOME/retroinfer/store or"
          + " ~/.local/share/retroinfer/store), or http://HOST:PORT/INDEX: an OpenSearch index"
          + " of the retroinfer plugin (any node's HTTP port).")
  String store;

  @Option(names = "--tenant", paramLabel = "SALT", defaultValue = "",
      description = "Tenant salt: every command sees only this tenant's contexts (those stored under"
          + " another salt are never listed, served, explained or deleted). Without it, the"
          + " default tenant, which sees only the contexts stored without a salt.")
  String tenant;

  @Option(names = "--model", paramLabel = "DIR",
      description = "Checkpoint directory (default: the shipped models/bytecode-llama-10m). list and"
          + " delete see every model's contexts of the tenant unless it is given.")
  Path model;

  @Option(names = "--json", description = "Print JSON for scripts instead of text.")
  boolean json;

  private RemoteContextStore remote;

  Path storeDirectory() {
    if (remote()) {
      throw new IllegalArgumentException("this command reads a store directory; " + store
          + " is a remote store (store list, put, get, delete, inspect and explain take one)");
    }
    return store != null ? Path.of(store) : ContextStore.defaultDirectory();
  }

  /** Whether --store names a remote store (http://HOST:PORT/INDEX). */
  boolean remote() {
    return RemoteContextStore.isRemote(store);
  }

  /** The remote store (one client per command, so that its requests share a connection). */
  RemoteContextStore remoteStore() {
    if (remote == null) {
      remote = RemoteContextStore.of(store);
    }
    return remote;
  }

  /** The model given with --model, or null (every model). */
  ModelFingerprint modelOrNull() throws IOException {
    return model == null ? null : fingerprint();
  }

  ModelDirectory modelDirectory() {
    return model == null ? ModelDirectory.shipped() : ModelDirectory.of(model);
  }

  /** The model's configuration (config.json only: cheap, for checks before any work). */
  LlamaConfig modelConfig() throws IOException {
    return LlamaConfig.read(modelDirectory().config());
  }

  /** The model's fingerprint (hashes its weights; does not load them). */
  ModelFingerprint fingerprint() throws IOException {
    return ModelFingerprints.of(modelDirectory());
  }

  /**
   * What this tenant sees of {@code store}: its contexts of the model given with {@code --model},
   * or of every model when none is given.
   */
  ContextStore.TenantView view(ContextStore store) throws IOException {
    return store.tenant(tenant, model == null ? null : fingerprint());
  }

  /**
   * Refuses a prompt longer than the model's trained context unless {@code allowLonger}: a usage
   * error (exit code 2), before the model or the store is touched.
   */
  void checkPromptLength(CommandSpec spec, int[] tokens, boolean allowLonger) throws IOException {
    try {
      modelConfig().checkPromptLength(tokens.length, allowLonger, "pass --allow-long-prompt");
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage());
    }
  }

  /** The model (verified) and its fingerprint. */
  Loaded loadModel() throws IOException {
    ModelDirectory dir = modelDirectory();
    Llama llama = Llama.load(dir);
    return new Loaded(llama, ModelFingerprints.of(dir));
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
