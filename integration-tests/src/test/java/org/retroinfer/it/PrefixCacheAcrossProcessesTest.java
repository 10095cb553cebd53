package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.app.bench.PromptReuseBenchmark;

/**
 * Two processes, one store: the first prefills a prompt of the shipped model, stores it and decodes;
 * the second, given the same prompt, finds it, loads it without any prefill and decodes the same
 * tokens. (The 16K-token measurement is the PromptReuseBenchmark harness; here a shorter prompt keeps
 * the test fast.)
 */
class PrefixCacheAcrossProcessesTest {
  @TempDir Path store;

  @Test
  void aSecondProcessFindsThePromptAndDecodesTheSameTokens() throws Exception {
    int tokens = 1200;
    long seed = System.nanoTime();
    String first = PromptReuseBenchmark.runProcess(store, tokens, seed);
    String second = PromptReuseBenchmark.runProcess(store, tokens, seed);
    assertEquals(0, PromptReuseBenchmark.field(first, "reused"), first);
    assertEquals(tokens, PromptReuseBenchmark.field(second, "reused"), second);
    assertEquals(0, PromptReuseBenchmark.field(second, "prefillMs"), "no prefill in process 2");
    assertEquals(0, PromptReuseBenchmark.field(second, "indexMs"), "no clustering in process 2");
    assertEquals(PromptReuseBenchmark.text(first, "ids"), PromptReuseBenchmark.text(second, "ids"),
        "the first 32 decoded tokens; seed " + seed);
  }
}
