package org.retroinfer.lucene;

import java.io.IOException;
import java.util.Locale;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.KnnVectorsWriter;
import org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat;
import org.apache.lucene.index.SegmentReadState;
import org.apache.lucene.index.SegmentWriteState;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.index.ClusterSpreads;
import org.retroinfer.wave.kv.KvDType;

/**
 * Float vectors stored with the wave index of wave-core: per field, the vectors of a Lucene segment
 * are split into <em>wave segments</em>, each clustered by segmented spherical k-means
 * ({@link org.retroinfer.wave.index.SegmentedKMeans}); per cluster the format keeps the centroid
 * (the plain mean of the member vectors), the cluster size, the sum of the paired values and the
 * postings (member documents, a RoaringBitmap); vectors are stored cluster-contiguous, so one
 * cluster is one sequential read. {@code KnnFloatVectorQuery} is answered by an IVF search: the
 * centroids are scored with the field's similarity, the best clusters are probed and their members
 * scored exactly.
 *
 * <h2>Keys, values and the KV cache</h2>
 *
 * The format is built for the KV cache of a language model, one document per token, with per
 * (layer, KV head) a key field and a value field (see {@link ContextFields}). A key field names its
 * value field in the field attribute {@link #ATTR_VALUES} (and the value field names the key field
 * in {@link #ATTR_KEYS}). When, in a Lucene segment, both fields hold vectors for exactly the same
 * documents, they are stored <em>paired</em>: the values follow the clusters of the keys (same row
 * order) and every cluster carries its value sum, which is what the estimation zone of wave
 * attention needs. Otherwise each field is stored on its own, clustered by its own vectors. Any other
 * float vector field is simply stored on its own. Byte vector fields are delegated to
 * {@link Lucene99HnswVectorsFormat} (its files are written beside ours only when such a field
 * exists).
 *
 * <h2>How Lucene segments map onto wave segments</h2>
 *
 * At flush, the field attribute {@link #ATTR_LAYOUT} of the first document of the flush decides:
 *
 * <ul>
 *   <li>{@code split} (the default): the field's documents, in doc id order, are cut into
 *       {@code max(1, round(n / segmentTokens))} consecutive wave segments of near-equal length,
 *       each clustered with {@code round(length / tokensPerCluster)} clusters: the rule of
 *       {@link WaveConfig#segmentLengths} and {@link WaveConfig#clustersFor};
 *   <li>{@code segment}: all documents of the flush form one wave segment (clustered as above).
 *       {@link ContextWriter} flushes once per wave segment of an in-memory wave index, so the
 *       clusters on disk are exactly the ones wave-core built for the same tokens, bit for bit;
 *   <li>{@code steady}: all documents of the flush form one unclustered wave segment: a single
 *       cluster holding them in doc order. Used for the steady zone of a context (attention sinks
 *       and the local window), which wave attention reads exactly and never ranks.
 *   <li>{@code assigned}: every vector arrives with the wave segment and cluster its writer gave it,
 *       and nothing is clustered here. The field's dimension is the head dim plus
 *       {@value AssignedLayout#TRAILING}: after the head dim's components come the wave segment's
 *       <em>tag</em> (48 bits, as two exact float integers of 24 bits each, high then low) and the
 *       cluster id (an exact float integer; {@value AssignedLayout#STEADY} for a steady row). In doc
 *       id order, each run of consecutive vectors with the same tag (and all steady or all not)
 *       becomes one wave segment; its clusters are its distinct cluster ids in ascending order, each
 *       holding its vectors in doc order, with the centroid and value sum computed from them as
 *       wave-core computes them (float64 in row order, rounded once), so a writer that adds a wave
 *       segment's tokens as adjacent documents in position order (e.g. one block of
 *       {@code IndexWriter.addDocuments}, or one nested document of a search server) gets its own
 *       clusters back bit for bit, however the index flushes. Only the head dim's components are
 *       stored; a reader gives the trailing components back (the cluster ids renumbered densely in
 *       ascending order), and a search ignores a query's trailing components. See
 *       {@link AssignedLayout}.
 * </ul>
 *
 * Clustering parameters come from the field attributes {@link #ATTR_SEGMENT_TOKENS},
 * {@link #ATTR_TOKENS_PER_CLUSTER}, {@link #ATTR_ITERATIONS}, {@link #ATTR_STORAGE} and
 * {@link #ATTR_CENTRE} (the key centre; without it a wave segment is centred on its own mean) when present,
 * else from this format's {@link Settings}. A merge never re-clusters a wave segment: it keeps the
 * clusters of every merged segment, remaps doc ids, drops deleted documents from the postings,
 * and recomputes the centroid (mean of the surviving members) and value sum of a cluster that lost
 * members; clusters that lose every member disappear. Only vectors coming from a segment written
 * by another format are clustered at merge (as new {@code split} wave segments).
 *
 * <h2>Files</h2>
 *
 * Every file starts with {@code CodecUtil.writeIndexHeader} (codec name, version
 * {@link #VERSION_CURRENT}, segment id, segment suffix) and ends with {@code CodecUtil.writeFooter}
 * (a CRC32 of the whole file). All numbers are little-endian, as Lucene's {@code DataOutput}
 * writes them.
 *
 * <h3>Meta ({@code .wvm}, codec {@value #META_CODEC})</h3>
 *
 * Read completely and checksum-verified when the segment is opened.
 *
 * <ul>
 *   <li>per stored field entry: {@code int} field number (a terminating {@code -1} ends the list),
 *       {@code int} number of the paired value field or {@code -1}, {@code int} dimension (as
 *       stored), since version {@value #VERSION_ASSIGNED} {@code byte} trailing components (0, or
 *       {@value AssignedLayout#TRAILING} for the {@code assigned} layout: the field's dimension is
 *       the stored one plus these), {@code byte} storage type (0 float32, 1 float16, 2 bfloat16),
 *       {@code int} vector count, {@code int} wave segment count, then per wave segment:
 *       <ul>
 *         <li>{@code byte} kind (0 clustered, 1 steady), {@code int} vectors, {@code int} clusters;
 *         <li>{@code long} offset and {@code long} length of its cluster block in {@code .wvc};
 *         <li>{@code long} offset of its key block in {@code .wvd}, {@code int} CRC32 of the key
 *             block; {@code long} offset of its value block and {@code int} its CRC32 (both
 *             {@code -1}/0 when unpaired);
 *         <li>since version {@value #VERSION_ASSIGNED}: {@code long} tag ({@code -1} unless the
 *             field has trailing components).
 *       </ul>
 *   <li>after the terminating {@code -1}: {@code byte} 1 if the byte vector delegate's files
 *       exist, else 0.
 * </ul>
 *
 * <h3>Clusters ({@code .wvc}, codec {@value #CLUSTERS_CODEC})</h3>
 *
 * Checksum-verified completely when the segment is opened. Per wave segment, one block:
 *
 * <ul>
 *   <li>{@code int[clusters + 1]} row offsets: cluster {@code c} is rows
 *       {@code [offsets[c], offsets[c + 1])} of the wave segment, {@code offsets[0] = 0}, every
 *       cluster non-empty;
 *   <li>{@code float[clusters * dim]} centroids (float32, the mean of the stored member vectors);
 *   <li>{@code float[clusters * dim]} value sums (float32, only when paired);
 *   <li>since version {@value #VERSION_SPREADS}: {@code float[clusters]} spreads (each cluster's
 *       mean squared distance of its stored keys to its centroid) and {@code double[dim]} deviation
 *       sums (per dimension, the squared deviations of the segment's keys from their centroids),
 *       wave-core's {@link ClusterSpreads} computed from the rows as stored, so that a context opens
 *       without reading its keys; a version {@value #VERSION_START} segment has none, and a reader
 *       computes them from the keys;
 *   <li>per cluster: {@code vint} byte length, then the cluster's postings as a RoaringBitmap in the
 *       portable serialization format. Row {@code offsets[c] + i} is the {@code i}-th smallest doc
 *       id of cluster {@code c}.
 * </ul>
 *
 * <h3>Data ({@code .wvd}, codec {@value #DATA_CODEC})</h3>
 *
 * Per wave segment: the key block (rows in cluster-contiguous order, {@code dim} elements each of
 * the storage type), then, when paired, the value block in the same row order. Every block starts
 * at a multiple of 64 bytes (zero padding). Each block's CRC32 (in the meta file) is verified the
 * first time any of its rows is read, so a damaged block is reported as a
 * {@link org.apache.lucene.index.CorruptIndexException} and never served; the footer's checksum
 * covers the whole file and is verified by {@code checkIntegrity()} (and so before every merge).
 * The footer is checked when the segment is opened, and every block must lie inside the file, so
 * a truncated file is caught at once.
 *
 * <h2>Searching</h2>
 *
 * A kNN search scores every centroid of the field with the field's similarity, then probes the
 * best clusters in descending centroid score and scores their live members exactly. It probes
 * {@link WaveSearchStrategy#probeCount(int)} clusters (by default {@link Settings#probeFraction} of
 * the clusters, at least {@link Settings#minProbes}), and keeps probing until at least {@code 2k}
 * accepted documents were scored (the top k of barely k candidates is a poor estimate). Pass a {@link WaveSearchStrategy} to {@code KnnFloatVectorQuery} to choose the
 * probe count per query. The visit limit of the collector is honoured exactly (Lucene then falls
 * back to an exact search).
 */
