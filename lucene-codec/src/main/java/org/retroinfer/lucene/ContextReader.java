package org.retroinfer.lucene;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.IndexableField;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.util.Bits;
import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Loads a context written by {@link ContextWriter} back from an {@link IndexReader}: per (layer,
 * KV head), the sinks, the wave index (clusters, centroids, sizes, value sums, cluster-contiguous
 * K/V) and the tail, restored through wave-core's {@link HeadLayout} as a wave cache ready for
 * decode, without re-clustering. The
 * result attends bit for bit like the cache that was written.
 *
 * <p>When the directory maps its files (MMapDirectory, Lucene's default on 64-bit systems), the
 * indexed keys and values are not copied: the caches read their rows in place from the mapped
 * data file, and the loaded context holds a reference to the reader ({@link IndexReader#incRef()})
 * until it is closed, so the files stay mapped however the caller closes the reader. Only the
 * steady zone (sinks and tail, a few hundred rows per head) is copied. Otherwise every row is
 * copied off-heap (no pass through the Java heap) into stores the caches own. Either way every
 * block read is checksum-verified first, and so is the metadata document (its
 * {@link DocumentChecksum}); damage is reported as {@link CorruptIndexException}.
 */
public final class ContextReader {
  private ContextReader() {}

  /** Whether a complete context {@code contextId} is visible in {@code reader}. */
  public static boolean contains(IndexReader reader, String contextId) throws IOException {
    return metaDocs(reader, contextId).length > 0;
  }

  /** The ids of the complete contexts visible in {@code reader}, sorted. */
  public static List<String> contextIds(IndexReader reader) throws IOException {
    IndexSearcher searcher = searcher(reader);
    List<String> ids = new ArrayList<>();
    for (var sd : searcher.search(new TermQuery(new Term(ContextFields.KIND,
        ContextFields.KIND_META)), Math.max(1, reader.numDocs())).scoreDocs) {
      ids.add(searcher.storedFields().document(sd.doc).get(ContextFields.CONTEXT));
    }
    ids.sort(null);
    return ids;
  }

  /**
   * Loads context {@code contextId}.
   *
   * @throws IllegalArgumentException if no such context is visible
   * @throws CorruptIndexException if its documents do not form a complete context
   */
  public static LoadedContext load(IndexReader reader, String contextId) throws IOException {
    reader.incRef(); // released when the context is closed (or below, on failure)
    boolean ok = false;
    try {
      LoadedContext c = load(reader, contextId, reader::decRef);
      ok = true;
      return c;
    } finally {
      if (!ok) {
        reader.decRef();
      }
    }
  }

  private static LoadedContext load(IndexReader reader, String contextId, AutoCloseable release)
      throws IOException {
    int[] meta = metaDocs(reader, contextId);
    if (meta.length == 0) {
      throw new IllegalArgumentException("no context '" + contextId + "' in this index (or it is"
          + " not committed / not visible to this reader yet)");
    }
    if (meta.length > 1) {
      throw new CorruptIndexException("context '" + contextId + "' has " + meta.length
          + " metadata documents; write contexts with ContextWriter, which replaces a context of"
          + " the same id", contextId);
    }
    Document m = reader.storedFields().document(meta[0]);
    Meta info = Meta.of(m, contextId);

    List<LeafPositions> leaves = new ArrayList<>();
    int[] tokens = new int[info.tokens];
    boolean[] seen = new boolean[info.tokens];
    for (LeafReaderContext leaf : reader.leaves()) {
      LeafPositions lp = LeafPositions.of(leaf.reader(), contextId, info, tokens, seen);
      if (lp != null) {
        leaves.add(lp);
      }
    }
    for (int p = 0; p < seen.length; p++) {
      if (!seen[p]) {
        throw new CorruptIndexException("context '" + contextId + "' lacks the token at position "
            + p + " of " + info.tokens, contextId);
      }
    }

    AttentionShape shape = info.shape;
    int kv = shape.kvHeads();
    HeadCache[][] heads = new HeadCache[shape.layers()][kv];
    try {
      IntStream.range(0, shape.layers() * kv).parallel().forEach(i -> {
        try {
          heads[i / kv][i % kv] = loadHead(contextId, info, leaves, i / kv, i % kv);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (RuntimeException e) {
      for (HeadCache[] layer : heads) {
        for (HeadCache h : layer) {
          if (h != null) {
            h.close();
          }
        }
      }
      if (e instanceof UncheckedIOException u) {
        throw u.getCause();
      }
      throw e;
    }
    return new LoadedContext(contextId, shape, info.config, tokens, info.prefillDone, heads,
        release);
  }

  private static IndexSearcher searcher(IndexReader reader) {
    IndexSearcher s = new IndexSearcher(reader);
    s.setQueryCache(null);
    return s;
  }

  /** The live metadata documents of context {@code contextId} (one, unless the index is bad). */
  private static int[] metaDocs(IndexReader reader, String contextId) throws IOException {
    return KeyLookup.liveDocs(reader, new Term(ContextFields.KIND, ContextFields.KIND_META),
        new Term(ContextFields.CONTEXT, contextId));
  }

  /** The metadata document of a context. */
  private record Meta(int tokens, int sinks, boolean prefillDone, AttentionShape shape,
      WaveConfig config, float[] centres) {

    /** The key centre of (layer, KV head), or null if the context was stored without one. */
    float[] centre(int layer, int kvHead) {
      if (centres == null) {
        return null;
      }
      int d = shape.headDim();
      int from = (layer * shape.kvHeads() + kvHead) * d;
      return Arrays.copyOfRange(centres, from, from + d);
    }

    static Meta of(Document d, String id) throws CorruptIndexException {
      IndexableField v = d.getField(ContextFields.META_VERSION);
      if (v != null && v.numericValue() != null
          && v.numericValue().intValue() < ContextFields.META_VERSION_CURRENT) {
        throw new CorruptIndexException("context '" + id + "' has metadata version "
            + v.numericValue() + ", written by an older version without a checksum; this reader"
            + " knows version " + ContextFields.META_VERSION_CURRENT + ": store the context again",
            id);
      }
      DocumentChecksum.verify(d, ContextFields.META_CHECKSUM,
          "the metadata document of context '" + id + "'");
      try {
        int version = intField(d, ContextFields.META_VERSION);
        if (version != ContextFields.META_VERSION_CURRENT) {
          throw new CorruptIndexException("context '" + id + "' has metadata version " + version
              + ", this reader knows " + ContextFields.META_VERSION_CURRENT, id);
        }
        AttentionShape shape = new AttentionShape(intField(d, ContextFields.META_LAYERS),
            intField(d, ContextFields.META_QUERY_HEADS), intField(d, ContextFields.META_KV_HEADS),
            intField(d, ContextFields.META_HEAD_DIM));
        String config = d.get(ContextFields.META_CONFIG);
        if (config == null) {
          throw new IllegalArgumentException("no " + ContextFields.META_CONFIG);
        }
        int tokens = intField(d, ContextFields.META_TOKENS);
        int sinks = intField(d, ContextFields.META_SINKS);
        if (tokens < 0 || sinks < 0 || sinks > tokens) {
          throw new IllegalArgumentException(tokens + " tokens with " + sinks + " sinks");
        }
        return new Meta(tokens, sinks, intField(d, ContextFields.META_PREFILL_DONE) == 1, shape,
            ConfigText.parse(config), centres(d, shape));
      } catch (IllegalArgumentException e) {
        throw new CorruptIndexException("context '" + id + "' has a bad metadata document: "
            + e.getMessage(), id, e);
      }
    }

    private static float[] centres(Document d, AttentionShape shape) {
      org.apache.lucene.util.BytesRef bytes = d.getBinaryValue(ContextFields.META_CENTRES);
      if (bytes == null) {
        return null;
      }
      int n = shape.layers() * shape.kvHeads() * shape.headDim();
      if (bytes.length != 4 * n) {
        throw new IllegalArgumentException(ContextFields.META_CENTRES + " holds " + bytes.length
            + " bytes, expected " + n + " floats");
      }
      float[] c = new float[n];
      java.nio.ByteBuffer.wrap(bytes.bytes, bytes.offset, bytes.length)
          .order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(c);
      for (float x : c) {
        if (!Float.isFinite(x)) {
          throw new IllegalArgumentException(ContextFields.META_CENTRES + " holds " + x);
        }
      }
      return c;
    }

    private static int intField(Document d, String name) {
      IndexableField f = d.getField(name);
      if (f == null || f.numericValue() == null) {
        throw new IllegalArgumentException("no " + name);
      }
      return f.numericValue().intValue();
    }
  }

  /** The positions of the context's live token documents in one leaf. */
  private record LeafPositions(LeafReader reader, int[] positionOfDoc) {
    static LeafPositions of(LeafReader leaf, String id, Meta info, int[] tokens, boolean[] seen)
        throws IOException {
      PostingsEnum docs = leaf.postings(new Term(ContextFields.CONTEXT, id), PostingsEnum.NONE);
      if (docs == null) {
        return null;
      }
      Bits live = leaf.getLiveDocs();
      NumericDocValues positions = leaf.getNumericDocValues(ContextFields.POSITION);
      NumericDocValues tokenIds = leaf.getNumericDocValues(ContextFields.TOKEN);
      int[] pos = new int[leaf.maxDoc()];
      Arrays.fill(pos, -1);
      boolean any = false;
      for (int doc = docs.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = docs.nextDoc()) {
        if ((live != null && !live.get(doc)) || positions == null
            || !positions.advanceExact(doc)) {
          continue; // deleted, or the metadata document
        }
        long p = positions.longValue();
        if (p < 0 || p >= info.tokens || seen[(int) p]) {
          throw new CorruptIndexException("context '" + id + "': token position " + p
              + " is out of [0, " + info.tokens + ") or repeated", id);
        }
        if (tokenIds == null || !tokenIds.advanceExact(doc)) {
          throw new CorruptIndexException("context '" + id + "': the token at position " + p
              + " has no token id", id);
        }
        seen[(int) p] = true;
        tokens[(int) p] = (int) tokenIds.longValue();
        pos[doc] = (int) p;
        any = true;
      }
      return any ? new LeafPositions(leaf, pos) : null;
    }
  }

  /** A wave segment of one field that holds tokens of the context. */
  private record Piece(WaveField field, int segment, int firstPosition, int[] positions) {}

  private static HeadCache loadHead(String id, Meta info, List<LeafPositions> leaves,
      int layer, int kvHead) throws IOException {
    String keyField = ContextFields.keyField(layer, kvHead);
    String where = "context '" + id + "', layer " + layer + ", KV head " + kvHead;
    List<Piece> clustered = new ArrayList<>();
    List<Piece> steady = new ArrayList<>();
    int dim = info.shape.headDim();
    for (LeafPositions leaf : leaves) {
      WaveField f = WaveVectorsReader.waveField(leaf.reader(), keyField);
      if (f == null) {
        continue;
      }
      for (int s = 0; s < f.segmentCount(); s++) {
        int[] docs = f.segmentDocs(s);
        int[] positions = new int[docs.length];
        int members = 0;
        int first = Integer.MAX_VALUE;
        for (int i = 0; i < docs.length; i++) {
          positions[i] = leaf.positionOfDoc()[docs[i]];
          if (positions[i] >= 0) {
            members++;
            first = Math.min(first, positions[i]);
          }
        }
        if (members == 0) {
          continue; // another context's, or deleted
        }
        if (members != docs.length) {
          throw new CorruptIndexException(where + ": a wave segment of " + docs.length
              + " tokens holds only " + members + " live tokens of the context (documents of it"
              + " were deleted, or it shares the wave segment with other documents)", id);
        }
        if (!f.paired() || f.dimension() != dim || f.storage() != info.config.kvType()) {
          throw new CorruptIndexException(where + ": field '" + keyField + "' is stored "
              + (f.paired() ? "" : "without paired values, ") + "with dim " + f.dimension()
              + " as " + f.storage() + ", the context's metadata says dim " + dim + " as "
              + info.config.kvType(), id);
        }
        (f.steady(s) ? steady : clustered).add(new Piece(f, s, first, positions));
      }
    }
    clustered.sort(Comparator.comparingInt(Piece::firstPosition));

    HeadLayout.Restorer restorer = HeadLayout.restoring(info.config, info.shape.groupSize(), dim)
        .keyCentre(info.centre(layer, kvHead));
    boolean success = false;
    boolean inPlace = true;
    try {
      for (Piece p : clustered) {
        int[] local = new int[p.positions().length];
        for (int i = 0; i < local.length; i++) {
          local[i] = p.positions()[i] - p.firstPosition();
          if (local[i] >= local.length) {
            throw new CorruptIndexException(where + ": a wave segment starting at position "
                + p.firstPosition() + " is not a contiguous run of positions", id);
          }
        }
        ClusteredSegment seg = p.field().clusteredSegment(p.segment(), p.firstPosition(), local);
        VectorStore k = p.field().keys(p.segment());
        VectorStore v = p.field().values(p.segment());
        if (k.hasExternalRows() && v.hasExternalRows() && inPlace) {
          restorer.segmentInPlace(seg, k, v); // views of the mapped file: read in place
        } else {
          try (k; v) {
            restorer.segment(seg, k, v);
            inPlace = false;
          }
        }
      }
      int tailStart = info.sinks + restorer.indexedTokens();
      int tail = info.tokens - tailStart;
      if (tail < 0) {
        throw new CorruptIndexException(where + ": " + restorer.indexedTokens() + " indexed tokens"
            + " and " + info.sinks + " sinks exceed the context's " + info.tokens + " tokens", id);
      }
      // Steady rows, in position order: first the sinks, then the tail.
      List<long[]> rows = new ArrayList<>(); // {position, piece, row}
      for (int pi = 0; pi < steady.size(); pi++) {
        int[] positions = steady.get(pi).positions();
        for (int r = 0; r < positions.length; r++) {
          rows.add(new long[] {positions[r], pi, r});
        }
      }
      rows.sort(Comparator.comparingLong(a -> a[0]));
      if (rows.size() != info.sinks + tail) {
        throw new CorruptIndexException(where + ": " + rows.size() + " steady tokens, expected "
            + info.sinks + " sinks and " + tail + " tail tokens", id);
      }
      VectorStore[] keyBlocks = new VectorStore[steady.size()];
      VectorStore[] valueBlocks = new VectorStore[steady.size()];
      try {
        for (int pi = 0; pi < steady.size(); pi++) {
          keyBlocks[pi] = steady.get(pi).field().keys(steady.get(pi).segment());
          valueBlocks[pi] = steady.get(pi).field().values(steady.get(pi).segment());
        }
        for (int i = 0; i < rows.size(); i++) {
          long[] e = rows.get(i);
          int expect = i < info.sinks ? i : tailStart + (i - info.sinks);
          if (e[0] != expect) {
            throw new CorruptIndexException(where + ": steady token at position " + e[0]
                + " where position " + expect + " was expected (sinks, then the tail after the"
                + " indexed tokens)", id);
          }
          int pi = (int) e[1];
          int r = (int) e[2];
          if (i < info.sinks) {
            restorer.sinks(keyBlocks[pi], valueBlocks[pi], r, r + 1);
          } else {
            restorer.tail(keyBlocks[pi], valueBlocks[pi], r, r + 1);
          }
        }
      } finally {
        for (int pi = 0; pi < steady.size(); pi++) {
          if (keyBlocks[pi] != null) {
            keyBlocks[pi].close();
          }
          if (valueBlocks[pi] != null) {
            valueBlocks[pi].close();
          }
        }
      }
      HeadCache head;
      try {
        head = restorer.build(info.prefillDone);
      } catch (IllegalArgumentException e) {
        throw new CorruptIndexException(where + ": the stored parts do not form a wave cache: "
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
}
