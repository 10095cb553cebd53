package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.cli.RetroInfer;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.eval.PythonCorpus;
import picocli.CommandLine;

/**
 * Through the command line: every store command sees only its tenant's contexts (and, where a
 * model is given, that model's), whatever it is asked; a prompt longer than the model's trained
 * context is refused before any work (a usage error) unless {@code --allow-long-prompt} is given.
 */
class StoreTenancyAndLimitsTest {
  @TempDir Path dir;

  record Run(int exit, String out, String err) {
    JsonNode json() throws Exception {
      assertEquals(0, exit, err + out);
      return new ObjectMapper().readTree(out);
    }
  }

  static Run run(Object... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = RetroInfer.commandLine();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int exit = cl.execute(Arrays.stream(args).map(String::valueOf).toArray(String[]::new));
    return new Run(exit, out.toString(), err.toString());
  }

  static List<String> ids(JsonNode contexts) {
    List<String> ids = new ArrayList<>();
    contexts.forEach(c -> ids.add(c.get("id").asText()));
    return ids;
  }

  /** The shipped model's weights with another trained context: a model of another fingerprint. */
  Path modelWithContext(int maxPositions) throws Exception {
    Path shipped = ModelDirectory.shipped().path();
    Path m = dir.resolve("model-" + maxPositions);
    Files.createDirectories(m);
    ObjectNode config = (ObjectNode) new ObjectMapper().readTree(
        shipped.resolve("config.json").toFile());
    config.put("max_position_embeddings", maxPositions);
    Files.writeString(m.resolve("config.json"), config.toString());
    Files.copy(shipped.resolve("model.safetensors"), m.resolve("model.safetensors"));
    return m;
  }

  Path prompt(String name, int bytes, long seed) throws Exception {
    Path p = dir.resolve(name);
    Files.write(p, PythonCorpus.fallback().text(bytes, new SplittableRandom(seed)));
    return p;
  }

  @Test
  void everyCommandSeesOnlyItsTenantsContexts() throws Exception {
    long seed = new SplittableRandom().nextLong();
    Path store = dir.resolve("store");
    Path alicePrompt = prompt("alice.py", 1200, seed);
    Path defaultPrompt = prompt("default.py", 200, seed + 1);
    Path otherModel = modelWithContext(4096);
    String alice = run("store", "put", "--store", store, "--tenant", "alice", "--file",
        alicePrompt, "--json").json().get("context").get("id").asText();
    String mine = run("store", "put", "--store", store, "--file", defaultPrompt, "--json").json()
        .get("context").get("id").asText();

    // list: each tenant its own; the default tenant (no --tenant) only what was stored without one
    assertEquals(List.of(alice), ids(run("store", "list", "--store", store, "--tenant", "alice",
        "--json").json()));
    assertEquals(List.of(mine), ids(run("store", "list", "--store", store, "--json").json()));
    assertEquals(List.of(), ids(run("store", "list", "--store", store, "--tenant", "bob",
        "--json").json()));
    assertEquals(List.of(), ids(run("store", "list", "--store", store, "--tenant", "alice",
        "--model", otherModel, "--json").json()), "alice has no context of the other model");
    assertEquals(List.of(alice), ids(run("store", "list", "--store", store, "--tenant", "alice",
        "--model", ModelDirectory.shipped().path(), "--json").json()));

    // delete: another tenant's context is, to bob and to the default tenant, one that does not
    // exist (the same answer as for an id never stored), and it stays
    String never = "c" + "0".repeat(31);
    Run missing = run("store", "delete", "--store", store, "--tenant", "bob", never);
    for (Object[] who : new Object[][] {{"--tenant", "bob"}, {}, {"--tenant", "alice", "--model",
        otherModel}}) {
      List<Object> args = new ArrayList<>(List.of("store", "delete", "--store", store));
      args.addAll(List.of(who));
      args.add(alice);
      Run r = run(args.toArray());
      assertEquals(1, r.exit(), r.err());
      assertEquals(missing.err().replace(never, alice).replace(" and model", ""),
          r.err().replace(" and model", ""), "no hint that the context exists");
    }
    assertEquals(List.of(alice), ids(run("store", "list", "--store", store, "--tenant", "alice",
        "--json").json()));

    // inspect: bob sees no context and no cluster; alice sees hers
    JsonNode bobs = run("inspect", store, "--tenant", "bob", "--no-check", "--json").json();
    assertEquals(0, bobs.get("contexts").size());
    bobs.get("fields").forEach(f -> assertEquals(0, f.get("clusters").asInt(), f.toString()));
    JsonNode alices = run("inspect", store, "--tenant", "alice", "--json").json();
    assertEquals(List.of(alice), ids(alices.get("contexts")));
    assertTrue(alices.get("fields").get(0).get("clusters").asInt() > 0, alices.toString());
    assertTrue(alices.get("integrity").get("clean").asBoolean());

    // explain: bob can neither name alice's context nor fall back to it
    Run named = run("explain", "--store", store, "--tenant", "bob", "--context", alice, "--json");
    assertEquals(1, named.exit());
    assertTrue(named.err().contains("no context " + alice + " of this model, K/V type and tenant"),
        named.err());
    Run newest = run("explain", "--store", store, "--tenant", "bob", "--json");
    assertEquals(1, newest.exit());
    assertTrue(newest.err().contains("no context of this model and tenant"), newest.err());
    JsonNode explained = run("explain", "--store", store, "--tenant", "alice", "--json").json();
    assertEquals(alice, explained.get("context").asText());

    // delete by the owner works
    assertEquals(0, run("store", "delete", "--store", store, "--tenant", "alice", alice).exit());
    assertEquals(List.of(), ids(run("store", "list", "--store", store, "--tenant", "alice",
        "--json").json()));
    assertEquals(List.of(mine), ids(run("store", "list", "--store", store, "--json").json()));
  }