public final class WaveVectorsFormat extends KnnVectorsFormat {
  /** The SPI name of this format. */
  public static final String NAME = "RetroInferWave";

  public static final String META_EXTENSION = "wvm";
  public static final String CLUSTERS_EXTENSION = "wvc";
  public static final String DATA_EXTENSION = "wvd";
  public static final String META_CODEC = "RetroInferWaveMeta";
  public static final String CLUSTERS_CODEC = "RetroInferWaveClusters";
  public static final String DATA_CODEC = "RetroInferWaveData";
  public static final int VERSION_START = 0;
  /** Cluster blocks carry the keys' spread statistics ({@link ClusterSpreads}). */
  public static final int VERSION_SPREADS = 1;
  /**
   * Field entries say how many trailing assignment components their vectors carry (the
   * {@code assigned} layout) and every wave segment its tag.
   */
  public static final int VERSION_ASSIGNED = 2;
  public static final int VERSION_CURRENT = VERSION_ASSIGNED;

  /** Largest vector dimension accepted. */
  public static final int MAX_DIMENSIONS = 4096;

  /**
   * Field attribute: how a flush maps onto wave segments: "split", "segment", "steady" or
   * "assigned".
   */
  public static final String ATTR_LAYOUT = "retroinfer.wave.layout";
  /** Field attribute of a key field: the name of its value field. */
  public static final String ATTR_VALUES = "retroinfer.wave.values";
  /** Field attribute of a value field: the name of its key field. */
  public static final String ATTR_KEYS = "retroinfer.wave.keys";
  /** Field attribute: the storage type, a {@link KvDType} name. */
  public static final String ATTR_STORAGE = "retroinfer.wave.storage";
  /** Field attribute: target vectors per wave segment for the "split" layout. */
  public static final String ATTR_SEGMENT_TOKENS = "retroinfer.wave.segmentTokens";
  /** Field attribute: average cluster size. */
  public static final String ATTR_TOKENS_PER_CLUSTER = "retroinfer.wave.tokensPerCluster";
  /** Field attribute: k-means iterations. */
  public static final String ATTR_ITERATIONS = "retroinfer.wave.iterations";
  /**
   * Field attribute of a key field: the mean key to centre keys on before clustering (the head's
   * {@link org.retroinfer.wave.index.WaveIndex#keyCentre()}), as comma-separated hexadecimal float
   * bits; absent: each wave segment is centred on its own mean.
   */
  public static final String ATTR_CENTRE = "retroinfer.wave.centre";

