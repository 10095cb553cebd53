package org.retroinfer.opensearch;

import java.util.Set;
import org.apache.lucene.codecs.Codec;
import org.apache.lucene.codecs.FilterCodec;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.codecs.lucene103.Lucene103Codec;
import org.apache.lucene.codecs.perfield.PerFieldKnnVectorsFormat;
import org.opensearch.index.codec.CodecAliases;
import org.retroinfer.lucene.ContextFields;
import org.retroinfer.lucene.WaveCodec;
import org.retroinfer.lucene.WaveVectorsFormat;

/**
 * The server's default codec (stored-field compression, postings formats per mapping) with the K/V
 * fields of contexts ({@link ContextFields#isKvField}) stored by {@link WaveVectorsFormat}; every
 * other vector field keeps the format the server would give it. An index chooses it with
 * {@code "index.codec": "retroinfer_wave"} ({@link #ALIAS}).
 *
 * <p>How it is wired: the server accepts an {@code index.codec} value that is a Lucene SPI codec
 * name or an alias one declares ({@link CodecAliases}), and builds the codec an index writes with
 * from its own map, which {@link RetroInferPlugin#getAdditionalCodecs} extends with the alias
 * (SPI names are already in that map, so the alias is the key). Segments record the SPI name
 * {@value #NAME}; the no-argument constructor (SPI, in the plugin's class loader) reads them back,
 * on any node, after a restart or a recovery: per-field formats are recorded by name in each
 * segment, so reading never depends on the routing or the server's default. lucene-codec's
 * {@link WaveCodec} (SPI name {@value WaveCodec#NAME}) also works as an {@code index.codec}, with
 * Lucene's defaults for everything else.
 */
public final class ServerWaveCodec extends FilterCodec implements CodecAliases {
  /** The SPI name segments record. */
  public static final String NAME = "RetroInferWaveOS103";
  /** The {@code index.codec} value of an index whose K/V fields use the wave format. */
  public static final String ALIAS = "retroinfer_wave";

  private final KnnVectorsFormat vectors;

  /** For Lucene's SPI: reads segments (the delegate formats are found by their recorded names). */
  public ServerWaveCodec() {
    this(new Lucene103Codec());
  }

  ServerWaveCodec(Codec serverDefault) {
    super(NAME, serverDefault);
    KnnVectorsFormat wave = new WaveVectorsFormat();
    KnnVectorsFormat other = serverDefault.knnVectorsFormat();
    this.vectors = new PerFieldKnnVectorsFormat() {
      @Override
      public KnnVectorsFormat getKnnVectorsFormatForField(String field) {
        if (ContextFields.isKvField(field)) {
          return wave;
        }
        // the server's own choice per field (a per-field format must not nest another)
        return other instanceof PerFieldKnnVectorsFormat perField
            ? perField.getKnnVectorsFormatForField(field) : other;
      }

      @Override
      public int getMaxDimensions(String field) {
        return getKnnVectorsFormatForField(field).getMaxDimensions(field);
      }
    };
  }

  @Override
  public Set<String> aliases() {
    return Set.of(ALIAS);
  }

  @Override
  public KnnVectorsFormat knnVectorsFormat() {
    return vectors;
  }
}
