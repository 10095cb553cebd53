package org.retroinfer.lucene;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.lucene.document.FieldType;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.VectorEncoding;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.kv.VectorStore;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;

/**
 * The {@code assigned} layout of {@link WaveVectorsFormat}: K/V vectors that arrive with the wave
 * segment and cluster the inference host gave them, so that an index whose flushes and merges the
 * host does not control (a search server's shard) still stores the host's clusters, bit for bit,
 * and never runs k-means.
 *
 * <p>A vector of an assigned field has the head dim's components, then {@value #TRAILING} trailing
 * components, each an exact float integer: the high and the low 24 bits of its wave segment's
 * <em>tag</em> (below {@link #TAG_LIMIT}), and its cluster id within the wave segment
 * ({@value #STEADY} for a row of the steady zone: attention sinks and the local window). The format
 * stores only the head dim's components; a wave segment is a run of adjacent documents with one
 * tag, so a writer adds each wave segment's tokens as adjacent documents in position order: one
 * {@code IndexWriter.addDocuments} block, or one nested document of a search server, which Lucene
 * indexes as such a block, keeps within one segment however the index flushes, and keeps
 * together and in order when it merges. The centroid and value sum of every cluster are then
 * computed from its members in position order, as wave-core computed them.
 *
 * <p>{@link #blocks} turns a loaded context into such blocks (one per wave segment, the steady zone
 * last; block {@code i} gets tag {@code firstTag + i}); {@link #pieces} finds them again in an index.
 */
public final class AssignedLayout {
  /** Components after the head dim's: tag high 24 bits, tag low 24 bits, cluster id. */
  public static final int TRAILING = 3;
  /** The cluster id of a steady-zone row. */
  public static final int STEADY = -1;
  /** Tags are in {@code [0, TAG_LIMIT)}. */
  public static final long TAG_LIMIT = 1L << 48;
  private static final int HALF = 1 << 24;
  private static final SecureRandom RANDOM = new SecureRandom();

  private AssignedLayout() {}

  /**
   * Writes {@code row[0, dim)} and the trailing components of {@code tag} and {@code cluster} into
   * {@code out} ({@code dim + TRAILING} floats).
   */
  public static void encode(float[] row, int dim, long tag, int cluster, float[] out) {
    System.arraycopy(row, 0, out, 0, dim);
    encodeTrailing(tag, cluster, out, dim);
  }

  /** Writes the trailing components of {@code tag} and {@code cluster} at {@code out[dim..]}. */
  public static void encodeTrailing(long tag, int cluster, float[] out, int dim) {
    if (tag < 0 || tag >= TAG_LIMIT) {
      throw new IllegalArgumentException("tag " + tag + " is outside [0, 2^48)");
    }
    if (cluster < STEADY || cluster >= HALF) {
      throw new IllegalArgumentException("cluster id " + cluster + " is outside [-1, 2^24)");
    }
    out[dim] = (float) (tag >>> 24);
    out[dim + 1] = (float) (tag & (HALF - 1));
    out[dim + 2] = cluster;
  }

  /** The tag of an assigned vector whose head dim is {@code dim} (checked with {@link #checkTrailing}). */
  public static long tag(float[] vector, int dim) {
    return ((long) vector[dim] << 24) | (long) vector[dim + 1];
  }

  /** The cluster id of an assigned vector ({@link #STEADY} for a steady row). */
  public static int cluster(float[] vector, int dim) {
    return (int) vector[dim + 2];
  }

  /** What is wrong with the trailing components of {@code vector}, or null if nothing. */
  public static String checkTrailing(float[] vector, int dim) {
    float hi = vector[dim];
    float lo = vector[dim + 1];
    float c = vector[dim + 2];
    if (!isInt(hi, 0, HALF) || !isInt(lo, 0, HALF)) {
      return "the tag components " + hi + ", " + lo + " are not integers in [0, 2^24) (the"
          + " assigned layout: head dim components, tag high and low 24 bits, cluster id)";
    }
    if (!isInt(c, STEADY, HALF)) {
      return "the cluster id " + c + " is not an integer in [-1, 2^24) (-1: steady zone)";
    }
    return null;
  }

  private static boolean isInt(float f, int from, int to) {
    return f == Math.rint(f) && f >= from && f < to;
  }

