package org.retroinfer.store.inspect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.store.ContextStore;
import org.retroinfer.store.StoreDamagedException;
import org.retroinfer.store.Synthetic;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

class StoreInspectorTest {
  @TempDir Path dir;

  @Test
  void countsEveryClusterOfEveryFieldAndDetectsDamage() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int[] lengths = {300, 420};
    long[] expectClusters = new long[Synthetic.SHAPE.layers() * Synthetic.SHAPE.kvHeads()];
    long[] histogram = new long[StoreInspector.BINS];
    try (ContextStore store = ContextStore.open(dir, Synthetic.CHUNK)) {
      ContextStore.Scope scope = store.scope(Synthetic.fingerprint(r), "", KvDType.BFLOAT16);
      for (int n : lengths) {
        try (ContextCache c = Synthetic.cache(Synthetic.kv(r, n), n)) {
          scope.put("", "prompt", Synthetic.tokens(r, n), c, null, null);
          for (int l = 0; l < Synthetic.SHAPE.layers(); l++) {
            for (int h = 0; h < Synthetic.SHAPE.kvHeads(); h++) {
              var index = ((WaveHeadCache) c.head(l, h)).index();
              expectClusters[l * Synthetic.SHAPE.kvHeads() + h] += index.clusterCount();
              for (int k = 0; k < index.clusterCount(); k++) {
                int size = index.clusterSize(k);
                int b = 0;
                while (b + 1 < StoreInspector.BINS && size >= 2 << b) {
                  b++;
                }
                histogram[b]++;
              }
            }
          }
        }
      }
      // Another tenant's context: never in this tenant's report, its clusters not counted.
      ContextStore.Scope other = store.scope(Synthetic.fingerprint(r), "other-tenant",
          KvDType.BFLOAT16);
      try (ContextCache c = Synthetic.cache(Synthetic.kv(r, 250), 250)) {
        other.put("", "prompt", Synthetic.tokens(r, 250), c, null, null);
        long otherClusters = ((WaveHeadCache) c.head(0, 0)).index().clusterCount();
        InspectReport theirs = StoreInspector.inspect(dir, false, "other-tenant", null);
        assertEquals(1, theirs.contexts().size());
        assertEquals(250, theirs.contexts().get(0).tokens());
        assertEquals(otherClusters, theirs.fields().get(0).clusters());
        assertEquals(250, theirs.fields().get(0).clusteredTokens()
            + theirs.fields().get(0).steadyTokens());
      }
    }
    InspectReport report = StoreInspector.inspect(dir, true, "", null);
    assertEquals(2, report.contexts().size());
    assertTrue(report.integrity().clean(), report.integrity().summary());
    assertEquals(expectClusters.length, report.fields().size());
    for (InspectReport.FieldClusters f : report.fields()) {
      String[] p = f.field().substring("kv.k.".length()).split("\\.");
      int i = Integer.parseInt(p[0]) * Synthetic.SHAPE.kvHeads() + Integer.parseInt(p[1]);
      assertEquals(expectClusters[i], f.clusters(), f.field() + ", seed " + seed);
      assertEquals(Arrays.stream(lengths).sum(), f.clusteredTokens() + f.steadyTokens());
      assertTrue(f.field().equals(ContextFields.keyField(Integer.parseInt(p[0]),
          Integer.parseInt(p[1]))));
    }
    assertEquals(Arrays.toString(histogram), Arrays.toString(report.clusterSizeHistogram()));
    assertEquals(report.files().stream().mapToLong(InspectReport.FileBytes::bytes).sum(),
        report.totalBytes());
    String html = HtmlReport.render(report, null);
    assertTrue(html.contains("<svg"), "the histogram is an inline SVG");
    assertFalse(html.contains("<script"), "no scripts in the report");
    assertFalse(html.matches("(?s).*(src|href)=\"https?:.*"), "no external resources");

