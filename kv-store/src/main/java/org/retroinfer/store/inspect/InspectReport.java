package org.retroinfer.store.inspect;

import java.util.List;
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
