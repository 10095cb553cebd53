package org.retroinfer.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.KnnVectorsWriter.MergedVectorValues;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FloatVectorValues;
import org.apache.lucene.index.KnnVectorValues;
import org.apache.lucene.index.MergeState;
import org.apache.lucene.search.DocIdSetIterator;
import org.retroinfer.lucene.WaveVectorsFormat.Layout;
import org.retroinfer.lucene.WaveVectorsReader.FieldRef;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Merges one float field (with its paired value field) without re-clustering: every wave segment
 * of every merged segment is carried over, its doc ids remapped, deleted documents dropped from
 * the postings; a cluster that lost members gets its centroid recomputed as the mean of the
 * survivors and its value sum as their sum; empty clusters and empty wave segments disappear.
 * Vectors from segments of another format are the only ones clustered here.
 */
final class WaveMerger {
  private WaveMerger() {}

  static void mergeField(FieldInfo field, MergeState state, WaveVectorsWriter writer,
      Set<String> done) throws IOException {
    if (done.contains(field.name)) {
      return;
    }
    FieldInfo key = field;
    FieldInfo value = null;
    FieldInfo partner = partner(field, state);
    if (partner != null) {
      boolean fieldIsKey = WaveVectorsWriter.isPair(field, partner);
      key = fieldIsKey ? field : partner;
      value = fieldIsKey ? partner : field;
      if (!canPair(key, value, state)) {
        key = field;
        value = null;
      }
    }
    done.add(key.name);
    if (value != null) {
      done.add(value.name);
    }
    merge(key, value, state, writer);
  }

  /** The merged field info of the paired key or value field of {@code field}, if both exist. */
  private static FieldInfo partner(FieldInfo field, MergeState state) {
    for (String attr : new String[] {WaveVectorsFormat.ATTR_VALUES, WaveVectorsFormat.ATTR_KEYS}) {
      String name = field.getAttribute(attr);
      if (name == null) {
        continue;
      }
      FieldInfo other = state.mergeFieldInfos.fieldInfo(name);
      if (other != null && other.hasVectorValues()
          && (WaveVectorsWriter.isPair(field, other) || WaveVectorsWriter.isPair(other, field))) {
        return other;
      }
    }
    return null;
  }

  /** Keys and values can be stored paired iff every merged segment has them for the same docs. */
  private static boolean canPair(FieldInfo key, FieldInfo value, MergeState state)
      throws IOException {
    for (int i = 0; i < state.knnVectorsReaders.length; i++) {
      boolean hasKeys = MergedVectorValues.hasVectorValues(state.fieldInfos[i], key.name);
      boolean hasValues = MergedVectorValues.hasVectorValues(state.fieldInfos[i], value.name);
      if (!hasKeys && !hasValues) {
        continue;
      }
      if (hasKeys != hasValues) {
        return false;
      }
      KnnVectorsReader reader = state.knnVectorsReaders[i];
      WaveVectorsReader wave = WaveVectorsReader.of(reader, key.name);
      FieldRef ref = wave == null ? null : wave.fieldRef(key.name);
      if (ref != null) {
        if (ref.values() || !value.name.equals(ref.field().valueField())) {
          return false;
        }
      } else if (!sameDocs(reader.getFloatVectorValues(key.name),
          reader.getFloatVectorValues(value.name))) {
        return false;
      }
    }
    return true;
  }

  private static boolean sameDocs(FloatVectorValues a, FloatVectorValues b) throws IOException {
    if (a == null || b == null || a.size() != b.size()) {
      return a == null && b == null;
    }
    KnnVectorValues.DocIndexIterator ia = a.iterator();
    KnnVectorValues.DocIndexIterator ib = b.iterator();
    for (int d = ia.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = ia.nextDoc()) {
      if (ib.nextDoc() != d) {
        return false;
      }
    }
    return ib.nextDoc() == DocIdSetIterator.NO_MORE_DOCS;
  }