  /**
   * The field type of an assigned key field: dimension {@code headDim + TRAILING}, float32,
   * maximum inner product, paired with {@code valueField}, stored as {@code storage}.
   */
  public static FieldType keyType(String keyField, String valueField, int headDim,
      KvDType storage) {
    FieldType t = type(headDim, storage);
    t.putAttribute(WaveVectorsFormat.ATTR_VALUES, valueField);
    t.freeze();
    return t;
  }

  /** The field type of an assigned value field, paired with {@code keyField}. */
  public static FieldType valueType(String valueField, String keyField, int headDim,
      KvDType storage) {
    FieldType t = type(headDim, storage);
    t.putAttribute(WaveVectorsFormat.ATTR_KEYS, keyField);
    t.freeze();
    return t;
  }

  private static FieldType type(int headDim, KvDType storage) {
    if (headDim < 1 || headDim + TRAILING > WaveVectorsFormat.MAX_DIMENSIONS) {
      throw new IllegalArgumentException("head dim " + headDim + " is outside [1, "
          + (WaveVectorsFormat.MAX_DIMENSIONS - TRAILING) + "]");
    }
    FieldType t = new FieldType();
    t.setVectorAttributes(headDim + TRAILING, VectorEncoding.FLOAT32, ContextFields.KEY_SIMILARITY);
    t.putAttribute(WaveVectorsFormat.ATTR_LAYOUT, WaveVectorsFormat.Layout.ASSIGNED.attribute());
    t.putAttribute(WaveVectorsFormat.ATTR_STORAGE, storage.name());
    return t;
  }

  /** A random first tag for {@code blocks} blocks: {@code [base, base + blocks)} fits under the limit. */
  public static long randomTagBase(int blocks) {
    if (blocks < 0 || blocks >= TAG_LIMIT) {
      throw new IllegalArgumentException(blocks + " blocks");
    }
    return (RANDOM.nextLong() & Long.MAX_VALUE) % (TAG_LIMIT - blocks);
  }

  /**
   * A loaded context's K/V as assigned blocks: one per wave segment in position order, then the
   * steady zone (sinks and tail) last, if it has tokens; block {@code i} has tag
   * {@code firstTag + i}. Every (layer, KV head) has its own clusters; the blocks read the
   * context's rows when asked, so it must stay open while they are used.
   */
  public static List<Block> blocks(LoadedContext context, long firstTag) {
    AttentionShape shape = context.shape();
    HeadLayout[][] heads = new HeadLayout[shape.layers()][shape.kvHeads()];
    for (int l = 0; l < shape.layers(); l++) {
      for (int h = 0; h < shape.kvHeads(); h++) {
        heads[l][h] = context.layout(l, h);
      }
    }
    return blocks(heads, firstTag);
  }

  /** How many blocks {@link #blocks(LoadedContext, long)} makes of a context. */
  public static int blockCount(LoadedContext context) {
    HeadLayout h0 = context.layout(0, 0);
    return h0.index().segmentCount() + (h0.steadyTokens() > 0 ? 1 : 0);
  }

  /**
   * The blocks of a context given as its heads ({@code heads[layer][kvHead]}, all with the same
   * wave segments, sinks and tail, as {@link ContextWriter} requires).
   */
  public static List<Block> blocks(HeadLayout[][] heads, long firstTag) {
    HeadLayout h0 = heads[0][0];
    WaveIndex index = h0.index();
    int segments = index.segmentCount();
    int[] steady = steadyPositions(h0);
    int blocks = segments + (steady.length > 0 ? 1 : 0);
    if (firstTag < 0 || firstTag + blocks > TAG_LIMIT) {
      throw new IllegalArgumentException("tags [" + firstTag + ", " + (firstTag + blocks)
          + ") are outside [0, 2^48)");
    }
    Clusters clusters = new Clusters(heads);
    List<Block> out = new ArrayList<>();
    for (int s = 0; s < segments; s++) {
      int first = index.segmentFirstPosition(s);
      int[] positions = new int[index.segmentTokens(s)];
      for (int i = 0; i < positions.length; i++) {
        positions[i] = first + i;
      }
      out.add(new Block(firstTag + s, s, positions, heads, clusters));
    }
    if (steady.length > 0) {
      out.add(new Block(firstTag + segments, STEADY, steady, heads, clusters));
    }
    return out;
  }

