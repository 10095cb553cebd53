package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A remote store with a request timeout fails a call whose answer does not begin in time, with an
 * {@link IOException} that says so (a stalled cluster: here a loopback socket that accepts the
 * connection and never answers), instead of holding the caller forever.
 */
class RemoteContextStoreTimeoutTest {
  @Test
  void aStalledStoreFailsTheCallAfterTheTimeout() throws Exception {
    try (ServerSocket silent = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
      Thread acceptor = Thread.ofVirtual().start(() -> {
        try (Socket s = silent.accept()) {
          Thread.sleep(30_000); // reads nothing, answers nothing
        } catch (IOException | InterruptedException e) {
          // the test is over
        }
      });
      RemoteContextStore store = RemoteContextStore.of("http://127.0.0.1:" + silent.getLocalPort()
          + "/contexts").withRequestTimeout(Duration.ofMillis(300));
      long t0 = System.nanoTime();
      IOException e = assertThrows(IOException.class, () -> store.list("", null));
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(e.getMessage().contains("did not answer within 300 ms"), e.getMessage());
      assertTrue(ms < 10_000, "failed after " + ms + " ms");
      acceptor.interrupt();
    }
    assertThrows(IllegalArgumentException.class,
        () -> RemoteContextStore.of("http://127.0.0.1:9200/contexts").withRequestTimeout(Duration.ZERO));
  }
}