  private static void merge(FieldInfo key, FieldInfo value, MergeState state,
      WaveVectorsWriter writer) throws IOException {
    FieldParams params = FieldParams.of(key, writer.settings());
    boolean assigned = params.layout() == Layout.ASSIGNED && params.error() == null;
    int dim = key.getVectorDimension() - (assigned ? AssignedLayout.TRAILING : 0);
    KvDType storage = storageOf(key, state, params.storage());
    try (WaveVectorsWriter.EntryWriter entry = writer.beginEntry(key, value, dim, storage)) {
      for (int i = 0; i < state.knnVectorsReaders.length; i++) {
        if (!MergedVectorValues.hasVectorValues(state.fieldInfos[i], key.name)) {
          continue;
        }
        KnnVectorsReader reader = state.knnVectorsReaders[i];
        MergeState.DocMap docMap = state.docMaps[i];
        WaveVectorsReader wave = WaveVectorsReader.of(reader, key.name);
        FieldRef ref = wave == null ? null : wave.fieldRef(key.name);
        if (ref != null) {
          WaveField src = ref.field();
          for (int s = 0; s < src.segmentCount(); s++) {
            SegmentBlock b = remap(src, s, ref.values(), value != null, docMap, storage);
            if (b != null) {
              try (b) {
                entry.add(b);
              }
            }
          }
        } else {
          for (SegmentBlock b : clusterForeign(reader, key, value, docMap, storage, params,
              dim)) {
            try (b) {
              entry.add(b);
            }
          }
        }
      }
    }
  }

  /** Keep the storage type on disk when every wave source agrees; else the field's own. */
  private static KvDType storageOf(FieldInfo key, MergeState state, KvDType fallback) {
    KvDType found = null;
    for (int i = 0; i < state.knnVectorsReaders.length; i++) {
      if (!MergedVectorValues.hasVectorValues(state.fieldInfos[i], key.name)) {
        continue;
      }
      WaveVectorsReader wave = WaveVectorsReader.of(state.knnVectorsReaders[i], key.name);
      FieldRef ref = wave == null ? null : wave.fieldRef(key.name);
      if (ref == null) {
        return fallback;
      }
      KvDType t = ref.field().storage();
      if (found != null && found != t) {
        return fallback;
      }
      found = t;
    }
    return found == null ? fallback : found;
  }

  /**
   * Wave segment {@code s} of {@code src} with its doc ids remapped; null if nothing survives.
   * {@code asValues}: the merged field is the paired value field of {@code src} (its clusters are
   * the keys', so its centroids are recomputed from the values).
   */
  private static SegmentBlock remap(WaveField src, int s, boolean asValues, boolean withValues,
      MergeState.DocMap docMap, KvDType storage) throws IOException {
    int c0 = src.segmentFirstCluster(s);
    int c1 = src.segmentFirstCluster(s + 1);
    int r0 = src.segmentFirstRow(s);
    int rows = src.segmentRows(s);
    int dim = src.dimension();
    List<Integer> offsets = new ArrayList<>();
    offsets.add(0);
    int[] rowDocs = new int[rows];
    int kept = 0;
    float[] centroids = new float[(c1 - c0) * dim];
    float[] valueSums = withValues ? new float[(c1 - c0) * dim] : null;
    float[] srcValueSums = withValues ? src.valueSums(s) : null;
    int liveClusters = 0;
    try (VectorStore inKeys = asValues ? src.values(s) : src.keys(s);
        VectorStore inValues = withValues ? src.values(s) : null) {
      VectorStore outKeys = VectorStore.allocate(dim, storage, Math.max(1, rows));
      VectorStore outValues = withValues ? VectorStore.allocate(dim, storage, Math.max(1, rows)) : null;
      boolean success = false;
      try {
        long[] members = new long[0];
        for (int c = c0; c < c1; c++) {
          int size = src.clusterSize(c);
          if (members.length < size) {
            members = new long[size];
          }
          int n = 0;
          for (int r = src.clusterStart(c); r < src.clusterStart(c + 1); r++) {
            int newDoc = docMap.get(src.rowDoc(r));
            if (newDoc >= 0) {
              members[n++] = ((long) newDoc << 32) | (r - r0); // sort by new doc id
            }
          }
          if (n == 0) {
            continue;
          }
          Arrays.sort(members, 0, n);
          int first = kept;
          for (int m = 0; m < n; m++) {
            int localRow = (int) members[m];
            rowDocs[kept++] = (int) (members[m] >>> 32);
            copyRow(inKeys, localRow, outKeys);
            if (withValues) {
              copyRow(inValues, localRow, outValues);
            }
          }
          offsets.add(kept);
          boolean changed = n < size || storage != src.storage();
          int at = liveClusters * dim;
          if (changed || asValues) {
            System.arraycopy(Summaries.mean(outKeys, first, kept), 0, centroids, at, dim);
          } else {
            System.arraycopy(src.centroid(c), 0, centroids, at, dim);
          }
          if (withValues) {
            if (changed) {
              System.arraycopy(Summaries.sum(outValues, first, kept), 0, valueSums, at, dim);
            } else {
              System.arraycopy(srcValueSums, (c - c0) * dim, valueSums, at, dim);
            }
          }
          liveClusters++;
        }
        if (kept == 0) {
          return null;
        }
        int[] off = offsets.stream().mapToInt(Integer::intValue).toArray();
        SegmentBlock b = new SegmentBlock(src.steady(s) ? SegmentBlock.STEADY : SegmentBlock.CLUSTERED,
            off, Arrays.copyOf(rowDocs, kept), Arrays.copyOf(centroids, liveClusters * dim),
            withValues ? Arrays.copyOf(valueSums, liveClusters * dim) : null, outKeys, outValues,
            src.tag(s));
        success = true;
        return b;
      } finally {
        if (!success) {
          outKeys.close();
          if (outValues != null) {
            outValues.close();
          }
        }
      }
    }
  }

