package org.retroinfer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tenants by API key, the admin API, eviction by capacity with pins, and a restart. */
class TenantsAndStoreTest {
  @TempDir Path dir;

  private Path keys() throws Exception {
    Path f = dir.resolve("keys.txt");
    Files.writeString(f, "# key tenant\nkey-alice alice\nkey-bob bob\n");
    return f;
  }

  private static Map<String, Object> completion(String prompt) {
    return Map.of("prompt", prompt, "max_tokens", 2, "temperature", 0);
  }

  private static int cached(Client.Reply r) {
    assertEquals(200, r.status(), r.text());
    return r.body().at("/usage/prompt_tokens_details/cached_tokens").asInt();
  }

  private static List<String> ids(Client c) throws Exception {
    Client.Reply r = c.get("/admin/contexts");
    assertEquals(200, r.status(), r.text());
    List<String> ids = new ArrayList<>();
    for (JsonNode n : r.body().get("data")) {
      ids.add(n.get("id").asText());
    }
    return ids;
  }

  @Test
  void tenantsNeverSeeEachOthersContexts() throws Exception {
    try (OpenAiServer s = OpenAiServer.start(OpenAiServer.Options.of(dir.resolve("store"))
        .withApiKeys(keys()).withStorePolicy(64, 0))) {
      Client alice = new Client(s.port(), "key-alice");
      Client bob = new Client(s.port(), "key-bob");
      OpenAiServerTest.assertError(new Client(s.port(), null).get("/v1/models"), 401,
          "invalid_api_key");
      OpenAiServerTest.assertError(new Client(s.port(), "key-eve").post("/v1/completions",
          completion("x")), 401, "invalid_api_key");
      String prompt = Client.text(20, 300);
      assertEquals(0, cached(alice.post("/v1/completions", completion(prompt))));
      assertEquals(301, cached(alice.post("/v1/completions", completion(prompt))));
      // the same prompt under bob's key: nothing of alice's is reused
      assertEquals(0, cached(bob.post("/v1/completions", completion(prompt))));
      // and a cache_salt is a tenant of its own inside alice's
      Map<String, Object> salted = new java.util.HashMap<>(completion(prompt));
      salted.put("cache_salt", "project-x");
      assertEquals(0, cached(alice.post("/v1/completions", salted)));
      assertEquals(301, cached(alice.post("/v1/completions", salted)));

      List<String> mine = ids(alice);
      assertEquals(1, mine.size(), mine.toString());
      Client.Reply salty = alice.get("/admin/contexts?cache_salt=project-x");
      assertEquals(1, salty.body().get("data").size(), salty.text());
      assertFalse(mine.contains(salty.body().at("/data/0/id").asText()));
      List<String> bobs = ids(bob);
      assertEquals(1, bobs.size());
      assertFalse(bobs.contains(mine.get(0)));
      String id = mine.get(0);
      // bob can neither pin nor delete alice's context: it does not exist for him
      OpenAiServerTest.assertError(bob.post("/admin/contexts/" + id + "/pin", Map.of()), 404,
          "context_not_found");
      OpenAiServerTest.assertError(bob.delete("/admin/contexts/" + id), 404, "context_not_found");
      assertEquals(List.of(id), ids(alice));
      // alice can
      Client.Reply deleted = alice.delete("/admin/contexts/" + id);
      assertEquals(200, deleted.status(), deleted.text());
      assertEquals(List.of(), ids(alice));
      assertEquals(0, cached(alice.post("/v1/completions", completion(prompt))));
    }
  }

  @Test
  void evictionSparesPinnedContextsAndARestartReusesTheStore() throws Exception {
    Path store = dir.resolve("store");
    String[] prompts = {Client.text(30, 300), Client.text(31, 300), Client.text(32, 300)};
    double one;
    String pinned;
    try (OpenAiServer s = OpenAiServer.start(OpenAiServer.Options.of(store)
        .withStorePolicy(64, 0))) {
      Client c = new Client(s.port(), null);
      assertEquals(0, cached(c.post("/v1/completions", completion(prompts[0]))));
      one = metric(c, "retroinfer_store_bytes");
      pinned = ids(c).get(0);
      assertEquals(200, c.post("/admin/contexts/" + pinned + "/pin", Map.of()).status());
    }
    // a capacity for about two contexts of this size
    long capacity = (long) (one * 2.5);
    try (OpenAiServer s = OpenAiServer.start(OpenAiServer.Options.of(store)
        .withStorePolicy(64, capacity))) {
      Client c = new Client(s.port(), null);
      // after the restart: the stored prompt is reused, and still pinned
      assertEquals(301, cached(c.post("/v1/completions", completion(prompts[0]))));
      assertTrue(c.get("/admin/contexts").body().at("/data/0/pinned").asBoolean());
      assertEquals(0, cached(c.post("/v1/completions", completion(prompts[1]))));
      assertEquals(2, ids(c).size());
      assertEquals(0, cached(c.post("/v1/completions", completion(prompts[2]))));
      // the third did not fit: the least recently used unpinned context (the second) went
      List<String> left = ids(c);
      assertEquals(2, left.size(), left.toString());
      assertTrue(left.contains(pinned), left.toString());
      assertEquals(1, metric(c, "retroinfer_evicted_contexts_total"));
      assertTrue(metric(c, "retroinfer_store_bytes") <= capacity);
      assertEquals(0, cached(c.post("/v1/completions", completion(prompts[1]))));
      assertEquals(301, cached(c.post("/v1/completions", completion(prompts[0]))));
      // unpinned, the first may go too
      assertEquals(200, c.delete("/admin/contexts/" + pinned + "/pin").status());
      assertFalse(c.get("/admin/contexts").body().at("/data/0/pinned").asBoolean());
    }
  }

  static double metric(Client c, String name) throws Exception {
    String text = c.get("/metrics").text();
    Matcher m = Pattern.compile("(?m)^" + name + " (\\S+)$").matcher(text);
    assertTrue(m.find(), name + " in\n" + text);
    return Double.parseDouble(m.group(1));
  }
}
