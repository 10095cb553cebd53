package org.retroinfer.store.inspect;

import java.util.Locale;
import org.retroinfer.store.ContextInfo;

/**
 * A self-contained HTML page for people: tables and inline SVG plots (cluster-size histogram,
 * attention mass captured vs retrieval budget, mass per zone). No scripts, no fonts, no network:
 * the file opens anywhere, offline.
 */
public final class HtmlReport {
  private HtmlReport() {}

  /** The page for an inspection and, if not null, an explanation. */
  public static String render(InspectReport inspect, ExplainReport explain) {
    StringBuilder h = new StringBuilder();
    h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .append("<title>retroinfer store report</title><style>")
        .append("body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}")
        .append("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;")
        .append("padding:.2em .6em;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}")
        .append("svg text{font-size:11px;font-family:sans-serif}</style></head><body>\n");
    if (inspect != null) {
      inspectSection(h, inspect);
    }
    if (explain != null) {
      explainSection(h, explain);
    }
    return h.append("</body></html>\n").toString();
  }

  private static void inspectSection(StringBuilder h, InspectReport r) {
    h.append("<h1>Context store ").append(esc(r.directory())).append("</h1>\n<p>")
        .append(r.contexts().size()).append(" contexts, ").append(r.segments().size())
        .append(" Lucene segments, ").append(String.format(Locale.ROOT, "%,d", r.totalBytes()))
        .append(" bytes, prefix chunks of ").append(r.chunkTokens()).append(" tokens. Integrity: ")
        .append(esc(r.integrity().summary())).append("</p>\n");
    h.append("<h2>Contexts</h2><table><tr><th class=l>id</th><th class=l>name</th><th class=l>kind"
        + "</th><th>tokens</th><th class=l>model</th><th class=l>tenant</th><th class=l>created</th></tr>\n");
    for (ContextInfo c : r.contexts()) {
      h.append("<tr><td class=l>").append(esc(c.id())).append("</td><td class=l>").append(esc(c.name()))
          .append("</td><td class=l>").append(esc(c.kind())).append("</td><td>").append(c.tokens())
          .append("</td><td class=l>").append(esc(c.model().substring(0, 12))).append("</td><td class=l>")
          .append(esc(c.tenant().isEmpty() ? "-" : c.tenant())).append("</td><td class=l>")
          .append(c.created()).append("</td></tr>\n");
    }
    h.append("</table>\n<h2>Cluster sizes (all key fields)</h2>\n");
    String[] labels = new String[StoreInspector.BINS];
    double[] values = new double[StoreInspector.BINS];
    for (int b = 0; b < StoreInspector.BINS; b++) {
      int lo = StoreInspector.binStart(b);
      labels[b] = b == StoreInspector.BINS - 1 ? lo + "+" : lo == 2 * lo - 1 ? "" + lo
          : lo + "-" + (2 * lo - 1);
      values[b] = r.clusterSizeHistogram()[b];
    }
    bars(h, labels, values, "clusters", "tokens per cluster");
    h.append("<h2>Key fields</h2><table><tr><th class=l>field</th><th>clusters</th>"
        + "<th>clustered tokens</th><th>steady tokens</th><th>mean cluster size</th></tr>\n");
    for (InspectReport.FieldClusters f : r.fields()) {
      h.append("<tr><td class=l>").append(esc(f.field())).append("</td><td>").append(f.clusters())
          .append("</td><td>").append(f.clusteredTokens()).append("</td><td>").append(f.steadyTokens())
          .append("</td><td>").append(String.format(Locale.ROOT, "%.1f",
              f.clusters() == 0 ? 0.0 : (double) f.clusteredTokens() / f.clusters()))
          .append("</td></tr>\n");
    }
    h.append("</table>\n<h2>Lucene segments</h2><table><tr><th class=l>segment</th><th>documents"
        + "</th><th>deleted</th><th>bytes</th><th class=l>codec</th></tr>\n");
    for (InspectReport.Segment s : r.segments()) {
      h.append("<tr><td class=l>").append(esc(s.name())).append("</td><td>").append(s.documents())
          .append("</td><td>").append(s.deleted()).append("</td><td>").append(s.bytes())
          .append("</td><td class=l>").append(esc(s.codec())).append("</td></tr>\n");
    }
    h.append("</table>\n<h2>Files</h2><table><tr><th class=l>file</th><th>bytes</th></tr>\n");
    for (InspectReport.FileBytes f : r.files()) {
      h.append("<tr><td class=l>").append(esc(f.name())).append("</td><td>").append(f.bytes())
          .append("</td></tr>\n");
    }
    h.append("</table>\n");
  }

