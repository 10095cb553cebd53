package org.retroinfer.it;

import org.retroinfer.app.ModelFingerprints;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.store.ModelFingerprint;

/** The shipped model, loaded once per test JVM. */
final class ShippedModel {
  private static Llama model;
  private static ModelFingerprint fingerprint;

  private ShippedModel() {}

  static synchronized Llama model() {
    if (model == null) {
      try {
        ModelDirectory dir = ModelDirectory.shipped();
        model = Llama.load(dir);
        fingerprint = ModelFingerprints.of(dir);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return model;
  }

  static synchronized ModelFingerprint fingerprint() {
    model();
    return fingerprint;
  }
}
