package org.retroinfer.serve;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.function.DoubleSupplier;

/**
 * What {@code GET /metrics} shows, in Prometheus' text format: requests by endpoint and status,
 * tokens (prompt, completion, reused from the store), prefix lookups and hits, the time to the first
 * token, requests running and waiting, evictions, and the store's size; with a remote store, its
 * lookups, hits, fetched bytes and fetch time, and the puts sent to it and those that failed.
 */
final class ServerMetrics {
  final PrometheusRegistry registry = new PrometheusRegistry();
  final Counter requests = Counter.builder().name("retroinfer_requests_total")
      .help("HTTP requests answered, by endpoint and status code")
      .labelNames("endpoint", "status").register(registry);
  final Counter promptTokens = Counter.builder().name("retroinfer_prompt_tokens_total")
      .help("Prompt tokens of completed requests").register(registry);
  final Counter cachedTokens = Counter.builder().name("retroinfer_cached_tokens_total")
      .help("Prompt tokens whose K/V came from the store instead of a prefill").register(registry);
  final Counter completionTokens = Counter.builder().name("retroinfer_completion_tokens_total")
      .help("Generated tokens").register(registry);
  final Counter prefixLookups = Counter.builder().name("retroinfer_prefix_lookups_total")
      .help("Prompts looked up in the store").register(registry);
  final Counter prefixHits = Counter.builder().name("retroinfer_prefix_hits_total")
      .help("Prompts that reused a stored prefix").register(registry);
  final Counter storedContexts = Counter.builder().name("retroinfer_stored_contexts_total")
      .help("Prompts stored for later requests").register(registry);
  final Counter evictions = Counter.builder().name("retroinfer_evicted_contexts_total")
      .help("Stored contexts evicted to keep the store within its capacity").register(registry);
  final Counter rejected = Counter.builder().name("retroinfer_rejected_requests_total")
      .help("Requests refused with 429 because the queue was full").register(registry);
  final Counter remoteLookups = Counter.builder().name("retroinfer_remote_lookups_total")
      .help("Prompts looked up in the remote store because the local cache had a shorter prefix")
      .register(registry);
  final Counter remoteHits = Counter.builder().name("retroinfer_remote_hits_total")
      .help("Prompts that reused a prefix fetched from the remote store into the local cache")
      .register(registry);
  final Counter remoteFetchedBytes = Counter.builder().name("retroinfer_remote_fetched_bytes_total")
      .help("Bytes of contexts fetched from the remote store").register(registry);
  final Histogram remoteFetchSeconds = Histogram.builder()
      .name("retroinfer_remote_fetch_seconds")
      .help("Time of a fetch from the remote store: lookup, transfer, verification, copy into the"
          + " local cache")
      .classicOnly()
      .classicUpperBounds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
      .register(registry);
  final Counter remoteFetchFailures = Counter.builder()
      .name("retroinfer_remote_fetch_failures_total")
      .help("Remote lookups or fetches that failed (the request went on with the local cache)")
      .register(registry);
  final Counter remotePuts = Counter.builder().name("retroinfer_remote_puts_total")
      .help("Contexts sent to the remote store").register(registry);
  final Counter remotePutBytes = Counter.builder().name("retroinfer_remote_put_bytes_total")
      .help("Bytes of the contexts sent to the remote store").register(registry);
  final Counter remotePutFailures = Counter.builder().name("retroinfer_remote_put_failures_total")
      .help("Contexts that could not be sent to the remote store (they stay in the local cache)")
      .register(registry);
  final Histogram timeToFirstToken = Histogram.builder()
      .name("retroinfer_time_to_first_token_seconds")
      .help("From the start of a request's work to its first generated token (prefix lookup, load,"
          + " prefill of the rest)")
      .classicOnly()
      .classicUpperBounds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
      .register(registry);
  final Gauge running = Gauge.builder().name("retroinfer_requests_running")
      .help("Requests being computed now").register(registry);
  final Gauge waiting = Gauge.builder().name("retroinfer_requests_waiting")
      .help("Requests queued for a compute slot").register(registry);

  ServerMetrics(DoubleSupplier storeBytes, DoubleSupplier storeContexts) {
    GaugeWithCallback.builder().name("retroinfer_store_bytes")
        .help("Bytes of the context store's index files on disk")
        .callback(cb -> cb.call(storeBytes.getAsDouble())).register(registry);
    GaugeWithCallback.builder().name("retroinfer_store_contexts")
        .help("Contexts in the store, of every tenant")
        .callback(cb -> cb.call(storeContexts.getAsDouble())).register(registry);
    GaugeWithCallback.builder().name("retroinfer_prefix_hit_ratio")
        .help("Prefix hits / prefix lookups since the start (0 before the first lookup)")
        .callback(cb -> {
          double n = prefixLookups.get();
          cb.call(n == 0 ? 0 : prefixHits.get() / n);
        }).register(registry);
  }

  /** The text exposition of every metric. */
  byte[] scrape() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrometheusTextFormatWriter.create().write(out, registry.scrape(),
        io.prometheus.metrics.config.EscapingScheme.DEFAULT);
    return out.toByteArray();
  }

  static String contentType() {
    return PrometheusTextFormatWriter.CONTENT_TYPE;
  }
}
