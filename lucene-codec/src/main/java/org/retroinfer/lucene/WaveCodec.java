package org.retroinfer.lucene;

import java.util.function.Predicate;
import org.apache.lucene.codecs.FilterCodec;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.codecs.lucene103.Lucene103Codec;
import org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat;
import org.apache.lucene.codecs.perfield.PerFieldKnnVectorsFormat;

/**
 * Lucene's default codec with the K/V fields of contexts routed to {@link WaveVectorsFormat}:
 * fields for which the routing predicate holds (by default the key and value fields named by
 * {@link ContextFields}) are stored by the wave format, every other vector field by Lucene's HNSW
 * format, and everything else (postings, doc values, stored fields, ...) by {@link Lucene103Codec}.
 *
 * <p>Registered through SPI as {@value #NAME}: an index written with any instance reopens with
 * {@code Codec.forName(NAME)}, in a new JVM, with nothing but this jar (and its dependencies) on
 * the class path. The per-field format names are recorded in the index, so reading never depends on
 * the routing predicate or the settings.
 */
public final class WaveCodec extends FilterCodec {
  /** The SPI name of this codec. */
  public static final String NAME = "RetroInferWave103";

  private final KnnVectorsFormat vectors;

  /** The codec with the default routing ({@link ContextFields#isKvField}) and format settings. */
  public WaveCodec() {
    this(new WaveVectorsFormat(), ContextFields::isKvField);
  }

  /**
   * @param wave the wave format (and its settings) for the routed fields
   * @param routeToWave which vector fields the wave format stores
   */
  public WaveCodec(WaveVectorsFormat wave, Predicate<String> routeToWave) {
    super(NAME, new Lucene103Codec());
    KnnVectorsFormat hnsw = new Lucene99HnswVectorsFormat();
    this.vectors = new PerFieldKnnVectorsFormat() {
      @Override
      public KnnVectorsFormat getKnnVectorsFormatForField(String field) {
        return routeToWave.test(field) ? wave : hnsw;
      }

      @Override
      public int getMaxDimensions(String fieldName) {
        return getKnnVectorsFormatForField(fieldName).getMaxDimensions(fieldName);
      }
    };
  }

  @Override
  public KnnVectorsFormat knnVectorsFormat() {
    return vectors;
  }
}