  private static void copyRow(VectorStore src, int row, VectorStore dst) {
    if (src.type() == dst.type()) {
      dst.appendFrom(src, row, row + 1);
    } else {
      dst.append(src.row(row), 0);
    }
  }

  /** Vectors of a segment written by another format: clustered here, as new wave segments. */
  private static List<SegmentBlock> clusterForeign(KnnVectorsReader reader, FieldInfo key,
      FieldInfo value, MergeState.DocMap docMap, KvDType storage, FieldParams params, int dim)
      throws IOException {
    FloatVectorValues keys = reader.getFloatVectorValues(key.name);
    FloatVectorValues values = value == null ? null : reader.getFloatVectorValues(value.name);
    if (keys == null || keys.size() == 0) {
      return List.of();
    }
    List<long[]> live = new ArrayList<>(); // {new doc, key ord, value ord}
    KnnVectorValues.DocIndexIterator it = keys.iterator();
    KnnVectorValues.DocIndexIterator vit = values == null ? null : values.iterator();
    for (int doc = it.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = it.nextDoc()) {
      int valueOrd = -1;
      if (vit != null) {
        vit.advance(doc); // same docs, checked by canPair
        valueOrd = vit.index();
      }
      int newDoc = docMap.get(doc);
      if (newDoc >= 0) {
        live.add(new long[] {newDoc, it.index(), valueOrd});
      }
    }
    live.sort((a, b) -> Long.compare(a[0], b[0]));
    int n = live.size();
    int[] docs = new int[n];
    boolean assigned = dim < key.getVectorDimension();
    long[] tags = assigned ? new long[n] : null;
    int[] clusterIds = assigned ? new int[n] : null;
    try (VectorStore k = VectorStore.allocate(dim, storage, Math.max(1, n));
        VectorStore v = values == null ? null : VectorStore.allocate(dim, storage, Math.max(1, n))) {
      for (int i = 0; i < n; i++) {
        long[] e = live.get(i);
        docs[i] = (int) e[0];
        float[] row = keys.vectorValue((int) e[1]);
        k.append(row, 0);
        if (assigned) {
          if (AssignedLayout.checkTrailing(row, dim) != null) {
            throw new IllegalStateException("field '" + key.name + "': "
                + AssignedLayout.checkTrailing(row, dim));
          }
          tags[i] = AssignedLayout.tag(row, dim);
          clusterIds[i] = AssignedLayout.cluster(row, dim);
        }
        if (v != null) {
          v.append(values.vectorValue((int) e[2]), 0);
        }
      }
      if (assigned) {
        return WaveClustering.assigned(k, v, docs, tags, clusterIds);
      }
      FieldParams split = new FieldParams(Layout.SPLIT, params.segmentTokens(),
          params.tokensPerCluster(), params.iterations(), storage, params.centre(), null);
      return WaveClustering.build(k, v, docs, split);
    }
  }
}
