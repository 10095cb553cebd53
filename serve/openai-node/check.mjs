// retroinfer serve, driven by a client this project did not write: the official `openai` package.
//
// Starts the server on a fresh store, sends two chat sessions that share a long document as their
// system prompt (16,200 tokens by default), and checks that the second reports the shared tokens as
// cached and reaches its first token at least 10x sooner; checks streaming against a non-streamed
// answer; restarts the server on the same store and checks that a third session still reuses the
// document (its time to the first token is reported, not checked: the new JVM compiles more). Stops every process it started, by pid. Prints one line per step and the numbers as JSON
// on the last line. Usage: node check.mjs [--prefix-tokens N] [--launcher PATH]
import OpenAI from "openai";
import { document, startServer as start, stopServer, stoppedCleanly } from "./server.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const prefixTokens = Number(opt("--prefix-tokens", "16200"));
const launcher = resolve(opt("--launcher", join(here, "..", "..", "retroinfer")));
const store = mkdtempSync(join(tmpdir(), "retroinfer-openai-check-"));
const started = [];

const startServer = () => start(launcher, store, ["--store-min-tokens", "256"], started);

function log(line) {
  process.stdout.write(line + "\n");
}

/** One streamed chat session: time to the first content, the text, and the usage. */
async function session(client, system, question) {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({
    model: "bytecode-llama-10m",
    messages: [{ role: "system", content: system }, { role: "user", content: question }],
    max_tokens: 8,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let first = null;
  let text = "";
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const piece = chunk.choices[0]?.delta?.content;
    if (piece) {
      if (first === null) first = performance.now() - t0;
      text += piece;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { ttftMs: first, totalMs: performance.now() - t0, text, usage, chunks };
}

function check(condition, what) {
  if (!condition) throw new Error("check failed: " + what);
  log("ok   " + what);
}

async function main() {
  // the chat template's header, the document, the next header: the shared prefix in tokens
  const system = document(prefixTokens - 1 - "### system\n".length - "\n### user\n".length);
  let { child, baseURL } = await startServer();
  log(`server pid ${child.pid} at ${baseURL}, store ${store}`);
  let client = new OpenAI({ baseURL, apiKey: "none" });
  const models = await client.models.list();
  check(models.data.some((m) => m.id === "bytecode-llama-10m"), "models.list names the model");
  // a short warm-up, so that neither session's time includes the JIT compiling the model's code
  await client.completions.create({ model: "bytecode-llama-10m", prompt: "x = 1\n", max_tokens: 4 });

  const a = await session(client, system, "What does f1 return?");
  log(`session 1: ${a.usage.prompt_tokens} prompt tokens, ${a.usage.prompt_tokens_details?.cached_tokens} cached, first token after ${a.ttftMs.toFixed(0)} ms`);
  check(a.usage.prompt_tokens_details?.cached_tokens === 0, "session 1 computes its whole prompt");
  const b = await session(client, system, "Which function uses items?");
  log(`session 2: ${b.usage.prompt_tokens} prompt tokens, ${b.usage.prompt_tokens_details?.cached_tokens} cached, first token after ${b.ttftMs.toFixed(0)} ms`);
  check(b.usage.prompt_tokens_details?.cached_tokens >= prefixTokens,
    `session 2 reports the ${prefixTokens} shared tokens (and any shared start of the question) as cached`);
  const ratio = a.ttftMs / b.ttftMs;
  check(ratio >= 10, `session 2 reaches its first token ${ratio.toFixed(1)}x sooner (at least 10x)`);

  // streaming against a non-streamed answer to the same prompt
  const plain = await client.chat.completions.create({
    model: "bytecode-llama-10m",
    messages: [{ role: "system", content: system }, { role: "user", content: "Which function uses items?" }],
    max_tokens: 8,
    temperature: 0,
  });
  check(plain.choices[0].message.content === b.text && b.chunks >= 3,
    `the streamed text (${b.chunks} chunks) equals the non-streamed answer`);

  const code = await stopServer(child);
  check(stoppedCleanly(child, code), `the server stopped gracefully on SIGTERM (exit code ${code})`);
  ({ child, baseURL } = await startServer());
  log(`restarted: server pid ${child.pid} at ${baseURL}`);
  client = new OpenAI({ baseURL, apiKey: "none" });
  await client.completions.create({ model: "bytecode-llama-10m", prompt: "x = 1\n", max_tokens: 4 });
  const c = await session(client, system, "Name a function that returns count.");
  log(`session 3 (after the restart): ${c.usage.prompt_tokens_details?.cached_tokens} cached, first token after ${c.ttftMs.toFixed(0)} ms`);
  check(c.usage.prompt_tokens_details?.cached_tokens >= prefixTokens,
    "after the restart the document is still reused");
  // reported, not checked: a fresh JVM (warmed up on scratch data at its start) compiles more
  log(`info session 3 reaches its first token ${(a.ttftMs / c.ttftMs).toFixed(1)}x sooner than session 1, in a fresh JVM`);
  await stopServer(child);
  log(JSON.stringify({
    prefixTokens,
    coldTtftMs: Math.round(a.ttftMs),
    reusedTtftMs: Math.round(b.ttftMs),
    afterRestartTtftMs: Math.round(c.ttftMs),
    ttftRatio: Number(ratio.toFixed(1)),
    afterRestartRatio: Number((a.ttftMs / c.ttftMs).toFixed(1)),
  }));
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  process.stderr.write("openai check: " + (e?.stack ?? e) + "\n");
} finally {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      await stopServer(child);
    }
  }
  rmSync(store, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
