package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.app.cli.ExplainCommand;
import org.retroinfer.app.cli.InspectCommand;
import org.retroinfer.app.cli.StoreCommand;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine;

/**
 * The store, inspect and explain commands on the shipped model, as a script would use them (--json),
 * plus the HTML report.
 */
class StoreCommandsTest {
  @TempDir Path dir;

  record Run(int code, String out, String err) {}

  static Run run(Object command, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(command);
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  static JsonNode json(Run r) throws Exception {
    assertEquals(0, r.code(), r.err() + r.out());
    return new ObjectMapper().readTree(r.out());
  }

  @Test
  void putListGetInspectExplainDelete() throws Exception {
    long seed = new SplittableRandom().nextLong();
    Path store = dir.resolve("store");
    Path prompt = dir.resolve("prompt.py");
    Files.write(prompt, PythonCorpus.fallback().text(1500, new SplittableRandom(seed)));
    String s = store.toString();

    JsonNode put = json(run(new StoreCommand(), "put", "--store", s, "--file", prompt.toString(),
        "--name", "demo", "--json"));
    assertEquals(1500, put.get("context").get("tokens").asInt(), put.toString());
    assertEquals(0, put.get("reusedTokens").asInt());
    String id = put.get("context").get("id").asText();

    JsonNode list = json(run(new StoreCommand(), "list", "--store", s, "--json"));
    assertEquals(1, list.size());
    assertEquals(id, list.get(0).get("id").asText());

    JsonNode get = json(run(new StoreCommand(), "get", "--store", s, "--file", prompt.toString(),
        "--generate", "4", "--tier", dir.resolve("tier.cmap").toString(), "--tier-bytes",
        "200000", "--json"));
    JsonNode tier = get.get("tier");
    assertTrue(tier.get("bytesHeld").asLong() <= 200_000 && tier.get("evictions").asLong() > 0,
        "a context larger than the tier keeps at most its capacity: " + tier);
    assertEquals(1500, get.get("match").get("matchedTokens").asInt());
    assertEquals(1500, get.get("reusedTokens").asInt());
    assertEquals(4, get.get("generated").asText().length());

    JsonNode other = json(run(new StoreCommand(), "get", "--store", s, "--file", prompt.toString(),
        "--tenant", "someone-else", "--json"));
    assertTrue(other.get("match").isNull(), "another tenant sees nothing: " + other);

    Path html = dir.resolve("report.html");
    JsonNode inspect = json(run(new InspectCommand(), s, "--json", "--html", html.toString()));
    assertTrue(inspect.get("integrity").get("clean").asBoolean());
    assertEquals(12, inspect.get("fields").size(), "6 layers x 2 KV heads");
    String page = Files.readString(html);
    assertTrue(page.contains("<svg") && !page.contains("<script"));

    Path explainHtml = dir.resolve("explain.html");
    JsonNode ex = json(run(new ExplainCommand(), "--store", s, "--json", "--html",
        explainHtml.toString()));
    assertEquals(1500, ex.get("position").asInt());
    assertEquals(12, ex.get("heads").size());
    WaveConfig config = WaveConfig.defaults();
    for (JsonNode h : ex.get("heads")) {
      double sum = h.get("steadyMass").asDouble() + h.get("retrievedMass").asDouble()
          + h.get("estimatedMass").asDouble() + h.get("skippedMass").asDouble();
      assertEquals(1.0, sum, 1e-6, h.toString());
      assertTrue(h.get("estimateMass").asDouble() <= h.get("estimatedMass").asDouble() * (1 + 1e-4)
          + 1e-9, "Jensen: the estimate never exceeds the estimated clusters' true mass " + h);
      int clusters = h.get("clusters").asInt();
      assertTrue(clusters > 0);
      // the default budget is adaptive: between its floor and cap, with its planned share
      int retrieved = h.get("retrievedCount").asInt();
      assertTrue(retrieved >= config.minRetrievalClusters(clusters)
          && retrieved <= config.retrievalClusters(clusters), h.toString());
      assertTrue(h.get("estimatedCount").asInt() <= config.estimationClusters(clusters),
          h.toString());
      assertTrue(h.get("exactTokens").asInt() > 0, h.toString());
      double planned = h.get("plannedExactShare").asDouble();
      assertTrue(planned > 0 && planned <= 1 + 1e-6, h.toString());
      double previous = 0;
      for (JsonNode point : h.get("budgetCurve")) {
        double ranked = point.get(0).asDouble();
        assertTrue(ranked <= point.get(1).asDouble() + 1e-9, "no ranking beats the oracle " + h);
        assertTrue(ranked >= previous - 1e-9, "more budget never captures less " + h);
        previous = ranked;
      }
      assertTrue(h.get("outputError").asDouble() < 0.5, h.toString());
    }
    assertTrue(Files.readString(explainHtml).contains("polyline"));

    Run del = run(new StoreCommand(), "delete", "--store", s, id);
    assertEquals(0, del.code(), del.err());
    assertEquals(0, json(run(new StoreCommand(), "list", "--store", s, "--json")).size());
    Run again = run(new StoreCommand(), "delete", "--store", s, id);
    assertTrue(again.code() != 0 && again.err().contains("no context"), again.err());
  }
}
