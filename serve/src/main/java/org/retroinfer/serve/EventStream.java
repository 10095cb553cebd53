package org.retroinfer.serve;

import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A response body of server-sent events, as OpenAI streams: {@code data: JSON} events, each sent at
 * once, ending with {@code data: [DONE]}. Helidon's SSE sink is not used because it serves only
 * requests that accept {@code text/event-stream}, and OpenAI's clients ask for JSON.
 */
final class EventStream implements AutoCloseable {
  private final OutputStream out;

  EventStream(ServerResponse res) {
    res.status(200);
    res.header("Content-Type", "text/event-stream; charset=utf-8");
    res.header("Cache-Control", "no-cache");
    this.out = res.outputStream();
  }

  /** Sends one event whose data is a single line (JSON without line breaks, or [DONE]). */
  void send(String data) throws IOException {
    out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  @Override
  public void close() throws IOException {
    out.close();
  }
}