  private static void explainSection(StringBuilder h, ExplainReport e) {
    h.append("<h1>Explain: context ").append(esc(e.context())).append(", query at position ")
        .append(e.position()).append(" (token ").append(e.token()).append(")</h1>\n");
    h.append(String.format(Locale.ROOT, "<p>Mean share of the true attention mass: steady zone"
        + " %.3f, retrieval zone %.3f, estimation zone %.3f, skipped %.3f. Mean relative error of"
        + " wave attention's output vs full attention: %.4f.</p>%n", e.meanSteady(),
        e.meanRetrieved(), e.meanEstimated(), e.meanSkipped(), e.meanOutputError()));
    h.append("<h2>Attention mass captured vs retrieval budget</h2>\n");
    curve(h, e.budgets(), e.meanRankedMass(), e.meanOracleMass());
    h.append("<h2>Per layer and KV head</h2><table><tr><th>layer</th><th>head</th><th>clusters</th>"
        + "<th>retrieved</th><th>estimated</th><th>exact tokens (budget)</th>"
        + "<th>exact mass (true)</th><th>exact mass (planned)</th>"
        + "<th>steady mass</th><th>retrieved mass</th>"
        + "<th>estimated mass (true)</th><th>estimate</th><th>skipped mass</th><th>output error</th>"
        + "</tr>\n");
    for (ExplainReport.Head x : e.heads()) {
      h.append(String.format(Locale.ROOT, "<tr><td>%d</td><td>%d</td><td>%d</td><td>%d</td>"
          + "<td>%d</td><td>%d</td><td>%.3f</td><td>%s</td>"
          + "<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
          + "<td>%.4f</td></tr>%n", x.layer(), x.kvHead(), x.clusters(), x.retrievedCount(),
          x.estimatedCount(), x.exactTokens(), x.steadyMass() + x.retrievedMass(),
          Double.isNaN(x.plannedExactShare()) ? "-"
              : String.format(Locale.ROOT, "%.3f", x.plannedExactShare()),
          x.steadyMass(), x.retrievedMass(), x.estimatedMass(),
          x.estimateMass(), x.skippedMass(), x.outputError()));
    }
    h.append("</table>\n");
  }

  /** A bar chart. */
  static void bars(StringBuilder h, String[] labels, double[] values, String yLabel, String xLabel) {
    int w = 640;
    int ht = 240;
    int left = 50;
    int bottom = 40;
    double max = 1;
    for (double v : values) {
      max = Math.max(max, v);
    }
    double bw = (double) (w - left - 10) / values.length;
    h.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(w).append("\" height=\"")
        .append(ht).append("\" role=\"img\">");
    h.append(line(left, ht - bottom, w - 10, ht - bottom)).append(line(left, 10, left, ht - bottom));
    for (int i = 0; i < values.length; i++) {
      double bh = (ht - bottom - 10) * values[i] / max;
      double x = left + i * bw + 2;
      h.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
          + " fill=\"#4a78b5\"><title>%s: %.0f</title></rect>", x, ht - bottom - bh, bw - 4, bh,
          esc(labels[i]), values[i]));
      h.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
          x + (bw - 4) / 2, ht - bottom + 14, esc(labels[i])));
    }
    h.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" text-anchor=\"end\">%.0f</text>",
        left - 4, max));
    h.append("<text x=\"").append(left - 4).append("\" y=\"").append(ht - bottom)
        .append("\" text-anchor=\"end\">0</text>");
    h.append("<text x=\"").append(w / 2).append("\" y=\"").append(ht - 8)
        .append("\" text-anchor=\"middle\">").append(esc(xLabel)).append("</text>");
    h.append("<text x=\"12\" y=\"").append((ht - bottom) / 2)
        .append("\" transform=\"rotate(-90 12 ").append((ht - bottom) / 2).append(")\">")
        .append(esc(yLabel)).append("</text></svg>\n");
  }

  /** Mass captured (y, 0..1) vs budget (x, log scale): the ranking and the true top clusters. */
  static void curve(StringBuilder h, double[] budgets, double[] ranked, double[] oracle) {
    int w = 640;
    int ht = 260;
    int left = 50;
    int bottom = 40;
    double lx0 = Math.log(budgets[0]);
    double lx1 = Math.log(budgets[budgets.length - 1]);
    h.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(w).append("\" height=\"")
        .append(ht).append("\" role=\"img\">");
    h.append(line(left, ht - bottom, w - 20, ht - bottom)).append(line(left, 10, left, ht - bottom));
    for (int t = 0; t <= 4; t++) {
      double y = ht - bottom - (ht - bottom - 10) * t / 4.0;
      h.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>",
          left - 4, y + 4, t / 4.0));
    }
    String[] colors = {"#4a78b5", "#c0504d"};
    double[][] series = {ranked, oracle};
    for (int s = 0; s < 2; s++) {
      StringBuilder pts = new StringBuilder();
      for (int i = 0; i < budgets.length; i++) {
        double x = left + (w - 20 - left) * (Math.log(budgets[i]) - lx0) / (lx1 - lx0);
        double y = ht - bottom - (ht - bottom - 10) * Math.max(0, Math.min(1, series[s][i]));
        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
        h.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
            + "<title>%.1f%%: %.3f</title></circle>", x, y, colors[s], budgets[i] * 100,
            series[s][i]));
        if (s == 0) {
          h.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
              + "%.1f%%</text>", x, ht - bottom + 14, budgets[i] * 100));
        }
      }
      h.append("<polyline fill=\"none\" stroke=\"").append(colors[s]).append("\" points=\"")
          .append(pts.toString().strip()).append("\"/>");
    }
    h.append("<text x=\"").append(left + 10).append("\" y=\"24\" fill=\"").append(colors[0])
        .append("\">wave ranking (steady + top clusters by centroid)</text>");
    h.append("<text x=\"").append(left + 10).append("\" y=\"40\" fill=\"").append(colors[1])
        .append("\">oracle (steady + true top clusters)</text>");
    h.append("<text x=\"").append(w / 2).append("\" y=\"").append(ht - 8)
        .append("\" text-anchor=\"middle\">retrieval budget (share of clusters, log scale)</text>");
    h.append("</svg>\n");
  }

  private static String line(int x1, int y1, int x2, int y2) {
    return "<line x1=\"" + x1 + "\" y1=\"" + y1 + "\" x2=\"" + x2 + "\" y2=\"" + y2
        + "\" stroke=\"#555\"/>";
  }

  static String esc(String s) {
    return s == null ? "" : s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\"", "&quot;");
  }
}
