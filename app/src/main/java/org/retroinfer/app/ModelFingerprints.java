package org.retroinfer.app;

import java.io.IOException;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.LlamaConfig;
import org.retroinfer.store.ModelFingerprint;

/** The store's fingerprint of a checkpoint: where the model and the store meet. */
public final class ModelFingerprints {
  private ModelFingerprints() {}

  /** Hashes the checkpoint's weights file and reads its config (the weights are not loaded). */
  public static ModelFingerprint of(ModelDirectory dir) throws IOException {
    return ModelFingerprint.of(ModelDirectory.sha256(dir.weights()),
        LlamaConfig.read(dir.config()).toString());
  }
}
