package org.retroinfer.app.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.model.tokenizer.ByteTokenizer;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.PrefixHasher;
import org.retroinfer.store.PrefixMatch;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.app.PromptCache;
import org.retroinfer.app.Devices;
import org.retroinfer.app.rag.DocumentReuse;
import org.retroinfer.app.tier.ContextTier;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.store.tier.ClusterBlockTier;
import org.retroinfer.wave.WaveConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code retroinfer store list|put|get|delete}: the context store from the command line. */
@Command(name = "store", mixinStandardHelpOptions = true,
    description = {"Stored contexts (K/V + wave index) that outlive a process: list, put, get, delete.",
        "Every command sees only the contexts of its --tenant (none: the default tenant's).",
        "Exit codes: 0 done, 1 an error the message explains, 2 invalid arguments (a prompt"
            + " longer than the model's context included; nothing was loaded), 4 the store is"
            + " damaged."},
    subcommands = {StoreCommand.ListCommand.class, StoreCommand.PutCommand.class,
        StoreCommand.GetCommand.class, StoreCommand.DeleteCommand.class})
public final class StoreCommand implements Callable<Integer> {
  static final String ALLOW_LONG = "Accept a prompt longer than the model's trained context"
      + " (max_position_embeddings): it is prefilled whole, at positions the model never saw in"
      + " training, so the output degrades, and time and memory grow with its length. Without"
      + " it such a prompt is refused before any work.";

  @Spec CommandSpec spec;

  /** Without a subcommand: the usage, on standard error, and a usage error (exit code 2). */
  @Override
  public Integer call() {
    spec.commandLine().usage(spec.commandLine().getErr());
    spec.commandLine().getErr().flush();
    return picocli.CommandLine.ExitCode.USAGE;
  }

  /** Writers wait this long for another process's write lock. */
  static final class LockOptions {
    @Option(names = "--lock-timeout", paramLabel = "SECONDS", defaultValue = "60",
        description = "How long to wait for another process that is writing the store (default"
            + " ${DEFAULT-VALUE} s); then give up with an error.")
    long seconds;

