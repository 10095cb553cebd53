package org.retroinfer.store.inspect;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.retroinfer.store.ContextInfo;

/**
 * What {@link StoreInspector} found in a store directory; serialises to JSON as it is.
 *
 * @param directory the store
 * @param chunkTokens tokens per prefix-key chunk
 * @param contexts every stored context
 * @param segments the Lucene segments of the last commit
 * @param fields per key field (layer, KV head): clusters and their size histogram
 * @param clusterSizeHistogram all fields together: bin {@code b} counts clusters of
 *     {@code [2^b, 2^(b+1))} tokens (the last bin: all larger)
 * @param files every index file and its bytes
 * @param totalBytes bytes of all index files
 * @param integrity the CheckIndex result
 */
public record InspectReport(String directory, int chunkTokens, List<ContextInfo> contexts,
    List<Segment> segments, List<FieldClusters> fields, long[] clusterSizeHistogram,
    List<FileBytes> files, long totalBytes, Integrity integrity) {

  /** The same report under another name (where the store is, for people). */
  public InspectReport at(String location) {
    return new InspectReport(location, chunkTokens, contexts, segments, fields,
        clusterSizeHistogram, files, totalBytes, integrity);
  }

  /**
   * One report for a store whose contexts were inspected one store each (a remote store's
   * contexts, each as the one-context store it travels as), keyed by a label that prefixes its
   * segments and files: the contexts one after another; each key field's clusters, tokens and
   * size histogram summed over the parts, as an inspection sums them over a store's segments; the
   * integrity clean when every part's is.
   */
  public static InspectReport combined(String location, int chunkTokens,
      Map<String, InspectReport> parts) {
    List<ContextInfo> contexts = new ArrayList<>();
    List<Segment> segments = new ArrayList<>();
    List<FileBytes> files = new ArrayList<>();
    Map<String, long[]> perField = new TreeMap<>(); // field -> [clusters, tokens, steady, hist...]
    long[] all = null;
    long total = 0;
    boolean checked = true;
    List<String> damaged = new ArrayList<>();
    for (Map.Entry<String, InspectReport> e : parts.entrySet()) {
      InspectReport r = e.getValue();
      String label = e.getKey() + "/";
      contexts.addAll(r.contexts());
      for (Segment s : r.segments()) {
        segments.add(new Segment(label + s.name(), s.documents(), s.deleted(), s.bytes(),
            s.codec()));
      }
      for (FileBytes f : r.files()) {
        files.add(new FileBytes(label + f.name(), f.bytes()));
      }
      total += r.totalBytes();
      for (FieldClusters f : r.fields()) {
        long[] acc = perField.computeIfAbsent(f.field(),
            k -> new long[3 + f.sizeHistogram().length]);
        acc[0] += f.clusters();
        acc[1] += f.clusteredTokens();
        acc[2] += f.steadyTokens();
        for (int b = 0; b < f.sizeHistogram().length; b++) {
          acc[3 + b] += f.sizeHistogram()[b];
        }
      }
      if (all == null) {
        all = r.clusterSizeHistogram().clone();
      } else {
        for (int b = 0; b < all.length; b++) {
          all[b] += r.clusterSizeHistogram()[b];
        }
      }
      checked &= r.integrity().checked();
      if (!r.integrity().clean()) {
        damaged.add(e.getKey() + ": " + r.integrity().summary());
      }
    }
    List<FieldClusters> fields = new ArrayList<>();
    perField.forEach((name, acc) -> fields.add(new FieldClusters(name, acc[0], acc[1], acc[2],
        java.util.Arrays.copyOfRange(acc, 3, acc.length))));
    Integrity integrity = parts.isEmpty() ? new Integrity(false, true, "no contexts to check")
        : !damaged.isEmpty()
        ? new Integrity(checked, false, "NOT clean: " + String.join("; ", damaged))
        : !checked ? new Integrity(false, true, "not checked")
        : new Integrity(true, true, "clean: " + parts.size() + " contexts, " + segments.size()
            + " segments, every checksum verified");
    return new InspectReport(location, chunkTokens, contexts, segments, fields,
        all != null ? all : new long[StoreInspector.BINS], files, total, integrity);
  }

  /** One Lucene segment. */
  public record Segment(String name, int documents, int deleted, long bytes, String codec) {}

  /**
   * One key field's clusters over all segments: {@code clusters} clusters holding
   * {@code clusteredTokens} tokens, {@code steadyTokens} tokens stored unclustered (sinks, tails).
   */
  public record FieldClusters(String field, long clusters, long clusteredTokens, long steadyTokens,
      long[] sizeHistogram) {}

  public record FileBytes(String name, long bytes) {}

  /** Whether CheckIndex ran, whether the index is clean, and what it said. */
  public record Integrity(boolean checked, boolean clean, String summary) {}
}