  @Test
  void aPromptLongerThanTheModelsContextIsRefusedBeforeAnyWork() throws Exception {
    Path small = modelWithContext(256);
    Path store = dir.resolve("store");
    Path longPrompt = prompt("long.py", 300, 5);
    String refusal = "more than the 256-token context the model was trained for";

    Run put = run("store", "put", "--store", store, "--model", small, "--file", longPrompt);
    assertEquals(RetroInfer.USAGE, put.exit(), put.err());
    assertTrue(put.err().contains(refusal) && put.err().contains("--allow-long-prompt"), put.err());
    assertFalse(Files.exists(store), "refused before the store was even opened (so before the"
        + " model ran)");
    Run generate = run("generate", "--model", small, "--prompt-file", longPrompt,
        "--max-tokens", 2);
    assertEquals(RetroInfer.USAGE, generate.exit(), generate.err());
    assertTrue(generate.err().contains(refusal), generate.err());
    assertFalse(generate.err().contains("parameters"), "refused before the model was even loaded"
        + " (which says its parameters): " + generate.err());

    // Allowed explicitly: prefilled whole, stored, and found again.
    JsonNode stored = run("store", "put", "--store", store, "--model", small, "--file", longPrompt,
        "--allow-long-prompt", "--json").json();
    int tokens = stored.get("context").get("tokens").asInt();
    assertTrue(tokens > 256);
    Run get = run("store", "get", "--store", store, "--model", small, "--file", longPrompt,
        "--generate", 2, "--json");
    assertEquals(RetroInfer.USAGE, get.exit(), "get refuses the long prompt as well");
    assertTrue(get.err().contains(refusal), get.err());
    JsonNode found = run("store", "get", "--store", store, "--model", small, "--file", longPrompt,
        "--generate", 2, "--allow-long-prompt", "--json").json();
    assertEquals(tokens, found.get("reusedTokens").asInt());
    assertEquals(2, found.get("generated").asText().length());
  }
}