  private static int[] steadyPositions(HeadLayout h) {
    int sinks = h.sinks();
    int tailStart = h.tailStart();
    int[] p = new int[sinks + (h.size() - tailStart)];
    int n = 0;
    for (int i = 0; i < sinks; i++) {
      p[n++] = i;
    }
    for (int i = tailStart; i < h.size(); i++) {
      p[n++] = i;
    }
    return p;
  }

  /** Per (layer, KV head), the cluster id within its wave segment of every position. */
  private static final class Clusters {
    private final int[][][] ids;

    Clusters(HeadLayout[][] heads) {
      this.ids = new int[heads.length][heads[0].length][];
      for (int l = 0; l < heads.length; l++) {
        for (int h = 0; h < heads[l].length; h++) {
          HeadLayout head = heads[l][h];
          WaveIndex index = head.index();
          int[] c = new int[head.size()];
          Arrays.fill(c, STEADY);
          for (int s = 0; s < index.segmentCount(); s++) {
            int c0 = index.segmentFirstCluster(s);
            for (int g = c0; g < index.segmentFirstCluster(s + 1); g++) {
              for (int row = index.clusterStart(g); row < index.clusterStart(g + 1); row++) {
                c[index.position(row)] = g - c0;
              }
            }
          }
          ids[l][h] = c;
        }
      }
    }

    int of(int layer, int kvHead, int position) {
      return ids[layer][kvHead][position];
    }
  }

  /**
   * One wave segment of a context (or its steady zone, {@code segment() == STEADY}): its tag, its
   * positions in order, and per (layer, KV head) the encoded key and value of each position.
   */
  public static final class Block {
    private final long tag;
    private final int segment;
    private final int[] positions;
    private final HeadLayout[][] heads;
    private final Clusters clusters;

    Block(long tag, int segment, int[] positions, HeadLayout[][] heads, Clusters clusters) {
      this.tag = tag;
      this.segment = segment;
      this.positions = positions;
      this.heads = heads;
      this.clusters = clusters;
    }

    public long tag() {
      return tag;
    }

    /** The wave segment's index in the context, or {@link #STEADY} for the steady zone. */
    public int segment() {
      return segment;
    }

    /** The token positions, ascending. */
    public int[] positions() {
      return positions.clone();
    }

    public int size() {
      return positions.length;
    }

    /**
     * The encoded key (or value) of (layer, KV head) at {@code positions()[i]}: head dim components
     * as float32, then the tag and the cluster id.
     */
    public float[] vector(int layer, int kvHead, boolean value, int i) {
      int d = heads[layer][kvHead].dim();
      float[] k = new float[d + TRAILING];
      float[] v = new float[d + TRAILING];
      read(layer, kvHead, i, k, v);
      return value ? v : k;
    }

    /**
     * The keys and values of (layer, KV head) at every position of the block, in order, as float32
     * ({@code size() x headDim} each, no trailing components), read a run of consecutive positions
     * at a time.
     */
    public void readRows(int layer, int kvHead, float[] keys, float[] values) {
      HeadLayout h = heads[layer][kvHead];
      int d = h.dim();
      for (int i = 0; i < positions.length; ) {
        int j = i + 1;
        while (j < positions.length && positions[j] == positions[j - 1] + 1) {
          j++;
        }
        h.read(positions[i], positions[j - 1] + 1, keys, values, i * d, d);
        i = j;
      }
    }

    /** The cluster id of (layer, KV head) at {@code positions()[i]} ({@link #STEADY} if steady). */
    public int cluster(int layer, int kvHead, int i) {
      return segment == STEADY ? STEADY : clusters.of(layer, kvHead, positions[i]);
    }

    /**
     * Writes the encoded key and value of (layer, KV head) at {@code positions()[i]} into
     * {@code key} and {@code value} (each {@code headDim + TRAILING} floats).
     */
    public void read(int layer, int kvHead, int i, float[] key, float[] value) {
      HeadLayout h = heads[layer][kvHead];
      int d = h.dim();
      int p = positions[i];
      h.read(p, p + 1, key, value, 0, d);
      int cluster = segment == STEADY ? STEADY : clusters.of(layer, kvHead, p);
      encodeTrailing(tag, cluster, key, d);
      encodeTrailing(tag, cluster, value, d);
    }
  }

  /** A wave segment of an assigned field found in an index. */
  public record Piece(long tag, WaveField field, int segment) {}

