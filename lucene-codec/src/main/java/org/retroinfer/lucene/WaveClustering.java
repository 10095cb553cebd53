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

  /**
   * The wave segments of rows {@code [0, n)} in the {@code assigned} layout: each run of
   * consecutive rows with the same tag (and all steady, or all not) is one wave segment; its
   * clusters are its distinct cluster ids, ascending, each holding its rows in row (doc) order.
   * Nothing is clustered.
   */
  static List<SegmentBlock> assigned(VectorStore keys, VectorStore values, int[] docs, long[] tags,
      int[] clusterIds) {
    int n = docs.length;
    List<SegmentBlock> blocks = new ArrayList<>();
    try {
      int from = 0;
      while (from < n) {
        boolean steady = clusterIds[from] == AssignedLayout.STEADY;
        int to = from + 1;
        while (to < n && tags[to] == tags[from]
            && (clusterIds[to] == AssignedLayout.STEADY) == steady) {
          to++;
        }
        blocks.add(steady
            ? withTag(steady(keys, values, docs, from, to), tags[from])
            : grouped(keys, values, docs, clusterIds, from, to, tags[from]));
        from = to;
      }
      return blocks;
    } catch (RuntimeException e) {
      for (SegmentBlock b : blocks) {
        b.close();
      }
      throw e;
    }
  }

  private static SegmentBlock withTag(SegmentBlock b, long tag) {
    return new SegmentBlock(b.kind(), b.offsets(), b.rowDocs(), b.centroids(), b.valueSums(),
        b.keys(), b.values(), tag);
  }

  /** Rows {@code [from, to)} grouped by cluster id (ascending), rows in order within a cluster. */
  private static SegmentBlock grouped(VectorStore keys, VectorStore values, int[] docs,
      int[] clusterIds, int from, int to, long tag) {
    int len = to - from;
    long[] order = new long[len]; // cluster id, then row: a stable sort by cluster id
    for (int i = 0; i < len; i++) {
      order[i] = ((long) clusterIds[from + i] << 32) | i;
    }
    java.util.Arrays.sort(order);
    List<Integer> offsets = new ArrayList<>();
    int[] rowDocs = new int[len];
    VectorStore k = VectorStore.allocate(keys.dim(), keys.type(), len);
    VectorStore v = values == null ? null : VectorStore.allocate(values.dim(), values.type(), len);
    try {
      int prevId = Integer.MIN_VALUE;
      for (int m = 0; m < len; m++) {
        int id = (int) (order[m] >>> 32);
        int row = from + (int) order[m];
        if (id != prevId) {
          offsets.add(m);
          prevId = id;
        }
        rowDocs[m] = docs[row];
        k.appendFrom(keys, row, row + 1);
        if (v != null) {
          v.appendFrom(values, row, row + 1);
        }
      }
      offsets.add(len);
      int[] off = offsets.stream().mapToInt(Integer::intValue).toArray();
      int clusters = off.length - 1;
      int d = keys.dim();
      float[] centroids = new float[clusters * d];
      float[] valueSums = v == null ? null : new float[clusters * d];
      for (int c = 0; c < clusters; c++) {
        System.arraycopy(Summaries.mean(k, off[c], off[c + 1]), 0, centroids, c * d, d);
        if (v != null) {
          System.arraycopy(Summaries.sum(v, off[c], off[c + 1]), 0, valueSums, c * d, d);
        }
      }
      return new SegmentBlock(SegmentBlock.CLUSTERED, off, rowDocs, centroids, valueSums, k, v,
          tag);
    } catch (RuntimeException e) {
      k.close();
      if (v != null) {
        v.close();
      }
      throw e;
    }
  }
}
