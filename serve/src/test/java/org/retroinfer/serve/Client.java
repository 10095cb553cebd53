package org.retroinfer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A small HTTP client of the server for tests (JSON in, JSON or server-sent events out). */
final class Client {
  static final ObjectMapper JSON = new ObjectMapper();
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10))
      .build();
  private final String base;
  private final String key;

  Client(int port, String key) {
    this.base = "http://127.0.0.1:" + port;
    this.key = key;
  }

  record Reply(int status, JsonNode body, String text) {}

  Reply get(String path) throws Exception {
    return send(request(path).GET().build());
  }

  Reply delete(String path) throws Exception {
    return send(request(path).DELETE().build());
  }

  Reply post(String path, Object body) throws Exception {
    String text = body instanceof String s ? s : JSON.writeValueAsString(body);
    return send(request(path).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(text)).build());
  }

  /** The data lines of a streamed answer, in order (the last is "[DONE]" when it completed). */
  List<String> stream(String path, Object body) throws Exception {
    // OpenAI's clients ask for JSON even when they stream
    HttpResponse<InputStream> r = http.send(request(path).header("Accept", "application/json")
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
            JSON.writeValueAsString(body))).build(), HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200) {
      throw new AssertionError("status " + r.statusCode() + ": "
          + new String(r.body().readAllBytes(), StandardCharsets.UTF_8));
    }
    if (!r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream")) {
      throw new AssertionError("content type " + r.headers().firstValue("content-type"));
    }
    List<String> data = new ArrayList<>();
    try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(),
        StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        if (line.startsWith("data:")) {
          data.add(line.substring(5).strip());
        }
      }
    }
    return data;
  }

  /** Opens a stream and returns its body, unread (the caller closes it). */
  InputStream openStream(String path, Object body) throws Exception {
    HttpResponse<InputStream> r = http.send(request(path).header("Content-Type",
        "application/json").POST(HttpRequest.BodyPublishers.ofString(
            JSON.writeValueAsString(body))).build(), HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200) {
      throw new AssertionError("status " + r.statusCode());
    }
    return r.body();
  }

  private HttpRequest.Builder request(String path) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
        .timeout(Duration.ofSeconds(60));
    if (key != null) {
      b.header("Authorization", "Bearer " + key);
    }
    return b;
  }

  private Reply send(HttpRequest r) throws Exception {
    HttpResponse<String> res = http.send(r, HttpResponse.BodyHandlers.ofString());
    JsonNode body = null;
    String ct = res.headers().firstValue("content-type").orElse("");
    if (ct.startsWith("application/json")) {
      body = JSON.readTree(res.body());
    }
    return new Reply(res.statusCode(), body, res.body());
  }

  /** A Python-like text of about {@code bytes} bytes, different for each seed. */
  static String text(int seed, int bytes) {
    StringBuilder b = new StringBuilder();
    java.util.Random r = new java.util.Random(seed);
    String[] words = {"value", "items", "result", "count", "name", "index", "data", "total"};
    while (b.length() < bytes) {
      b.append("def f").append(r.nextInt(1000)).append("(").append(words[r.nextInt(8)])
          .append("):\n    return ").append(words[r.nextInt(8)]).append(" + ")
          .append(r.nextInt(100)).append("\n");
    }
    return b.substring(0, bytes);
  }
}
