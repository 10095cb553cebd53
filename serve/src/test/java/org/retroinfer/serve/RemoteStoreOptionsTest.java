package org.retroinfer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code serve --store http://...} refuses bad input before anything loads (exit 2, one message),
 * and a remote store that does not answer fails the start before the model loads. Serving through
 * a real cluster is checked in opensearch-plugin's RealServerTest, which has one running.
 */
class RemoteStoreOptionsTest {
  @TempDir Path dir;

  private record Run(int code, String err) {}

  private static Run serve(String... args) {
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(new ServeCommand());
    cl.setOut(new PrintWriter(new StringWriter()));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, err.toString());
  }

  @Test
  void badFlagsAreRefusedBeforeAnythingLoads() throws Exception {
    Path cache = dir.resolve("cache");
    Run noRemote = serve("--store", dir.resolve("store").toString(), "--cache", cache.toString());
    assertEquals(2, noRemote.code(), noRemote.err());
    assertTrue(noRemote.err().contains("--cache is the local cache of a remote store"),
        noRemote.err());

    Run badUrl = serve("--store", "http://127.0.0.1:9200/Not/An/Index", "--cache",
        cache.toString());
    assertEquals(2, badUrl.code(), badUrl.err());
    assertTrue(badUrl.err().contains("http://HOST:PORT/INDEX"), badUrl.err());

    Path file = Files.writeString(dir.resolve("a-file"), "x");
    Run cacheIsFile = serve("--store", "http://127.0.0.1:9200/contexts", "--cache",
        file.toString());
    assertEquals(2, cacheIsFile.code(), cacheIsFile.err());
    assertTrue(cacheIsFile.err().contains("--cache " + file + " is a file"), cacheIsFile.err());
    assertFalse(Files.exists(cache), "nothing written");
  }

  @Test
  void theDefaultCacheIsPerRemoteStore() {
    Path a = ServeCommand.defaultCache("http://os1:9200/contexts");
    Path b = ServeCommand.defaultCache("http://os2:9200/contexts");
    assertTrue(a.endsWith(Path.of("retroinfer", "serve-cache", "os1_9200_contexts")), a.toString());
    assertFalse(a.equals(b));
  }

  @Test
  void aRemoteStoreThatDoesNotAnswerFailsTheStartBeforeTheModelLoads() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // closed again: nothing listens there
    }
    Path cache = dir.resolve("cache");
    long t0 = System.nanoTime();
    IOException e = assertThrows(IOException.class, () -> OpenAiServer.start(
        OpenAiServer.Options.of(cache).withRemoteStore("http://127.0.0.1:" + port + "/contexts")));
    assertTrue(e.getMessage().contains("cannot connect to the remote store"), e.getMessage());
    assertFalse(Files.exists(cache), "the cache is not created for a server that did not start");
    System.out.printf("refused in %.2f s%n", (System.nanoTime() - t0) / 1e9);
  }
}
