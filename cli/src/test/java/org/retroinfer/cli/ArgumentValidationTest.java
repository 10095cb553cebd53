package org.retroinfer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * Every main command checks its arguments before it loads anything. Each case points the command
 * at a model directory that does not exist: had the command tried to load it, it would have
 * failed with that error (exit code 1) instead of the argument's (exit code 2). Fast: no model, no
 * prefill.
 */
class ArgumentValidationTest {
  static final String NO_MODEL = "/nonexistent/retroinfer-model";

  static RetroInferTest.Run runWithoutModel(String line) {
    List<String> args = new ArrayList<>(List.of(line.split(" +")));
    // after the (sub)command's name: eval niah, bench decode and store get have two words
    int at = List.of("eval", "bench", "store").contains(args.get(0)) ? 2 : 1;
    args.addAll(at, List.of("--model", NO_MODEL));
    return RetroInferTest.run(args.toArray(String[]::new));
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "demo --context 0                        | --context must be at least 112 tokens",
      "demo --context -5                       | got -5",
      "demo --tokens 3                         | --tokens must be at least 5",
      "demo --depth 1.5                        | --depth must be a fraction from 0 to 1, got 1.5",
      "demo --retrieval 1.5                    | --retrieval must be a fraction",
      "demo --retrieval 0.9 --estimation 0.5   | their sum must be at most 1",
      "demo --window 0                         | --window must be at least 1",
      "demo --kv-type half                     | Invalid value for option '--kv-type'",
      "demo --kv-type float16 --context 0      | --context must be at least",
      "demo --haystack /no/such/dir            | haystack directory /no/such/dir does not exist",
      "demo --context lots                     | 'lots' is not an int",
      "eval niah --trials 0                    | --trials must be at least 1",
      "eval niah --context 2048,50             | --context must be at least 112 tokens",
      "eval niah --depths 0.5,1.2              | --depths must be a fraction from 0 to 1, got 1.2",
      "eval niah --scored-tokens 0             | --scored-tokens must be at least 1",
      "eval niah --methods full,magic          | unknown attention method 'magic'",
      "eval niah --methods FULL,Wave:5% --save /no/such/dir/r.json | --save /no/such/dir/r.json cannot be written",
      "eval niah --methods wave:fixed:err=5%   | 'fixed' does not go with err=",
      "eval niah --retrieval-error 2           | --retrieval-error must be a fraction",
      "eval multikey --trials 0                | --trials must be at least 1",
      "eval multikey --decoded 100             | --decoded must be at least 256 tokens",
      "eval multikey --context 3000            | --context must be at least",
      "eval multikey --methods full,wave:tokens=9 | tokens= sets a baseline's budget",
      "generate --prompt x --max-tokens -3     | --max-tokens must be at least 0 tokens, got -3",
      "generate --prompt x --temperature -1    | --temperature must be 0 (greedy) or more",
      "generate --prompt x --top-p 0           | --top-p must be above 0",
      "generate --prompt x --method magic      | unknown attention method 'magic'",
      "bench decode --steps 0                  | --steps must be at least 1",
      "bench decode --context 0                | --context must be at least 1",
      "bench decode --methods full,WAVE --warmup -1 | --warmup must be at least 0",
      "store get --text x --generate -1        | --generate must be 0",
      "serve --store-capacity 12x              | --store-capacity must be a number of bytes",
      "serve --store http://localhost:9200/Ctx | with one lower-case OpenSearch index name",
      "serve --store http://localhost:9200/a/b | http://HOST:PORT/INDEX",
      "serve --cache /tmp/retroinfer-cache     | --cache is the local cache of a remote store",
      "serve --threads 0                       | --threads must be at least 1",
      "serve --port 70000                      | --port must be 0 (any free port) to 65535",
      "serve --max-queue -1                    | --max-queue must be at least 0",
  })
  void badArgumentsAreRejectedBeforeAnythingLoads(String line, String message) {
    RetroInferTest.Run r = runWithoutModel(line.strip());
    assertEquals(2, r.exit(), () -> "usage error expected for '" + line + "': " + r.err());
    assertTrue(r.err().startsWith("retroinfer: ") && r.err().contains(message.strip()), r.err());
    assertTrue(r.err().contains("--help')"), "points at the command's help: " + r.err());
    assertEquals("", r.out(), "nothing ran: " + r.out());
  }

  @Test
  void theDemoRejectsAContextBeyondTheModelsTrainingBeforeLoadingIt() {
    RetroInferTest.Run r = RetroInferTest.run("demo", "--context", "20000");
    assertEquals(2, r.exit(), r.err());
    assertTrue(r.err().contains("--context 20,000 is longer than the 16,384 tokens the model was"
        + " trained for"), r.err());
    assertEquals("", r.out(), "the model was not loaded (its load prints a line): " + r.out());
  }

  @Test
  void validArgumentsGetPastTheChecksToTheModel() {
    // the same commands with good values do reach the model, and fail there (exit code 1)
    for (String line : new String[] {"demo --context 4096 --kv-type FLOAT16",
        "eval niah --context 2048 --methods FULL,Wave:5%", "generate --prompt x --max-tokens 0",
        "eval multikey --context 4096 --methods full,wave:adaptive:err=3%,oracle:tokens=900",
        "bench decode --methods full,Quest"}) {
      RetroInferTest.Run r = runWithoutModel(line);
      assertEquals(1, r.exit(), line + ": " + r.err());
      assertTrue(r.err().contains("model directory " + NO_MODEL + " does not exist"), r.err());
    }
  }

  @Test
  void withoutACommandTheUsageGoesToStandardErrorWithAUsageError() {
    for (String[] args : new String[][] {{}, {"eval"}, {"bench"}, {"store"}}) {
      RetroInferTest.Run r = RetroInferTest.run(args);
      assertEquals(2, r.exit(), String.join(" ", args));
      assertTrue(r.err().contains("Usage: retroinfer"), r.err());
      assertEquals("", r.out());
    }
    RetroInferTest.Run help = RetroInferTest.run("--help");
    assertEquals(0, help.exit());
    assertTrue(help.out().contains("Exit codes:") && help.out().contains("3   demo:"), help.out());
    assertTrue(RetroInferTest.run("demo", "--help").out().contains("3   full or wave attention"
        + " answered wrong"));
  }
}
