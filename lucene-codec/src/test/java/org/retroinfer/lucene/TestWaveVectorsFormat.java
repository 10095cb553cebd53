package org.retroinfer.lucene;

import org.apache.lucene.codecs.Codec;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.tests.index.BaseKnnVectorsFormatTestCase;
import org.apache.lucene.tests.util.TestUtil;
import org.retroinfer.wave.kv.KvDType;

/**
 * Lucene's own conformance suite for vector formats, run against {@link WaveVectorsFormat} with
 * small wave segments and clusters, so that the small random indexes of the suite still have
 * several wave segments and many clusters per segment, and searches probe only some of them.
 */
public class TestWaveVectorsFormat extends BaseKnnVectorsFormatTestCase {
  private final WaveVectorsFormat format = new WaveVectorsFormat(new WaveVectorsFormat.Settings(
      32 + random().nextInt(64), 1 + random().nextInt(6), random().nextInt(4), KvDType.FLOAT32,
      0.1, 2));

  @Override
  protected Codec getCodec() {
    return TestUtil.alwaysKnnVectorsFormat(format);
  }

  @Override
  protected boolean mergeIsStable() {
    // The kNN base suppresses this test because HNSW graphs change when merged; this format keeps
    // its clusters through merges, so merging an index again must give the same bytes.
    return true;
  }

  @Override
  protected VectorEncoding randomVectorEncoding() {
    // Byte vectors are delegated to Lucene's HNSW format, which its own suite tests; keep the
    // random tests on the vectors this format stores.
    return VectorEncoding.FLOAT32;
  }
}
