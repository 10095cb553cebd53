package org.retroinfer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The endpoints of one server over a fresh store with the shipped model: answers, streaming,
 * OpenAI's error JSON, prefix reuse and its accounting, and concurrent requests.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiServerTest {
  OpenAiServer server;
  Client client;

  @BeforeAll
  void start(@TempDir Path dir) throws Exception {
    server = OpenAiServer.start(OpenAiServer.Options.of(dir.resolve("store"))
        .withStorePolicy(64, 0).withMaxBodyBytes(64 << 10).withCompute(2, 8));
    client = new Client(server.port(), null);
  }

  @AfterAll
  void stop() throws Exception {
    if (server != null) {
      server.close();
    }
  }

  static Map<String, Object> completion(String prompt, int maxTokens) {
    return Map.of("model", "bytecode-llama-10m", "prompt", prompt, "max_tokens", maxTokens,
        "temperature", 0);
  }

  @Test
  void modelsHealthAndMetrics() throws Exception {
    Client.Reply models = client.get("/v1/models");
    assertEquals(200, models.status());
    assertEquals("list", models.body().get("object").asText());
    assertEquals("bytecode-llama-10m", models.body().get("data").get(0).get("id").asText());
    assertEquals(200, client.get("/v1/models/bytecode-llama-10m").status());
    assertEquals(200, client.get("/health").status());
    assertEquals(200, client.post("/v1/completions", completion("x = 1", 2)).status());
    Client.Reply metrics = client.get("/metrics");
    assertEquals(200, metrics.status());
    for (String name : List.of("retroinfer_requests_total{endpoint=\"completions\",status=\"200\"}",
        "retroinfer_prompt_tokens_total", "retroinfer_cached_tokens_total",
        "retroinfer_prefix_hit_ratio", "retroinfer_time_to_first_token_seconds_bucket",
        "retroinfer_store_bytes", "retroinfer_requests_running")) {
      assertTrue(metrics.text().contains(name), name + " in\n" + metrics.text());
    }
  }

  @Test
  void errorsAreOpenAiJson() throws Exception {
    assertError(client.get("/v2/nothing"), 404, "unknown_url");
    assertError(client.get("/v1/models/gpt-4"), 404, "model_not_found");
    assertError(client.post("/v1/completions", Map.of("model", "gpt-4", "prompt", "x")), 404,
        "model_not_found");
    assertError(client.post("/v1/completions", "{not json"), 400, null);
    assertError(client.post("/v1/completions", Map.of("max_tokens", 3)), 400, null);
    assertError(client.post("/v1/completions", Map.of("prompt", "x", "temperature", 5)), 400, null);
    assertError(client.post("/v1/completions", Map.of("prompt", "x", "n", 2)), 400, null);
    assertError(client.post("/v1/chat/completions", Map.of("messages", List.of(Map.of("role",
        "robot", "content", "hi")))), 400, null);
    assertError(client.post("/v1/completions", Map.of("prompt", "x".repeat(17_000))), 400,
        "context_length_exceeded");
    assertError(client.post("/v1/completions", Map.of("prompt", "x".repeat(70_000))), 413,
        "request_too_large");
    assertError(client.post("/v1/completions", Map.of("prompt", "x", "max_tokens", 0)), 400, null);
  }

  static void assertError(Client.Reply r, int status, String code) {
    assertEquals(status, r.status(), r.text());
    assertNotNull(r.body(), "a JSON body: " + r.text());
    JsonNode e = r.body().get("error");
    assertNotNull(e, r.text());
    assertTrue(e.get("message").asText().length() > 10, r.text());
    assertTrue(e.has("type") && e.has("code") && e.has("param"), r.text());
    if (code != null) {
      assertEquals(code, e.get("code").asText(), r.text());
    }
  }

  @Test
  void aStoredPromptIsReusedAndCounted() throws Exception {
    String prompt = Client.text(1, 300);
    JsonNode first = client.post("/v1/completions", completion(prompt, 8)).body();
    assertEquals(301, first.at("/usage/prompt_tokens").asInt()); // the document start and 300 bytes
    assertEquals(0, first.at("/usage/prompt_tokens_details/cached_tokens").asInt());
    assertEquals(8, first.at("/usage/completion_tokens").asInt());
    assertEquals("length", first.at("/choices/0/finish_reason").asText());
    // the same prompt: all of it from the store, and the same greedy tokens
    JsonNode again = client.post("/v1/completions", completion(prompt, 8)).body();
    assertEquals(301, again.at("/usage/prompt_tokens_details/cached_tokens").asInt());
    assertEquals(first.at("/choices/0/text"), again.at("/choices/0/text"));
    // a longer prompt that starts with it: the stored part reused, the rest prefilled
    JsonNode longer = client.post("/v1/completions", completion(prompt + "\ndef g(x):\n", 4))
        .body();
    assertEquals(301 + 11, longer.at("/usage/prompt_tokens").asInt());
    assertEquals(301, longer.at("/usage/prompt_tokens_details/cached_tokens").asInt());
    // a prompt that shares only its first 200 bytes: less than a 256-token chunk, nothing reused
    JsonNode other = client.post("/v1/completions",
        completion(prompt.substring(0, 200) + Client.text(2, 100), 2)).body();
    assertEquals(0, other.at("/usage/prompt_tokens_details/cached_tokens").asInt());
  }

  @Test
  void streamingSendsTheSameTextAsOneAnswer() throws Exception {
    String prompt = Client.text(3, 300);
    JsonNode whole = client.post("/v1/completions", completion(prompt, 12)).body();
    Map<String, Object> req = new java.util.HashMap<>(completion(prompt, 12));
    req.put("stream", true);
    req.put("stream_options", Map.of("include_usage", true));
    List<String> data = client.stream("/v1/completions", req);
    assertEquals("[DONE]", data.get(data.size() - 1));
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonNode usage = null;
    for (String d : data.subList(0, data.size() - 1)) {
      JsonNode c = Client.JSON.readTree(d);
      assertEquals("text_completion", c.get("object").asText());
      if (c.hasNonNull("usage")) {
        usage = c.get("usage");
        continue;
      }
      text.append(c.at("/choices/0/text").asText());
      if (!c.at("/choices/0/finish_reason").isNull()) {
        finish = c.at("/choices/0/finish_reason").asText();
      }
    }
    assertEquals(whole.at("/choices/0/text").asText(), text.toString());
    assertEquals("length", finish);
    assertNotNull(usage);
    assertEquals(12, usage.get("completion_tokens").asInt());
    // the prompt (301 tokens >= 64) was stored by the first request
    assertEquals(301, usage.at("/prompt_tokens_details/cached_tokens").asInt());
  }

  @Test
  void chatReusesASharedSystemPrompt() throws Exception {
    String system = Client.text(4, 400);
    JsonNode a = client.post("/v1/chat/completions", chat(system, "first question", 6)).body();
    assertEquals("chat.completion", a.get("object").asText());
    assertEquals("assistant", a.at("/choices/0/message/role").asText());
    assertEquals(0, a.at("/usage/prompt_tokens_details/cached_tokens").asInt());
    JsonNode b = client.post("/v1/chat/completions", chat(system, "another one", 6)).body();
    int cached = b.at("/usage/prompt_tokens_details/cached_tokens").asInt();
    // the template's header and the system prompt (at least one whole 256-token chunk) are shared
    int shared = 1 + "### system\n".length() + system.length() + "\n### user\n".length();
    assertEquals(shared, cached, b.toString());
    Map<String, Object> req = new java.util.HashMap<>(chat(system, "a third", 4));
    req.put("stream", true);
    List<String> data = client.stream("/v1/chat/completions", req);
    JsonNode first = Client.JSON.readTree(data.get(0));
    assertEquals("chat.completion.chunk", first.get("object").asText());
    assertEquals("assistant", first.at("/choices/0/delta/role").asText());
    assertEquals("[DONE]", data.get(data.size() - 1));
  }

  static Map<String, Object> chat(String system, String user, int maxTokens) {
    return Map.of("model", "bytecode-llama-10m", "max_tokens", maxTokens, "temperature", 0,
        "messages", List.of(Map.of("role", "system", "content", system),
            Map.of("role", "user", "content", user)));
  }

  @Test
  void concurrentRequestsAnswerAsOneAtATime() throws Exception {
    // short prompts (below the store policy's 64 tokens): every answer is computed afresh
    List<String> prompts = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      prompts.add(Client.text(10 + i, 40));
    }
    List<String> alone = new ArrayList<>();
    for (String p : prompts) {
      alone.add(client.post("/v1/completions", completion(p, 10)).body().at("/choices/0/text")
          .asText());
    }
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Client.Reply>> replies = new ArrayList<>();
      for (String p : prompts) {
        replies.add(pool.submit(() -> client.post("/v1/completions", completion(p, 10))));
      }
      for (int i = 0; i < prompts.size(); i++) {
        Client.Reply r = replies.get(i).get();
        assertEquals(200, r.status(), r.text());
        assertEquals(alone.get(i), r.body().at("/choices/0/text").asText(), "prompt " + i);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aShutdownCancelsWhatOutlivesItsGraceAndLeavesTheStoreWhole(@TempDir Path other)
      throws Exception {
    Path storeDir = other.resolve("store");
    OpenAiServer s = OpenAiServer.start(OpenAiServer.Options.of(storeDir).withStorePolicy(64, 0)
        .withShutdownGrace(java.time.Duration.ofMillis(300)));
    try {
      Client c = new Client(s.port(), null);
      assertEquals(200, c.post("/v1/completions", completion(Client.text(6, 300), 2)).status());
      Map<String, Object> req = new java.util.HashMap<>(completion("while True:\n", 5000));
      req.put("stream", true);
      try (InputStream running = c.openStream("/v1/completions", req)) {
        assertTrue(running.read() >= 0); // it runs
        s.close(); // lets it run for the grace period, then cancels it
        String rest = new String(running.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(rest.contains("\"error\"") && rest.contains("shutting down"), rest);
        assertFalse(rest.contains("[DONE]"), rest);
      }
      assertThrows(java.io.IOException.class, () -> c.get("/health"));
    } finally {
      s.close();
    }
    // the first request's context is stored and the store opens cleanly
    try (org.retroinfer.store.ContextStore store =
        org.retroinfer.store.ContextStore.openReadOnly(storeDir)) {
      assertEquals(1, store.tenant("").list().size());
    }
  }

  @Test
  void aPortInUseIsRefusedBeforeAnythingLoads(@TempDir Path other) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> OpenAiServer.start(OpenAiServer.Options.of(other).withPort(server.port())));
    assertTrue(e.getMessage().contains("cannot listen on 127.0.0.1:" + server.port()),
        e.getMessage());
  }

  @Test
  void aFullQueueAnswers429(@TempDir Path other) throws Exception {
    try (OpenAiServer small = OpenAiServer.start(OpenAiServer.Options.of(other)
        .withStorePolicy(0, 0).withCompute(1, 0))) {
      Client c = new Client(small.port(), null);
      Map<String, Object> req = new java.util.HashMap<>(completion("while True:\n", 5000));
      req.put("stream", true);
      try (InputStream running = c.openStream("/v1/completions", req)) {
        assertTrue(running.read() >= 0); // its first event: the only compute thread is busy
        assertError(c.post("/v1/completions", completion("x", 1)), 429, "queue_full");
      } // closing the stream cancels the long request
    }
  }
}
