package org.retroinfer.app.cli;

import org.retroinfer.app.ModelFingerprints;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextPack;
import org.retroinfer.store.ModelFingerprint;
import org.retroinfer.store.PrefixHasher;
import org.retroinfer.store.RemoteContextStore;
import org.retroinfer.store.StoreDamagedException;
import org.retroinfer.store.inspect.HtmlReport;
import org.retroinfer.store.inspect.InspectReport;
import org.retroinfer.store.inspect.StoreInspector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code retroinfer inspect DIR}: what a store holds for one tenant, and whether the store is
 * intact. A damaged store ends in {@link StoreDamagedException} (after the report, when one could
 * be made).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
    description = {"Inspect a context store: this --tenant's contexts and their clusters per field"
        + " (size histogram); the store's Lucene segments, bytes per file and integrity check.",
        "Exit codes: 0 intact, 1 an error the message explains, 2 invalid arguments, 4 the store is"
            + " damaged."})
public final class InspectCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Parameters(paramLabel = "DIR|URL", description = "The store directory, or a remote store"
      + " http://HOST:PORT/INDEX (each of the tenant's contexts is fetched and inspected as the"
      + " store of its own it travels as; --html reports them together).") String location;
  private Path dir;
  @Option(names = "--tenant", paramLabel = "SALT", defaultValue = "",
      description = "Whose contexts to show (default: the default tenant's, stored without a"
          + " salt). Segments, files and the integrity check are the whole store's.")
  String tenant;
  @Option(names = "--model", paramLabel = "DIR", description = "Only this checkpoint's contexts"
      + " (default: every model's).") Path model;
  @Option(names = "--json", description = "Print JSON.") boolean json;
  @Option(names = "--html", paramLabel = "FILE", description = "Also write a self-contained HTML"
      + " report with plots.") Path html;
  @Option(names = "--no-check", description = "Skip the integrity check (reads every byte).")
  boolean noCheck;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    ModelFingerprint fingerprint = model == null ? null
        : ModelFingerprints.of(ModelDirectory.of(model));
    if (RemoteContextStore.isRemote(location)) {
      return inspectRemote(out, fingerprint);
    }
    dir = Path.of(location);
    InspectReport r;
    try {
      r = StoreInspector.inspect(dir, !noCheck, tenant, fingerprint);
    } catch (StoreDamagedException e) {
      // The store cannot even be read: CheckIndex still says what it finds, file by file.
      if (!noCheck && Files.isDirectory(dir.resolve("index"))) {
        try {
          InspectReport.Integrity integrity = StoreInspector.check(dir);
          out.println(json ? StoreOptions.json().writeValueAsString(integrity)
              : "integrity: " + integrity.summary());
          out.flush();
        } catch (IOException | RuntimeException checkFailed) {
          e.addSuppressed(checkFailed); // the damage found first is the one reported
        }
      }
      throw e;
    }
    if (json) {
      out.println(StoreOptions.json().writeValueAsString(r));
    } else {
      print(out, r);
    }
    if (html != null) {
      Files.writeString(html, HtmlReport.render(r, null));
      if (!json) {
        out.println("report written to " + html);
      }
    }
    out.flush();
    if (!r.integrity().clean()) {
      throw new StoreDamagedException(dir, null, null, "CheckIndex found damage: "
          + r.integrity().summary(), null);
    }
    return 0;
  }

  /**
   * A remote store: each of this tenant's contexts (of --model, if given) is fetched and inspected
   * as the store of one context it travels as; one report per context (--json: an array). The
   * HTML report is the whole store's: the reports combined, as a local store's report sums its
   * segments. Damage names the remote store's contexts (the fetched copies are removed).
   */
  private int inspectRemote(PrintWriter out, ModelFingerprint fingerprint) throws Exception {
    RemoteContextStore remote = RemoteContextStore.of(location);
    Path work = Files.createTempDirectory("retroinfer-inspect");
    Map<String, InspectReport> reports = new LinkedHashMap<>();
    try {
      for (ContextInfo c : remote.list(tenant, fingerprint)) {
        Path d = work.resolve("context-" + reports.size());
        if (!remote.fetch(c.id(), tenant, new ModelFingerprint(c.model()), d)) {
          continue; // deleted since the listing
        }
        InspectReport r;
        try {
          r = StoreInspector.inspect(d, !noCheck, tenant, fingerprint)
              .at(remote + " context " + c.id());
        } catch (StoreDamagedException e) {
          // the copy is removed below: the message names the remote store's context
          throw e.fetchedFrom(remote.toString(), c.id(), !tenant.isEmpty(), true);
        }
        reports.put(c.id(), r);
        if (!json) {
          out.println("context " + c.id() + " of " + remote + ", as sent:");
          print(out, r);
        }
      }
    } finally {
      RemoteContextStore.deleteTree(work);
    }
    InspectReport whole = InspectReport.combined(remote.toString(),
        PrefixHasher.DEFAULT_CHUNK_TOKENS, reports);
    if (json) {
      out.println(StoreOptions.json().writeValueAsString(List.copyOf(reports.values())));
    } else {
      out.println(reports.size() + " contexts of " + (tenant.isEmpty() ? "the default tenant"
          : "this tenant") + " in " + remote);
    }
    if (html != null) {
      Files.writeString(html, HtmlReport.render(whole, null));
      if (!json) {
        out.println("report written to " + html);
      }
    }
    out.flush();
    if (!whole.integrity().clean()) {
      Map<String, String> damaged = new LinkedHashMap<>(); // context -> what CheckIndex found
      reports.forEach((id, r) -> {
        if (!r.integrity().clean()) {
          damaged.put(id, r.integrity().summary());
        }
      });
      String what = damaged.size() == 1 ? damaged.values().iterator().next()
          : String.join("; ", damaged.entrySet().stream()
              .map(d -> d.getKey() + ": " + d.getValue()).toList());
      throw new StoreDamagedException(work, null, null, "CheckIndex found damage: " + what, null)
          .fetchedFrom(remote.toString(), String.join(", ", damaged.keySet()), !tenant.isEmpty(),
              true);
    }
    return 0;
  }

  private static void print(PrintWriter out, InspectReport r) {
    out.printf("store %s: %d contexts, %d Lucene segments, %,d bytes, chunks of %d tokens%n",
        r.directory(), r.contexts().size(), r.segments().size(), r.totalBytes(), r.chunkTokens());
    for (ContextInfo c : r.contexts()) {
      out.printf("  context %s  %-8s %7d tokens  model %s  %s%n", c.id(), c.kind(), c.tokens(),
          c.model().substring(0, 12), c.name());
    }
    for (InspectReport.Segment s : r.segments()) {
      out.printf("  segment %-8s %7d docs %5d deleted %,12d bytes  %s%n", s.name(), s.documents(),
          s.deleted(), s.bytes(), s.codec());
    }
    for (InspectReport.FieldClusters f : r.fields()) {
      out.printf("  field %-10s %6d clusters over %7d tokens (%5d steady)  sizes", f.field(),
          f.clusters(), f.clusteredTokens(), f.steadyTokens());
      for (int b = 0; b < f.sizeHistogram().length; b++) {
        if (f.sizeHistogram()[b] > 0) {
          out.printf(" %d+:%d", StoreInspector.binStart(b), f.sizeHistogram()[b]);
        }
      }
      out.println();
    }
    for (InspectReport.FileBytes f : r.files()) {
      out.printf("  file %-28s %,12d bytes%n", f.name(), f.bytes());
    }
    out.println("integrity: " + r.integrity().summary());
  }
}