    // Damage the largest file of the index: the check must say so.
    Path largest;
    try (var files = Files.list(dir.resolve("index"))) {
      largest = files.filter(f -> !f.getFileName().toString().endsWith(".lock"))
          .max(Comparator.comparingLong(f -> f.toFile().length())).orElseThrow();
    }
    try (RandomAccessFile f = new RandomAccessFile(largest.toFile(), "rw")) {
      long at = f.length() / 2;
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 0x5a);
    }
    try {
      InspectReport damaged = StoreInspector.inspect(dir, true, "", null);
      assertFalse(damaged.integrity().clean(), "flipped a byte in " + largest.getFileName());
      assertTrue(damaged.integrity().summary().contains("segment _"),
          damaged.integrity().summary());
    } catch (StoreDamagedException e) {
      // the flip hit a part verified when the store opens: reported before the check ran
      assertTrue(e.getMessage().startsWith("the store is damaged: "), e.getMessage());
    }
  }

  /**
   * A remote store's report is its contexts' one-context stores combined: the same contexts,
   * clusters and cluster sizes as one store that holds them all.
   */
  @Test
  void combinedOneContextStoresReportWhatOneStoreOfThemAllReports() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    var model = Synthetic.fingerprint(r);
    int[] lengths = {280, 390, 333};
    java.util.Map<String, InspectReport> parts = new java.util.LinkedHashMap<>();
    Path whole = dir.resolve("whole");
    try (ContextStore all = ContextStore.open(whole, Synthetic.CHUNK)) {
      for (int i = 0; i < lengths.length; i++) {
        int n = lengths[i];
        int[] tokens = Synthetic.tokens(r, n);
        float[][][] kv = Synthetic.kv(r, n);
        Path one = dir.resolve("one-" + i);
        String id;
        try (ContextStore store = ContextStore.open(one, Synthetic.CHUNK);
            ContextCache c = Synthetic.cache(kv, n)) {
          id = store.scope(model, "acme", KvDType.BFLOAT16).put("", "prompt", tokens, c, null,
              null).id();
        }
        try (ContextCache c = Synthetic.cache(kv, n)) {
          all.scope(model, "acme", KvDType.BFLOAT16).put("", "prompt", tokens, c, null, null);
        }
        parts.put(id, StoreInspector.inspect(one, true, "acme", null));
      }
    }
    InspectReport expected = StoreInspector.inspect(whole, true, "acme", null);
    InspectReport combined = InspectReport.combined("http://127.0.0.1:9200/contexts",
        Synthetic.CHUNK, parts);
    assertEquals("http://127.0.0.1:9200/contexts", combined.directory());
    assertEquals(expected.contexts().stream().map(c -> c.id()).sorted().toList(),
        combined.contexts().stream().map(c -> c.id()).sorted().toList());
    assertEquals(expected.fields().size(), combined.fields().size());
    for (int f = 0; f < expected.fields().size(); f++) {
      InspectReport.FieldClusters a = expected.fields().get(f);
      InspectReport.FieldClusters b = combined.fields().get(f);
      assertEquals(a.field(), b.field());
      assertEquals(a.clusters(), b.clusters(), a.field() + ", seed " + seed);
      assertEquals(a.clusteredTokens(), b.clusteredTokens(), a.field() + ", seed " + seed);
      assertEquals(a.steadyTokens(), b.steadyTokens(), a.field() + ", seed " + seed);
      assertEquals(Arrays.toString(a.sizeHistogram()), Arrays.toString(b.sizeHistogram()));
    }
    assertEquals(Arrays.toString(expected.clusterSizeHistogram()),
        Arrays.toString(combined.clusterSizeHistogram()), "seed " + seed);
    assertEquals(parts.values().stream().mapToLong(InspectReport::totalBytes).sum(),
        combined.totalBytes());
    assertEquals(combined.files().stream().mapToLong(InspectReport.FileBytes::bytes).sum(),
        combined.totalBytes());
    assertTrue(combined.integrity().checked() && combined.integrity().clean(),
        combined.integrity().summary());
    // file and segment names carry their context: none collide
    assertEquals(combined.files().size(), combined.files().stream()
        .map(InspectReport.FileBytes::name).distinct().count());
    // one damaged part makes the whole not clean, and names it
    String first = parts.keySet().iterator().next();
    InspectReport bad = parts.get(first);
    parts.put(first, new InspectReport(bad.directory(), bad.chunkTokens(), bad.contexts(),
        bad.segments(), bad.fields(), bad.clusterSizeHistogram(), bad.files(), bad.totalBytes(),
        new InspectReport.Integrity(true, false, "NOT clean (1 documents would be lost): x")));
    InspectReport damaged = InspectReport.combined("remote", Synthetic.CHUNK, parts);
    assertFalse(damaged.integrity().clean());
    assertTrue(damaged.integrity().summary().contains(first), damaged.integrity().summary());
    // no contexts: an empty report
    InspectReport none = InspectReport.combined("remote", Synthetic.CHUNK, java.util.Map.of());
    assertEquals(0, none.contexts().size());
    assertEquals(StoreInspector.BINS, none.clusterSizeHistogram().length);
  }
}
