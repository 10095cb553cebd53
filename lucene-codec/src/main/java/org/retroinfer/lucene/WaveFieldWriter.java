package org.retroinfer.lucene;

import java.util.Arrays;
import org.apache.lucene.codecs.KnnFieldVectorsWriter;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.util.RamUsageEstimator;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Buffers the vectors of one float field until flush, off-heap in the field's storage type.
 *
 * <p>Every vector is validated before anything is stored (dimension, finite components, range of
 * the storage type), so a rejected vector leaves no trace; Lucene then marks the document deleted
 * and the writer stays usable. When a key or value of a document is rejected after its partner
 * field was already buffered for the same document, the partner's row is taken back too, so that
 * keys and values stay paired.
 */
final class WaveFieldWriter extends KnnFieldVectorsWriter<float[]> {
  private static final long SHALLOW = RamUsageEstimator.shallowSizeOfInstance(WaveFieldWriter.class);

  final FieldInfo info;
  final FieldParams params;
  /** The dimension stored: the field's, less the trailing assignment components. */
  final int dim;
  /** Trailing assignment components of every vector (the {@code assigned} layout), else 0. */
  final int trailing;
  final VectorStore store;
  int[] docs = new int[64];
  /** Per buffered vector, its tag and cluster id ({@code assigned} layout only). */
  long[] tags;
  int[] clusterIds;
  int count;
  /** The paired key or value field of the same segment, if its writer exists. */
  WaveFieldWriter partner;

  WaveFieldWriter(FieldInfo info, FieldParams params) {
    this.info = info;
    this.params = params;
    this.trailing = params.layout() == WaveVectorsFormat.Layout.ASSIGNED
        ? AssignedLayout.TRAILING : 0;
    this.dim = Math.max(1, info.getVectorDimension() - trailing);
    this.store = VectorStore.allocate(dim, params.storage(), 64);
    if (trailing > 0) {
      tags = new long[64];
      clusterIds = new int[64];
    }
  }

  @Override
  public void addValue(int docID, float[] vector) {
    try {
      if (count > 0 && docs[count - 1] >= docID) {
        dropIfLast(docID); // Lucene deletes the document: leave none of its vectors behind
        throw new IllegalArgumentException("VectorValuesField \"" + info.name + "\" appears more"
            + " than once in this document (only one value is allowed per field)");
      }
      validate(docID, vector);
    } catch (IllegalArgumentException e) {
      if (partner != null) {
        partner.dropIfLast(docID);
      }
      throw e;
    }
    store.append(vector, 0);
    if (count == docs.length) {
      docs = Arrays.copyOf(docs, count * 2);
      if (trailing > 0) {
        tags = Arrays.copyOf(tags, count * 2);
        clusterIds = Arrays.copyOf(clusterIds, count * 2);
      }
    }
    if (trailing > 0) {
      tags[count] = AssignedLayout.tag(vector, dim);
      clusterIds[count] = AssignedLayout.cluster(vector, dim);
    }
    docs[count++] = docID;
  }

  private void validate(int docID, float[] vector) {
    if (params.error() != null) {
      throw new IllegalArgumentException(params.error());
    }
    if (vector.length != dim + trailing) {
      throw new IllegalArgumentException("field '" + info.name + "', doc " + docID + ": vector of "
          + vector.length + " components, expected the field's dimension " + (dim + trailing));
    }
    if (trailing > 0) {
      String bad = AssignedLayout.checkTrailing(vector, dim);
      if (bad != null) {
        throw new IllegalArgumentException("field '" + info.name + "', doc " + docID + ": " + bad);
      }
    }
    KvDType type = params.storage();
    for (int i = 0; i < dim; i++) {
      float f = vector[i];
      if (!Float.isFinite(f)) {
        throw new IllegalArgumentException("field '" + info.name + "', doc " + docID + ": component "
            + i + " is " + f + "; vectors must have finite components");
      }
      if (type == KvDType.FLOAT16 && Float.isInfinite(type.round(f))) {
        throw new IllegalArgumentException("field '" + info.name + "', doc " + docID + ": component "
            + i + " = " + f + " overflows float16 (largest 65504); store this field as BFLOAT16"
            + " or FLOAT32");
      }
    }
  }

  private void dropIfLast(int docID) {
    if (count > 0 && docs[count - 1] == docID) {
      count--;
      store.removeLast();
    }
  }

  int[] docs() {
    return Arrays.copyOf(docs, count);
  }

  long[] tags() {
    return Arrays.copyOf(tags, count);
  }

  int[] clusterIds() {
    return Arrays.copyOf(clusterIds, count);
  }

  @Override
  public float[] copyValue(float[] vectorValue) {
    return vectorValue.clone();
  }

  @Override
  public long ramBytesUsed() {
    return SHALLOW + RamUsageEstimator.sizeOf(docs) + store.capacityBytes()
        + (trailing > 0 ? RamUsageEstimator.sizeOf(tags) + RamUsageEstimator.sizeOf(clusterIds) : 0);
  }

  void close() {
    store.close();
  }
}
