package org.retroinfer.app.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PromptReuseBenchmarkTest {
  /**
   * A remote --store is refused with one line before anything runs. The positional argument that is
   * no number makes a benchmark that took the URL fail at once (with another message) instead of
   * starting its 16K-token sessions.
   */
  @ParameterizedTest
  @ValueSource(strings = {"http://127.0.0.1:9200/contexts", "https://os1:9200/contexts"})
  void aRemoteStoreIsRefusedWithOneLine(String url) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> PromptReuseBenchmark.main(new String[] {"--store", url, "not-a-number"}));
    assertEquals("--store " + url + ": the benchmark writes a fresh store per build into a"
        + " directory; give --store DIR (a remote store's reuse is measured by"
        + " opensearch-plugin/scripts/cluster-check.sh)", e.getMessage());
    assertTrue(e.getMessage().lines().count() == 1, e.getMessage());
  }
}