  /**
   * The wave segments of {@code keyField} whose tag is in {@code [tagFrom, tagTo)}, in every leaf
   * of {@code reader}, in leaf order (deleted documents are not looked at: check the leaves' live
   * docs where that matters).
   */
  public static List<Piece> pieces(IndexReader reader, String keyField, long tagFrom, long tagTo)
      throws IOException {
    List<Piece> out = new ArrayList<>();
    for (LeafReaderContext leaf : reader.leaves()) {
      WaveField f = WaveVectorsReader.waveField(leaf.reader(), keyField);
      if (f == null || !f.assigned()) {
        continue;
      }
      for (int s = 0; s < f.segmentCount(); s++) {
        long tag = f.tag(s);
        if (tag >= tagFrom && tag < tagTo) {
          out.add(new Piece(tag, f, s));
        }
      }
    }
    return out;
  }

  /**
   * What a context's blocks do not say themselves: {@link #restore} needs it to put the context
   * back together (a search server keeps it beside the blocks).
   *
   * @param shape the attention shape
   * @param config the wave configuration the context was built with
   * @param tokens token ids by position
   * @param sinks attention sinks (the steady zone's first positions)
   * @param prefillDone whether the prefill had ended
   * @param centres every head's key centre, {@code layers x kvHeads x headDim} in (layer, KV head)
   *     order, or null if the context has none
   * @param firstTag the tag of block 0
   * @param segments wave segments (blocks {@code 0 .. segments - 1}; block {@code segments} is the
   *     steady zone, when it has tokens)
   */
  public record ContextPlan(AttentionShape shape, WaveConfig config, int[] tokens, int sinks,
      boolean prefillDone, float[] centres, long firstTag, int segments) {

    /** The plan of a loaded context whose blocks were made with {@link #blocks(LoadedContext, long)}. */
    public static ContextPlan of(LoadedContext context, long firstTag) {
      AttentionShape shape = context.shape();
      HeadLayout h0 = context.layout(0, 0);
      int d = shape.headDim();
      float[] centres = new float[shape.layers() * shape.kvHeads() * d];
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < shape.kvHeads(); h++) {
          float[] c = context.layout(l, h).keyCentre();
          if (c == null) {
            centres = null;
            break;
          }
          System.arraycopy(c, 0, centres, (l * shape.kvHeads() + h) * d, d);
        }
        if (centres == null) {
          break;
        }
      }
      return new ContextPlan(shape, context.config(), context.tokens(), h0.sinks(),
          context.prefillDone(), centres, firstTag, h0.index().segmentCount());
    }
  }

  /**
   * Puts a context back together from its blocks in {@code reader} (any index whose K/V fields are
   * {@link ContextFields}' names in the assigned layout: a context store's, or a search server's
   * shard with the blocks as nested documents), found by their tags; a block's positions are its
   * documents' order. Nothing is clustered: every wave segment comes back with the clusters,
   * summaries and rows it was indexed with, so the context attends bit for bit like the one whose
   * blocks were indexed. The rows are copied: the context does not hold on to {@code reader}.
   *
   * @throws CorruptIndexException if a block is missing, repeated, split, or of the wrong size
   */
  public static LoadedContext restore(IndexReader reader, String contextId, ContextPlan plan)
      throws IOException {
    return restore(reader, contextId, plan, false);
  }

  /**
   * {@link #restore(IndexReader, String, ContextPlan)}; with {@code inPlace}, the wave segments'
   * rows are read in place from the reader's mapped files where it maps them (nothing copied), so
   * the caller keeps {@code reader} open for as long as it uses the context.
   */
  public static LoadedContext restore(IndexReader reader, String contextId, ContextPlan plan,
      boolean inPlace) throws IOException {
    AttentionShape shape = plan.shape();
    int kv = shape.kvHeads();
    HeadCache[][] heads = new HeadCache[shape.layers()][kv];
    boolean success = false;
    try {
      for (int l = 0; l < shape.layers(); l++) {
        for (int h = 0; h < kv; h++) {
          heads[l][h] = restoreHead(reader, contextId, plan, l, h, inPlace);
        }
      }
      success = true;
      return new LoadedContext(contextId, shape, plan.config(), plan.tokens().clone(),
          plan.prefillDone(), heads, () -> { });
    } finally {
      if (!success) {
        for (HeadCache[] layer : heads) {
          for (HeadCache head : layer) {
            if (head != null) {
              head.close();
            }
          }
        }
      }
    }
  }

  private static HeadCache restoreHead(IndexReader reader, String id, ContextPlan plan, int layer,
      int kvHead, boolean inPlace) throws IOException {
    String keyField = ContextFields.keyField(layer, kvHead);
    String where = "context '" + id + "', layer " + layer + ", KV head " + kvHead;
    int n = plan.tokens().length;
    int sinks = plan.sinks();
    int segments = plan.segments();
    int d = plan.shape().headDim();
    Piece[] byBlock = new Piece[segments + 1];
    for (Piece p : pieces(reader, keyField, plan.firstTag(), plan.firstTag() + segments + 1)) {
      int b = (int) (p.tag() - plan.firstTag());
      if (byBlock[b] != null) {
        throw new CorruptIndexException(where + ": block " + b + " (tag " + p.tag() + ") is stored"
            + " twice, or split over two wave segments", id);
      }
      WaveField f = p.field();
      if (!f.paired() || f.dimension() != d || f.storage() != plan.config().kvType()
          || f.steady(p.segment()) != (b == segments)) {
        throw new CorruptIndexException(where + ": block " + b + " is stored "
            + (f.paired() ? "" : "without paired values, ") + "with dim " + f.dimension() + " as "
            + f.storage() + (f.steady(p.segment()) ? ", steady" : ", clustered")
            + "; the context has dim " + d + " as " + plan.config().kvType(), id);
      }
      byBlock[b] = p;
    }
    HeadLayout.Restorer restorer = HeadLayout.restoring(plan.config(), plan.shape().groupSize(), d)
        .keyCentre(plan.centres() == null ? null
            : Arrays.copyOfRange(plan.centres(), (layer * plan.shape().kvHeads() + kvHead) * d,
                (layer * plan.shape().kvHeads() + kvHead + 1) * d));
    boolean success = false;
    try {
      int first = sinks;
      for (int s = 0; s < segments; s++) {
        Piece p = byBlock[s];
        if (p == null) {
          throw new CorruptIndexException(where + ": wave segment " + s + " (tag "
              + (plan.firstTag() + s) + ") is missing", id);
        }
        int[] local = ranks(p.field().segmentDocs(p.segment()));
        var seg = p.field().clusteredSegment(p.segment(), first, local);
        VectorStore k = p.field().keys(p.segment());
        VectorStore v = p.field().values(p.segment());
        if (inPlace && k.hasExternalRows() && v.hasExternalRows()) {
          restorer.segmentInPlace(seg, k, v); // views of the mapped file
        } else {
          try (k; v) {
            restorer.segment(seg, k, v);
            inPlace = false; // in place only before any segment is copied
          }
        }
        first += local.length;
      }
      int tailStart = first;
      int steadyRows = sinks + (n - tailStart);
      Piece st = byBlock[segments];
      if (steadyRows < 0 || (steadyRows > 0) != (st != null)
          || (st != null && st.field().segmentRows(st.segment()) != steadyRows)) {
        throw new CorruptIndexException(where + ": the steady zone holds "
            + (st == null ? 0 : st.field().segmentRows(st.segment())) + " tokens, the context has "
            + sinks + " sinks and a tail of " + (n - tailStart), id);
      }
      if (st != null) {
        try (VectorStore k = st.field().keys(st.segment());
            VectorStore v = st.field().values(st.segment())) {
          // one cluster, rows in doc order: the sinks, then the tail
          restorer.sinks(k, v, 0, sinks);
          restorer.tail(k, v, sinks, steadyRows);
        }
      }
      HeadCache head;
      try {
        head = restorer.build(plan.prefillDone());
      } catch (IllegalArgumentException e) {
        throw new CorruptIndexException(where + ": the blocks do not form a wave cache: "
            + e.getMessage(), id, e);
      }
      success = true;
      return head;
    } finally {
      if (!success) {
        restorer.close();
      }
    }
  }

  /** For each row (doc id), its rank among the rows' doc ids: the position within its block. */
  private static int[] ranks(int[] docs) {
    int[] sorted = docs.clone();
    Arrays.sort(sorted);
    int[] rank = new int[docs.length];
    for (int i = 0; i < docs.length; i++) {
      rank[i] = Arrays.binarySearch(sorted, docs[i]);
    }
    return rank;
  }
}
