package org.retroinfer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import org.retroinfer.model.llama.Llama;

/** The shipped model and its reference data, loaded once per test JVM. */
public final class TestModel {
  private static Llama model;
  private static JsonNode reference;

  private TestModel() {}

  public static synchronized Llama get() {
    if (model == null) {
      try {
        model = Llama.load(ModelDirectory.shipped());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return model;
  }

  public static synchronized JsonNode reference() {
    if (reference == null) {
      try {
        reference = new ObjectMapper().readTree(
            Files.readString(ModelDirectory.shipped().reference()));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return reference;
  }

  public static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  public static float[] floats(JsonNode array) {
    float[] out = new float[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) array.get(i).asDouble();
    }
    return out;
  }
}
