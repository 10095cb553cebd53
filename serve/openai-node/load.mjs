// A bounded load test of retroinfer serve on loopback with the official `openai` package.
//
// Starts the server on a fresh store, then C clients (default 8) each send R requests (default 40)
// one after another: short chat completions (8 tokens, greedy) whose system prompt is one of a few
// shared 1,024-token documents, so that most requests reuse a stored prefix; every other request
// streams. Checks that no request failed, stops the server by its pid, and runs
// `retroinfer inspect` on the store (Lucene's CheckIndex over every file). Prints the latency
// percentiles and the throughput, and the numbers as JSON on the last line.
// Usage: node load.mjs [--clients C] [--requests R] [--launcher PATH]
import OpenAI from "openai";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { document, startServer, stopServer, stoppedCleanly } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const clients = Number(opt("--clients", "8"));
const perClient = Number(opt("--requests", "40"));
const launcher = resolve(opt("--launcher", join(here, "..", "..", "retroinfer")));
const store = mkdtempSync(join(tmpdir(), "retroinfer-load-"));
const started = [];
const documents = [1, 2, 3, 4].map((seed) => document(1024, seed));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function request(client, i, k) {
  const body = {
    model: "bytecode-llama-10m",
    messages: [
      { role: "system", content: documents[(i + k) % documents.length] },
      { role: "user", content: `client ${i} request ${k}: what does f${k} return?` },
    ],
    max_tokens: 8,
    temperature: 0,
  };
  const t0 = performance.now();
  if (k % 2 === 1) {
    const stream = await client.chat.completions.create({ ...body, stream: true,
      stream_options: { include_usage: true } });
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
    }
    return { ms: performance.now() - t0, usage };
  }
  const r = await client.chat.completions.create(body);
  return { ms: performance.now() - t0, usage: r.usage };
}

async function main() {
  const { child, baseURL } = await startServer(launcher, store,
    ["--store-min-tokens", "256", "--threads", "2", "--max-queue", String(clients)], started);
  console.log(`server pid ${child.pid} at ${baseURL}, store ${store}`);
  // retries off: a failed request counts as failed
  const client = new OpenAI({ baseURL, apiKey: "none", maxRetries: 0, timeout: 120_000 });
  // one request per document first, so that the load runs against a store that holds them
  for (let d = 0; d < documents.length; d++) {
    await request(client, d, documents.length); // stores a document's prompt
  }
  const latencies = [];
  const failures = [];
  let cached = 0;
  let prompt = 0;
  const t0 = performance.now();
  await Promise.all([...Array(clients).keys()].map(async (i) => {
    for (let k = 0; k < perClient; k++) {
      try {
        const r = await request(client, i, k);
        latencies.push(r.ms);
        cached += r.usage.prompt_tokens_details?.cached_tokens ?? 0;
        prompt += r.usage.prompt_tokens;
      } catch (e) {
        failures.push(String(e));
      }
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const metrics = await (await fetch(baseURL.replace(/\/v1$/, "/metrics"))).text();
  const code = await stopServer(child);
  const inspect = spawnSync(launcher, ["inspect", store], { encoding: "utf8" });
  latencies.sort((a, b) => a - b);
  const result = {
    clients,
    requests: clients * perClient,
    failed: failures.length,
    seconds: Number(seconds.toFixed(1)),
    requestsPerSecond: Number((latencies.length / seconds).toFixed(2)),
    p50Ms: Math.round(percentile(latencies, 50)),
    p90Ms: Math.round(percentile(latencies, 90)),
    p99Ms: Math.round(percentile(latencies, 99)),
    maxMs: Math.round(latencies[latencies.length - 1]),
    cachedShare: Number((cached / prompt).toFixed(3)),
    stoppedCleanly: stoppedCleanly(child, code),
    inspectExitCode: inspect.status,
  };
  console.log(`${result.requests} requests from ${clients} clients in ${result.seconds} s:`
    + ` ${result.requestsPerSecond} requests/s, latency p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms,`
    + ` p99 ${result.p99Ms} ms, max ${result.maxMs} ms; ${failures.length} failed;`
    + ` ${(100 * result.cachedShare).toFixed(1)}% of the prompt tokens reused from the store`);
  console.log("server: " + (metrics.match(/^retroinfer_prefix_hit_ratio .*$/m) ?? [""])[0]);
  console.log(`the store after the run: retroinfer inspect exited with ${inspect.status}`
    + (inspect.status === 0 ? " (every file and segment checked)" : ":\n" + inspect.stdout + inspect.stderr));
  for (const f of failures.slice(0, 5)) console.log("failed: " + f);
  console.log(JSON.stringify(result));
  return failures.length === 0 && inspect.status === 0 && result.stoppedCleanly;
}

let ok = false;
try {
  ok = await main();
} catch (e) {
  process.stderr.write("load test: " + (e?.stack ?? e) + "\n");
} finally {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      await stopServer(child);
    }
  }
  rmSync(store, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
