package org.retroinfer.app.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.PrefixHasher;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.store.StoreDamagedException;
import org.retroinfer.store.inspect.ExplainReport;
import org.retroinfer.app.inspect.Explainer;
import org.retroinfer.store.inspect.HtmlReport;
import org.retroinfer.store.inspect.InspectReport;
import org.retroinfer.store.inspect.StoreInspector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code retroinfer explain}: what wave attention read for one query over a stored context. */
@Command(name = "explain", mixinStandardHelpOptions = true,
    description = "For a stored context of this --tenant and model and a query position: the"
        + " retrieved and estimated clusters per layer and KV head, and the share of the true"
        + " attention mass each zone captured. From a remote --store http://HOST:PORT/INDEX the"
        + " context is fetched, explained the same way, and its temporary copy removed.")
public final class ExplainCommand implements Callable<Integer> {
  @Mixin StoreOptions options;
  @Spec CommandSpec spec;
  @Option(names = "--context", paramLabel = "ID",
      description = "The context (default: the newest one of this model and tenant).") String context;
  @Option(names = "--position", paramLabel = "P", defaultValue = "-1",
      description = "Query position (default: right after the context).") int position;
  @Option(names = "--token", paramLabel = "ID", defaultValue = "-1",
      description = "Token at the query position (default: the stored one, or the greedy next"
          + " token at the end).") int token;
  @Option(names = "--html", paramLabel = "FILE", description = "Also write a self-contained HTML"
      + " report with plots (its store section: this tenant's contexts of the model; from a remote"
      + " store, the explained context as it travels).") Path html;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Explained e;
    try (StoreOptions.Loaded m = options.loadModel()) {
      e = options.remote() ? explainRemote(m) : explainLocal(m);
    }
    ExplainReport r = e.report();
    if (options.json) {
      out.println(StoreOptions.json().writeValueAsString(r));
    } else {
      out.printf("context %s (%d tokens), query at position %d, token %d%n", r.context(),
          r.contextTokens(), r.position(), r.token());
      out.printf("%5s %4s %8s %9s %9s %7s %10s %8s %9s %9s %9s %8s %9s%n", "layer", "head",
          "clusters", "retrieved", "estimated", "exact", "exact.mass", "planned", "steady",
          "retr.mass", "est.mass", "skipped", "out.error");
      for (ExplainReport.Head h : r.heads()) {
        out.printf("%5d %4d %8d %9d %9d %7d %10.3f %8s %9.3f %9.3f %9.3f %8.3f %9.4f%n", h.layer(),
            h.kvHead(), h.clusters(), h.retrievedCount(), h.estimatedCount(), h.exactTokens(),
            h.steadyMass() + h.retrievedMass(), Double.isNaN(h.plannedExactShare()) ? "-"
                : String.format("%.3f", h.plannedExactShare()), h.steadyMass(),
            h.retrievedMass(), h.estimatedMass(), h.skippedMass(), h.outputError());
      }
      out.println("exact: tokens read exactly (steady zone and retrieved clusters); exact.mass:"
          + " their true share of the attention mass; planned: the share the adaptive budget"
          + " estimated for them");
      out.printf("mean mass: steady %.3f, retrieved %.3f, estimated %.3f, skipped %.3f; mean output"
          + " error %.4f%n", r.meanSteady(), r.meanRetrieved(), r.meanEstimated(), r.meanSkipped(),
          r.meanOutputError());
      out.print("mass captured vs budget (ranking / oracle):");
      for (int b = 0; b < r.budgets().length; b++) {
        out.printf(" %.1f%%: %.3f/%.3f", r.budgets()[b] * 100, r.meanRankedMass()[b],
            r.meanOracleMass()[b]);
      }
      out.println();
    }
    if (html != null) {
      Files.writeString(html, HtmlReport.render(e.store(), r));
      if (!options.json) {
        out.println("report written to " + html);
      }
    }
    out.flush();
    return 0;
  }

  /** The explanation and, for --html, the inspection of the store it came from (else null). */
  private record Explained(ExplainReport report, InspectReport store) {}

  private Explained explainLocal(StoreOptions.Loaded m) throws IOException {
    Path dir = options.storeDirectory();
    ExplainReport r;
    try (ContextStore store = ContextStore.openReadOnly(dir)) {
      ContextStore.Scope scope = store.scope(m.fingerprint(), options.tenant,
          StoreOptions.config().kvType());
      String id = context;
      if (id == null) {
        List<ContextInfo> mine = scope.list();
        if (mine.isEmpty()) {
          throw new IllegalArgumentException("no context of this model and tenant in "
              + store.directory() + "; store one with 'retroinfer store put' or pass --context");
        }
        id = mine.get(mine.size() - 1).id();
      }
      r = Explainer.explain(m.model(), scope, id, position, token);
    }
    return new Explained(r, html == null ? null
        : StoreInspector.inspect(dir, false, options.tenant, m.fingerprint()));
  }

  /**
   * A remote store: the context is fetched (the newest of this model and tenant unless --context
   * names one) into a temporary store of its own, explained there exactly as in a local store, and
   * the temporary store removed, also on failure. For --html, the store section is that context's
   * (as it travels), not every context of the tenant. Damage found in the copy is reported as the
   * remote store's context's, since the copy is gone when the message is read.
   */
  private Explained explainRemote(StoreOptions.Loaded m) throws IOException {
    RemoteContextStore remote = options.remoteStore();
    ModelFingerprint model = m.fingerprint();
    String id = context;
    if (id == null) {
      // the newest of this scope: this tenant, model and K/V type, as a local store's scope lists
      String namespace = new PrefixHasher(model, options.tenant, StoreOptions.config().kvType(),
          PrefixHasher.DEFAULT_CHUNK_TOKENS).namespace();
      List<ContextInfo> mine = remote.list(options.tenant, model).stream()
          .filter(c -> c.namespace().equals(namespace))
          .sorted(Comparator.comparing(ContextInfo::created).thenComparing(ContextInfo::id))
          .toList();
      if (mine.isEmpty()) {
        throw new IllegalArgumentException("no context of this model and tenant in " + remote
            + "; store one with 'retroinfer store put --store " + remote + "' or pass --context");
      }
      id = mine.get(mine.size() - 1).id();
    }
    Path work = Files.createTempDirectory("retroinfer-explain");
    try {
      Path dir = work.resolve("context");
      ExplainReport r;
      try (ContextStore store = remote.fetch(id, options.tenant, model, dir)
          ? ContextStore.openReadOnly(dir) : null) {
        ContextStore.Scope scope = store == null ? null
            : store.scope(model, options.tenant, StoreOptions.config().kvType());
        if (scope == null || scope.info(id).isEmpty()) {
          // the same answer for a context that does not exist and one of another tenant or model
          throw new IllegalArgumentException("no context " + id + " of this model, K/V type and"
              + " tenant in " + remote + " (it was never stored, was deleted, or belongs to"
              + " another model or tenant, which is never served); 'retroinfer store list --store "
              + remote + "' shows yours");
        }
        r = Explainer.explain(m.model(), scope, id, position, token);
      }
      return new Explained(r, html == null ? null
          : StoreInspector.inspect(dir, false, options.tenant, model).at(remote + " context " + id));
    } catch (StoreDamagedException e) {
      throw e.fetchedFrom(remote.toString(), id, !options.tenant.isEmpty(), false);
    } finally {
      RemoteContextStore.deleteTree(work);
    }
  }
}
