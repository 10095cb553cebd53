package org.retroinfer.lucene;

import java.util.ArrayList;
import java.util.List;
import org.retroinfer.lucene.WaveVectorsFormat.Layout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Builds the wave segments of freshly indexed vectors with wave-core, exactly as
 * wave-core's wave cache clusters the same tokens: {@link SegmentedKMeans} per
 * wave segment, centred on the field's key centre when it has one, {@link WaveConfig#segmentLengths}
 * and {@link WaveConfig#clustersFor} for the sizes.
 */
final class WaveClustering {
  private WaveClustering() {}

  /**
   * The wave segments of rows {@code [0, n)} of {@code keys} (and {@code values}, null if unpaired),
   * in doc order; {@code docs[i]} is the doc id of row {@code i}, ascending.
   */
  static List<SegmentBlock> build(VectorStore keys, VectorStore values, int[] docs,
      FieldParams params) {
    int n = docs.length;
    List<SegmentBlock> blocks = new ArrayList<>();
    if (n == 0) {
      return blocks;
    }
    WaveConfig config = params.waveConfig();
    int[] lengths = params.layout() == Layout.SPLIT ? config.segmentLengths(n) : new int[] {n};
    int from = 0;
    for (int len : lengths) {
      blocks.add(params.layout() == Layout.STEADY
          ? steady(keys, values, docs, from, from + len)
          : clustered(keys, values, docs, from, from + len, config, params.centre()));
      from += len;
    }
    return blocks;
  }

  private static SegmentBlock clustered(VectorStore keys, VectorStore values, int[] docs, int from,
      int to, WaveConfig config, float[] centre) {
    int len = to - from;
    ClusteredSegment seg = SegmentedKMeans.cluster(keys, values == null ? keys : values, from, to,
        0, config.clustersFor(len), config.kmeansIterations(), centre);
    int[] order = seg.order();
    int[] rowDocs = new int[len];
    VectorStore k = VectorStore.allocate(keys.dim(), keys.type(), len);
    VectorStore v = values == null ? null : VectorStore.allocate(values.dim(), values.type(), len);
    for (int m = 0; m < len; m++) {
      int row = from + order[m];
      rowDocs[m] = docs[row];
      k.appendFrom(keys, row, row + 1);
      if (v != null) {
        v.appendFrom(values, row, row + 1);
      }
    }
    return new SegmentBlock(SegmentBlock.CLUSTERED, seg.offsets(), rowDocs, seg.centroids(),
        values == null ? null : seg.valueSums(), k, v);
  }

  private static SegmentBlock steady(VectorStore keys, VectorStore values, int[] docs, int from,
      int to) {
    int len = to - from;
    VectorStore k = VectorStore.allocate(keys.dim(), keys.type(), len);
    k.appendFrom(keys, from, to);
    VectorStore v = null;
    if (values != null) {
      v = VectorStore.allocate(values.dim(), values.type(), len);
      v.appendFrom(values, from, to);
    }
    int[] rows = new int[len];
    for (int i = 0; i < len; i++) {
      rows[i] = i;
    }
    float[] centroid = Summaries.mean(k, rows, 0, len);
    float[] valueSum = v == null ? null : Summaries.sum(v, rows, 0, len);
    return new SegmentBlock(SegmentBlock.STEADY, new int[] {0, len},
        java.util.Arrays.copyOfRange(docs, from, to), centroid, valueSum, k, v);
  }
}