  /** How the documents of one flush become wave segments; see the class javadoc. */
  public enum Layout {
    SPLIT, SEGMENT, STEADY, ASSIGNED;

    /** The attribute value. */
    public String attribute() {
      return name().toLowerCase(Locale.ROOT);
    }

    static Layout parse(String field, String value) {
      if (value == null) {
        return SPLIT;
      }
      for (Layout l : values()) {
        if (l.attribute().equals(value)) {
          return l;
        }
      }
      throw new IllegalArgumentException("field '" + field + "': attribute " + ATTR_LAYOUT + "='"
          + value + "' is not one of split, segment, steady, assigned");
    }
  }

  /**
   * Defaults of a format instance; field attributes override the clustering parameters per field.
   *
   * @param segmentTokens target vectors per wave segment ("split" layout)
   * @param tokensPerCluster average cluster size
   * @param kmeansIterations spherical k-means iterations
   * @param storage storage type of the vectors (FLOAT32 is lossless; 16-bit types round)
   * @param probeFraction share of a field's clusters that a search probes by default
   * @param minProbes least clusters a search probes by default
   */
  public record Settings(int segmentTokens, int tokensPerCluster, int kmeansIterations,
      KvDType storage, double probeFraction, int minProbes) {
    public Settings {
      if (tokensPerCluster < 1 || segmentTokens < tokensPerCluster) {
        throw new IllegalArgumentException("need 1 <= tokensPerCluster <= segmentTokens, got "
            + tokensPerCluster + " and " + segmentTokens);
      }
      if (kmeansIterations < 0) {
        throw new IllegalArgumentException("kmeansIterations must be >= 0, got " + kmeansIterations);
      }
      if (storage == null) {
        throw new IllegalArgumentException("storage type must not be null");
      }
      if (!(probeFraction >= 0 && probeFraction <= 1) || minProbes < 1) {
        throw new IllegalArgumentException("need probeFraction in [0, 1] and minProbes >= 1, got "
            + probeFraction + " and " + minProbes);
      }
    }

    /**
     * The defaults: wave-core's segment length, cluster size and iterations, float32 storage (so a
     * plain vector field reads back exactly what was indexed), 5% of the clusters probed, at least
     * 8. With 16 vectors per cluster, probing about 1/16 of the clusters scores about as many
     * vectors as there are centroids, so neither half of the search dominates; see BENCHMARKS.md
     * for recall against probes.
     */
    public static Settings defaults() {
      WaveConfig c = WaveConfig.defaults();
      return new Settings(c.segmentTokens(), c.tokensPerCluster(), c.kmeansIterations(),
          KvDType.FLOAT32, 0.05, 8);
    }

    /** The clustering parameters and storage type of {@code config}, default probing. */
    public static Settings of(WaveConfig config) {
      Settings d = defaults();
      return new Settings(config.segmentTokens(), config.tokensPerCluster(),
          config.kmeansIterations(), config.kvType(), d.probeFraction, d.minProbes);
    }

    /** Clusters probed by default among {@code clusters}. */
    public int probes(int clusters) {
      return Math.min(clusters, Math.max(minProbes, (int) Math.ceil(probeFraction * clusters)));
    }
  }

  private final Settings settings;
  private final KnnVectorsFormat byteDelegate = new Lucene99HnswVectorsFormat();

  /** The format with {@link Settings#defaults()}; this is the instance SPI loads to read. */
  public WaveVectorsFormat() {
    this(Settings.defaults());
  }

  public WaveVectorsFormat(Settings settings) {
    super(NAME);
    if (settings == null) {
      throw new IllegalArgumentException("settings must not be null");
    }
    this.settings = settings;
  }

  public Settings settings() {
    return settings;
  }

  KnnVectorsFormat byteDelegate() {
    return byteDelegate;
  }

  @Override
  public KnnVectorsWriter fieldsWriter(SegmentWriteState state) throws IOException {
    return new WaveVectorsWriter(this, state);
  }

  @Override
  public KnnVectorsReader fieldsReader(SegmentReadState state) throws IOException {
    return new WaveVectorsReader(this, state);
  }

  @Override
  public int getMaxDimensions(String fieldName) {
    return MAX_DIMENSIONS;
  }

  @Override
  public String toString() {
    return NAME + "(" + settings + ")";
  }
}
