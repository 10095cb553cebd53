package org.retroinfer.store.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.inspect.HtmlReport;
import org.retroinfer.store.inspect.InspectReport;
import org.retroinfer.store.inspect.StoreInspector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code retroinfer inspect DIR}: what a store holds, and whether it is intact. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
    description = "Inspect a context store: contexts, Lucene segments, clusters per field and their"
        + " size histogram, bytes per file, integrity check.")
public final class InspectCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @Parameters(paramLabel = "DIR", description = "The store directory.") Path dir;
  @Option(names = "--json", description = "Print JSON.") boolean json;
  @Option(names = "--html", paramLabel = "FILE", description = "Also write a self-contained HTML"
      + " report with plots.") Path html;
  @Option(names = "--no-check", description = "Skip the integrity check (reads every byte).")
  boolean noCheck;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    InspectReport r = StoreInspector.inspect(dir, !noCheck);
    if (json) {
      out.println(StoreOptions.json().writeValueAsString(r));
    } else {
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
    if (html != null) {
      Files.writeString(html, HtmlReport.render(r, null));
      if (!json) {
        out.println("report written to " + html);
      }
    }
    out.flush();
    return r.integrity().clean() ? 0 : 1;
  }
}