    Duration timeout(CommandSpec spec) {
      if (seconds < 0) {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(),
            "--lock-timeout must be 0 or more seconds, got " + seconds);
      }
      return Duration.ofSeconds(seconds);
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true,
      description = "List this tenant's stored contexts (of the --model, if given).")
  static final class ListCommand implements Callable<Integer> {
    @Mixin StoreOptions options;
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      try (ContextStore store = options.remote() ? null
          : ContextStore.openReadOnly(options.storeDirectory())) {
        List<ContextInfo> all = store == null
            ? options.remoteStore().list(options.tenant, options.modelOrNull())
            : options.view(store).list();
        Object where = store == null ? options.remoteStore() : store.directory();
        if (options.json) {
          out.println(StoreOptions.json().writeValueAsString(all));
        } else {
          out.printf("%-33s %-9s %8s  %-12s %-16s %-20s %s%n", "id", "kind", "tokens", "model",
              "tenant", "created", "name");
          for (ContextInfo c : all) {
            out.printf("%-33s %-9s %8d  %-12s %-16s %-20s %s%n", c.id(), c.kind(), c.tokens(),
                c.model().substring(0, 12), c.tenant().isEmpty() ? "-" : c.tenant(),
                c.created().toString().substring(0, 19), c.name());
          }
          out.println(all.size() + " contexts of " + (options.tenant.isEmpty()
              ? "the default tenant" : "this tenant") + " in " + where);
        }
      }
      out.flush();
      return 0;
    }
  }

  @Command(name = "put", mixinStandardHelpOptions = true,
      description = "Prefill a prompt (reusing any stored prefix) and store it with its wave index.")
  static final class PutCommand implements Callable<Integer> {
    @Mixin StoreOptions options;
    @Spec CommandSpec spec;
    @Option(names = "--text", description = "The prompt text.") String text;
    @Option(names = "--file", description = "A file whose bytes are the prompt.") Path file;
    @Option(names = "--name", defaultValue = "", description = "A label for the context.")
    String name;
    @Option(names = "--document", description = "Store as a RAG document (computed on its own,"
        + " reusable at any position).") boolean document;
    @Option(names = "--no-document-start", description = "Do not prepend the document-start token.")
    boolean noStart;
    @Option(names = "--allow-long-prompt", description = ALLOW_LONG) boolean allowLong;
    @Mixin LockOptions lock;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      int[] tokens = StoreOptions.tokens(text, file, !noStart);
      options.checkPromptLength(spec, tokens, allowLong); // before the model, the store, the prefill
      WaveConfig config = StoreOptions.config();
      Map<String, Object> result = new LinkedHashMap<>();
      boolean remote = options.remote();
      // a remote store: its best stored prefix of the prompt, fetched into a local store (to
      // reuse it), and the new context written to a store of its own, then sent as one pack
      Path work = remote ? java.nio.file.Files.createTempDirectory("retroinfer-put") : null;
      try (StoreOptions.Loaded m = options.loadModel();
          ContextStore store = remote
              ? remoteView(options, work, tokens, m.fingerprint(), config, true, result)
              : ContextStore.open(options.storeDirectory(), PrefixHasher.DEFAULT_CHUNK_TOKENS,
                  lock.timeout(spec));
          ContextStore target = remote ? ContextStore.open(work.resolve("put")) : store) {
        ContextStore.Scope scope = store.scope(m.fingerprint(), options.tenant, config.kvType());
        ContextStore.Scope targetScope = target.scope(m.fingerprint(), options.tenant,
            config.kvType());
        long t0 = System.nanoTime();
        ContextInfo info;
        int reused = 0;
        if (document) {
          info = new DocumentReuse(m.model(), targetScope, config).storeDocument(name, tokens);
        } else {
          PromptCache cache = new PromptCache(m.model(), scope, config);
          PromptCache.Prepared p;
          try (Progress bar = Progress.prefill(err, tokens.length)) {
            p = cache.prepare(tokens, bar::update);
          }
          try (var c = p.cache()) {
            reused = p.reusedTokens();
            info = remote ? targetScope.put(name, "prompt", tokens, c, p.logits(), null)
                : cache.save(name, tokens, p);
          }
        }
        if (remote) {
          target.close();
          RemoteContextStore.Put sent = options.remoteStore().put(work.resolve("put"));
          Map<String, Object> put = new LinkedHashMap<>();
          put.put("bytes", sent.bytes());
          put.put("packMs", sent.packNanos() / 1e6);
          put.put("sendMs", sent.sendNanos() / 1e6);
          put.put("sendMBPerSecond", sent.bytes() / 1e6 / (sent.sendNanos() / 1e9));
          result.put("sent", put);
        }
        result.put("context", info);
        result.put("reusedTokens", reused);
        result.put("seconds", (System.nanoTime() - t0) / 1e9);
        if (options.json) {
          out.println(StoreOptions.json().writeValueAsString(result));
        } else {
          out.printf("stored %s: %d tokens (%s, %d reused from the store) in %.1f s, in %s%n",
              info.id(), info.tokens(), info.kind(), reused, (double) result.get("seconds"),
              remote ? options.remoteStore() : store.directory());
        }
      } finally {
        if (work != null) {
          org.retroinfer.store.RemoteContextStore.deleteTree(work);
        }
      }
      out.flush();
      return 0;
    }
  }

  /**
   * A remote store as seen for one prompt: a local, read-only store under {@code work} holding the
   * tenant's best verified stored prefix of {@code tokens} (or nothing).
   */
  static ContextStore remoteView(StoreOptions options, Path work, int[] tokens,
      ModelFingerprint fingerprint, WaveConfig config, boolean forPut, Map<String, Object> result)
      throws java.io.IOException {
    Path dir = work.resolve("found");
    RemoteContextStore.Materialized m = options.remoteStore().materialize(dir, tokens, fingerprint,
        options.tenant, config.kvType(), forPut);
    Map<String, Object> remote = new LinkedHashMap<>();
    remote.put("store", options.remoteStore().toString());
    remote.put("lookupMs", m.lookupNanos() / 1e6);
    remote.put("fetchMs", m.fetchNanos() / 1e6);
    remote.put("fetchedBytes", m.bytes());
    remote.put("totalMs", m.totalNanos() / 1e6);
    result.put("remote", remote);
    return m.store();
  }

  @Command(name = "get", mixinStandardHelpOptions = true,
      description = "Find the longest stored prefix of a prompt; with --generate, continue it.")
  static final class GetCommand implements Callable<Integer> {
    @Mixin StoreOptions options;
    @Spec CommandSpec spec;
    @Option(names = "--text", description = "The prompt text.") String text;
    @Option(names = "--file", description = "A file whose bytes are the prompt.") Path file;
    @Option(names = "--generate", paramLabel = "N", defaultValue = "0",
        description = "Decode N tokens greedily after the prompt (loads the stored prefix and"
            + " prefills only the rest).") int generate;
    @Option(names = "--no-document-start", description = "Do not prepend the document-start token.")
    boolean noStart;
    @Option(names = "--tier", paramLabel = "FILE", description = "With --generate: the CPU tier"
        + " file (Chronicle Map) of cluster blocks: on the GPU the wave buffer's misses are read"
        + " through it (from the store's files when it lacks them); on the CPU the context's blocks"
        + " are put into it. The file stays within --tier-bytes and is kept for the next process;"
        + " without --tier the GPU uses a temporary one, removed at the end.")
    Path tier;
    @Option(names = "--tier-bytes", paramLabel = "BYTES", defaultValue = "268435456",
        description = "Capacity of the CPU tier in bytes (default 256 MiB).") long tierBytes;
    @Option(names = "--allow-long-prompt", description = ALLOW_LONG) boolean allowLong;
    @Mixin DeviceOption device;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      if (generate < 0) {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(),
            "--generate must be 0 (only find the prefix) or more tokens, got " + generate);
      }
      if (tierBytes < 1) {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(),
            "--tier-bytes must be a positive number of bytes, got " + tierBytes);
      }
      int[] tokens = StoreOptions.tokens(text, file, !noStart);
      options.checkPromptLength(spec, tokens, allowLong); // before the model, the store, the prefill
      WaveConfig config = StoreOptions.config();
      Map<String, Object> result = new LinkedHashMap<>();
      // the model only to generate (a lookup needs only its fingerprint)
      boolean remote = options.remote();
      if (remote) {
        options.remoteStore().connect(); // while the model loads
      }
      Path work = remote ? java.nio.file.Files.createTempDirectory("retroinfer-get") : null;
      try (Llama model = generate > 0 ? Llama.load(options.modelDirectory()) : null;
          ContextStore store = remote ? remoteView(options, work, tokens, options.fingerprint(),
              config, false, result) : ContextStore.openReadOnly(options.storeDirectory())) {
        ModelFingerprint fingerprint = options.fingerprint();
        ContextStore.Scope scope = store.scope(fingerprint, options.tenant, config.kvType());
        Optional<PrefixMatch> match = scope.find(tokens);
        result.put("promptTokens", tokens.length);
        result.put("match", match.orElse(null));
        if (model != null) {
          boolean gpu = device.apply(err);
          generate(model, scope, config, tokens, result, err, gpu);
        }
      } finally {
        if (work != null) {
          org.retroinfer.store.RemoteContextStore.deleteTree(work);
        }
      }
      if (options.json) {
        out.println(StoreOptions.json().writeValueAsString(result));
      } else {
        Object mm = result.get("match");
        out.println(mm == null ? "no stored prefix of this " + tokens.length + "-token prompt"
            : "longest stored prefix: " + ((PrefixMatch) mm).matchedTokens() + " of "
                + tokens.length + " tokens, in context " + ((PrefixMatch) mm).context().id());
        if (result.get("tier") instanceof Map<?, ?> t) {
          out.printf("CPU tier %s: %s blocks held (%,d bytes of K/V; the file %,d of at most %,d"
              + " bytes), %s evictions, %s hits, %s misses%s%n", t.get("file"), t.get("blocksHeld"),
              (long) t.get("bytesHeld"), (long) t.get("fileBytes"), (long) t.get("capacityBytes"),
              t.get("evictions"), t.get("hits"), t.get("misses"),
              tier != null ? "; the file is kept for the next process" : "; removed");
        }
        if (result.containsKey("generated")) {
          out.printf("reused %d tokens, first token after %.3f s (prefix lookup %d ms, opening the"
              + " stored context %d ms of which checksums %d ms, prefill %d ms, index %d ms),"
              + " first decode step %d ms; generated:%n%s%n",
              result.get("reusedTokens"), result.get("firstTokenSeconds"), times(result, "find"),
              times(result, "open"), times(result, "verify"), times(result, "prefill"),
              times(result, "index"), times(result, "firstStep"), result.get("generated"));
        }
      }
      out.flush();
      return 0;
    }

    private static Object times(Map<String, Object> result, String part) {
      return ((Map<?, ?>) result.get("timesMs")).get(part);
    }

    /** Prepares the prompt (reusing its longest stored prefix) and decodes greedily. */
    private void generate(Llama model, ContextStore.Scope scope, WaveConfig config, int[] tokens,
        Map<String, Object> result, PrintWriter err, boolean gpu) throws Exception {
      PromptCache.Prepared p;
      long v0 = org.retroinfer.lucene.WaveField.verifyNanos();
      try (Progress bar = Progress.prefill(err, tokens.length)) {
        p = new PromptCache(model, scope, config).prepare(tokens, bar::update);
      }
      long verify = org.retroinfer.lucene.WaveField.verifyNanos() - v0;
      int avg = config.tokensPerCluster() * 2 * model.attentionShape().headDim()
          * config.kvType().bytes();
      // the CPU tier: the given file (kept, within its capacity, for the next process) or, for
      // the GPU's misses without one, a temporary file removed at the end
      ClusterBlockTier t = tier != null ? ClusterBlockTier.open(tier, tierBytes, avg)
          : gpu ? ClusterBlockTier.openTemporary(tierBytes, avg) : null;
      ContextCache c = p.cache();
      try {
        String id = p.contextId() != null ? p.contextId()
            : "prompt-" + java.util.Arrays.hashCode(tokens);
        if (gpu) {
          // decode attention on the GPU: the wave buffer's misses come from the CPU tier
          ContextCache cpu = c;
          c = Devices.gpuWave(config).wrap(cpu, layer -> ContextTier.forLayer(t, id, cpu, layer));
        } else if (t != null) {
          int blocks = t.warm(Math.floorMod(id.hashCode(), 1 << 30), c);
          result.put("tierBlocksPut", blocks);
        }
        Decoder d = model.decoder(c);
        int[] ids = new int[generate];
        float[] logits = p.logits();
        long firstStep = 0;
        try (Progress bar = Progress.start(err, "decode", "tokens", generate)) {
          for (int i = 0; i < generate; i++) {
            ids[i] = Sampler.argmax(logits);
            if (i + 1 < generate) {
              long s0 = System.nanoTime();
              logits = d.step(ids[i]);
              if (i == 0) {
                firstStep = System.nanoTime() - s0;
              }
            }
            bar.stepTo(i + 1);
          }
        }
        if (t != null) {
          result.put("tier", Map.of("file", t.file().toString(), "blocksHeld", t.blocks(),
              "bytesHeld", t.bytes(), "capacityBytes", t.capacityBytes(),
              "fileBytes", java.nio.file.Files.exists(t.file()) ? java.nio.file.Files.size(t.file())
                  : 0, "evictions", t.evictions(), "hits", t.hits(), "misses", t.misses()));
        }
        result.put("device", gpu ? "gpu" : "cpu");
        result.put("reusedTokens", p.reusedTokens());
        // from a remote store, the time to the first token includes the lookup and the transfer
        double remoteMs = result.get("remote") instanceof Map<?, ?> r
            ? ((Number) r.get("totalMs")).doubleValue() : 0;
        result.put("firstTokenSeconds", (p.findNanos() + p.loadNanos() + p.prefillNanos()
            + p.indexNanos()) / 1e9 + remoteMs / 1e3);
        // the parts of the time to the first token, and the first decode step (they vary by run)
        Map<String, Long> times = new LinkedHashMap<>();
        if (remoteMs > 0) {
          times.put("remote", Math.round(remoteMs));
        }
        times.put("find", p.findNanos() / 1_000_000);
        times.put("open", p.loadNanos() / 1_000_000);
        times.put("verify", verify / 1_000_000);
        times.put("prefill", p.prefillNanos() / 1_000_000);
        times.put("index", p.indexNanos() / 1_000_000);
        times.put("firstStep", firstStep / 1_000_000);
        result.put("timesMs", times);
        result.put("generated", new ByteTokenizer().decode(ids, 0, ids.length));
      } finally {
        c.close();
        if (t != null) {
          t.close();
        }
      }
    }
  }

  @Command(name = "delete", mixinStandardHelpOptions = true,
      description = "Delete one of this tenant's contexts (of the --model, if given).")
  static final class DeleteCommand implements Callable<Integer> {
    @Mixin StoreOptions options;
    @Spec CommandSpec spec;
    @Parameters(paramLabel = "ID", description = "The context id (see 'store list').") String id;
    @Mixin LockOptions lock;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      if (options.remote()) {
        if (!options.remoteStore().delete(id, options.tenant, options.modelOrNull())) {
          throw new IllegalArgumentException("no context " + id + " of this tenant"
              + (options.model != null ? " and model" : "") + " in " + options.remoteStore()
              + "; 'retroinfer store list' with the same --tenant shows yours");
        }
        out.println(options.json ? StoreOptions.json().writeValueAsString(Map.of("deleted", id))
            : "deleted " + id);
        out.flush();
        return 0;
      }
      Path dir = options.storeDirectory();
      if (!ContextStore.exists(dir)) {
        throw new IllegalArgumentException("no context store at " + dir.toAbsolutePath()
            + "; pass the right --store DIR");
      }
      try (ContextStore store = ContextStore.open(dir, PrefixHasher.DEFAULT_CHUNK_TOKENS,
          lock.timeout(spec))) {
        if (!options.view(store).delete(id)) {
          // the same answer for a context that does not exist and one of another tenant or model
          throw new IllegalArgumentException("no context " + id + " of this tenant"
              + (options.model != null ? " and model" : "") + " in " + store.directory()
              + "; 'retroinfer store list' with the same --tenant shows yours");
        }
      }
      out.println(options.json ? StoreOptions.json().writeValueAsString(Map.of("deleted", id))
          : "deleted " + id);
      out.flush();
      return 0;
    }
  }
}
