// Starting and stopping `retroinfer serve` for the scripts here: by pid, and never left running.
import { spawn } from "node:child_process";

/**
 * Starts `<launcher> serve --store STORE --port 0 ARGS...`; resolves with the child process and the
 * base URL from its "listening on" line. `started` collects the children for a final clean-up.
 */
export function startServer(launcher, store, args, started) {
  return new Promise((ok, fail) => {
    const child = spawn(launcher, ["serve", "--store", store, "--port", "0", ...args],
      { stdio: ["ignore", "pipe", "pipe"] });
    started.push(child);
    child.output = "";
    let err = "";
    const timer = setTimeout(() => fail(new Error("the server did not start in 180 s: " + err)),
      180_000);
    child.stdout.on("data", (d) => {
      child.output += d;
      const m = child.output.match(/listening on (http:\/\/[^ ]+\/v1)/);
      if (m && !child.listening) {
        child.listening = true;
        clearTimeout(timer);
        ok({ child, baseURL: m[1] });
      }
    });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error("the server exited with " + code + ": " + err));
    });
  });
}

/** Stops a server by its pid (TERM: a graceful shutdown) and resolves with its exit code. */
export function stopServer(child) {
  return new Promise((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      ok(child.exitCode);
      return;
    }
    child.removeAllListeners("exit");
    child.on("exit", (code) => ok(code));
    process.kill(child.pid, "SIGTERM");
  });
}

/** Whether a server said it stopped cleanly (a JVM ends with 143 after a TERM, hooks and all). */
export function stoppedCleanly(child, code) {
  return (code === 0 || code === 143) && /retroinfer serve: stopped/.test(child.output);
}

/** Python-like lines, deterministic for a seed, of `n` bytes (= tokens for the byte-level model). */
export function document(n, seed = 7) {
  const words = ["value", "items", "result", "count", "name", "index", "data", "total"];
  let s = "";
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648);
  while (s.length < n) {
    s += `def f${next() % 1000}(${words[next() % 8]}):\n    return ${words[next() % 8]} + ${next() % 100}\n`;
  }
  return s.slice(0, n);
}
