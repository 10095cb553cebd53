package org.retroinfer.app.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.inspect.ExplainReport;
import org.retroinfer.app.inspect.Explainer;
import org.retroinfer.store.inspect.HtmlReport;
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
        + " attention mass each zone captured.")
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
      + " report with plots.") Path html;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    ExplainReport r;
    ModelFingerprint model;
    try (StoreOptions.Loaded m = options.loadModel();
        ContextStore store = ContextStore.openReadOnly(options.storeDirectory())) {
      model = m.fingerprint();
      ContextStore.Scope scope = store.scope(model, options.tenant,
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
      Files.writeString(html, HtmlReport.render(StoreInspector.inspect(options.storeDirectory(),
          false, options.tenant, model), r));
      if (!options.json) {
        out.println("report written to " + html);
      }
    }
    out.flush();
    return 0;
  }
}
