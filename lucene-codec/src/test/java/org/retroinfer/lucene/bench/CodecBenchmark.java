package org.retroinfer.lucene.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.lucene.codecs.Codec;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.AcceptDocs;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.TopKnnCollector;
import org.apache.lucene.search.KnnFloatVectorQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.knn.KnnSearchStrategy;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.MMapDirectory;
import org.retroinfer.lucene.ContextReader;
import org.retroinfer.lucene.ContextWriter;
import org.retroinfer.lucene.LoadedContext;
import org.retroinfer.lucene.WaveCodec;
import org.retroinfer.lucene.WaveSearchStrategy;
import org.retroinfer.lucene.WaveVectorsFormat;
import org.retroinfer.model.ModelDirectory;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.WaveHeadCache;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * Measures the codec side by side in one run and prints Markdown tables:
 *
 * <ol>
 *   <li>a 16K-token context of the shipped model (6 layers x 2 KV heads x head dim 64; K/V from a
 *       real prefill of Python text) and a synthetic 128K-token context (one layer of 8 KV heads x
 *       head dim 128, wave-core's {@link SyntheticKv}), both bfloat16 with the default wave
 *       configuration: bytes on disk, write throughput, time to open the index, load the context
 *       and run the first wave attention (in a fresh JVM, and in this warm one);
 *   <li>on the same key vectors, {@code KnnFloatVectorQuery} recall@10 (against a float64 brute
 *       force) and latency, this format at several probe counts vs Lucene's HNSW format at several
 *       candidate counts.
 * </ol>
 *
 * Usage: {@code CodecBenchmark [--only 16k|128k] [--queries N] [--dir DIR]}; see BENCHMARKS.md for
 * the command line. Internally {@code --open DIR ID} is the fresh-JVM child.
 */
public final class CodecBenchmark {
  private static final int K = 10;
  private static final int PASSES = 5;

  public static void main(String[] args) throws Exception {
    if (args.length == 3 && args[0].equals("--open")) {
      openChild(Path.of(args[1]), args[2]);
      return;
    }
    String only = null;
    int queries = 200;
    Path root = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--only" -> only = args[++i];
        case "--queries" -> queries = Integer.parseInt(args[++i]);
        case "--dir" -> root = Path.of(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]
            + "; usage: CodecBenchmark [--only 16k|128k] [--queries N] [--dir DIR]");
      }
    }
    if (root == null) {
      root = Files.createTempDirectory("codec-bench");
    }
    System.out.println("# lucene-codec benchmark");
    System.out.println("java " + System.getProperty("java.version") + ", "
        + Runtime.getRuntime().availableProcessors() + " CPUs, index files in " + root
        + ", load average " + loadAverage());
    List<String[]> storage = new ArrayList<>();
    List<String[]> opening = new ArrayList<>();
    List<String[]> knn = new ArrayList<>();
    if (only == null || only.equals("16k")) {
      scenario16k(root, queries, storage, opening, knn);
    }
    if (only == null || only.equals("128k")) {
      scenario128k(root, queries, storage, opening, knn);
    }
    System.out.println("load average at the end " + loadAverage());
    System.out.println();
    table(new String[] {"context", "K/V MB (bf16)", "on disk MB", "disk / K/V",
        "in-memory index build s", "write s (cluster+flush+commit)", "write MB/s of K/V"}, storage);
    System.out.println();
    table(new String[] {"context", "JVM", "open index ms", "load context ms",
        "first wave attention ms (all layers)", "bit-exact vs in-memory"}, opening);
    System.out.println();
    table(new String[] {"keys", "format", "setting", "build s", "index MB", "recall@10",
        "mean us", "p50 us", "p99 us", "vectors scored / query"}, knn);
  }

  // ---- scenarios ----

  private static void scenario16k(Path root, int queries, List<String[]> storage,
      List<String[]> opening, List<String[]> knn) throws Exception {
    int n = 16384;
    ModelDirectory md = ModelDirectory.shipped();
    System.out.println("16K: prefilling " + n + " bytes of Python text with " + md);
    try (Llama llama = Llama.load(md)) {
      byte[] text = PythonCorpus.system().text(n, new SplittableRandom(2026));
      int[] tokens = new int[n];
      for (int i = 0; i < n; i++) {
        tokens[i] = text[i] & 0xFF;
      }
      long t0 = System.nanoTime();
      PromptState state = llama.prefill(tokens);
      System.out.printf(Locale.ROOT, "16K: prefill %.1f s%n", (System.nanoTime() - t0) / 1e9);
      AttentionShape shape = llama.attentionShape();
      WaveConfig config = WaveConfig.defaults();
      ContextCache ctx = new WaveAttention(config).newContext(shape);
      state.copyInto(ctx);
      long t1 = System.nanoTime();
      ctx.endPrefill();
      double buildS = (System.nanoTime() - t1) / 1e9;
      // Keys of layer 3, KV head 0: the first n - queries are indexed, the last ones are queries.
      int layer = 3;
      int d = shape.headDim();
      float[] all = new float[n * d];
      for (int p = 0; p < n; p++) {
        System.arraycopy(state.keys(layer), p * shape.kvWidth(), all, p * d, d);
      }
      float[][] q = new float[queries][];
      for (int i = 0; i < queries; i++) {
        q[i] = Arrays.copyOfRange(all, (n - queries + i) * d, (n - queries + i + 1) * d);
      }
      float[] indexed = Arrays.copyOf(all, (n - queries) * d);
      state = null;
      storage.add(storageRow("16K real model (6 x 2 x 64)", root.resolve("ctx16k"), ctx, tokens,
          buildS, opening));
      ctx.close();
      knnRows("16K model keys, layer 3 head 0 (" + (n - queries) + " x 64)",
          root.resolve("knn16k"), indexed, d, q, knn);
    }
  }

  private static void scenario128k(Path root, int queries, List<String[]> storage,
      List<String[]> opening, List<String[]> knn) throws Exception {
    int n = 131072;
    int d = 128;
    AttentionShape shape = new AttentionShape(1, 32, 8, d);
    WaveConfig config = WaveConfig.defaults();
    System.out.println("128K: generating " + n + " synthetic tokens x 8 KV heads x head dim 128");
    ContextCache ctx = new WaveAttention(config).newContext(shape);
    float[] keys0 = null;
    SyntheticKv kv0 = null;
    for (int h = 0; h < shape.kvHeads(); h++) {
      SyntheticKv kv = new SyntheticKv(128_000 + h, n, d, 8, 16);
      var head = ctx.head(0, h);
      for (int p = 0; p < n; p++) {
        head.append(kv.keys, p * d, kv.values, p * d);
      }
      if (h == 0) {
        keys0 = kv.keys;
        kv0 = kv;
      }
    }
    long t1 = System.nanoTime();
    ctx.endPrefill();
    double buildS = (System.nanoTime() - t1) / 1e9;
    int[] tokens = new int[n];
    Random rnd = new Random(1);
    for (int i = 0; i < n; i++) {
      tokens[i] = rnd.nextInt(256);
    }
    storage.add(storageRow("128K synthetic (1 x 8 x 128)", root.resolve("ctx128k"), ctx, tokens,
        buildS, opening));
    ctx.close();
    float[][] q = new float[queries][];
    for (int i = 0; i < queries; i++) {
      q[i] = kv0.query(1);
    }
    knnRows("128K synthetic keys, head 0 (" + n + " x 128)", root.resolve("knn128k"), keys0, d,
        q, knn);
  }

  // ---- storage: write, open, first attention ----

  private static String[] storageRow(String name, Path dir, ContextCache ctx, int[] tokens,
      double buildS, List<String[]> opening) throws Exception {
    AttentionShape shape = ctx.shape();
    int n = tokens.length;
    long kvBytes = 2L * n * shape.layers() * shape.kvHeads() * shape.headDim()
        * ctx.backend().kvType().bytes();
    long t0 = System.nanoTime();
    try (Directory d = new MMapDirectory(dir);
        IndexWriter w = new IndexWriter(d, ContextWriter.indexWriterConfig())) {
      new ContextWriter(w).write("ctx", tokens, ctx);
      w.commit();
    }
    double writeS = (System.nanoTime() - t0) / 1e9;
    Map<String, Long> bytes = filesByExtension(dir);
    long disk = bytes.values().stream().mapToLong(Long::longValue).sum();
    System.out.println(name + ": files by extension " + bytes);
    String[] child = runChild(dir);
    // This JVM: attention compiled first (on the in-memory context), then the same steps timed,
    // twice: the first load also compiles the reading code and touches fresh native memory.
    float[] query = query(shape, new Random(7));
    float[] scratch = new float[shape.queryWidth()];
    for (int i = 0; i < 200; i++) {
      ctx.attend(i % shape.layers(), query(shape, new Random(i)), scratch);
    }
    String[] first = openLoadAttend(dir, ctx, query, scratch);
    String[] again = openLoadAttend(dir, ctx, query, scratch);
    opening.add(new String[] {name, "fresh JVM", child[0], child[1], child[2], "(not compared)"});
    opening.add(new String[] {name, "same JVM, first load", first[0], first[1], first[2], first[3]});
    opening.add(new String[] {name, "same JVM, again", again[0], again[1], again[2], again[3]});
    return new String[] {name, mb(kvBytes), mb(disk), String.format(Locale.ROOT, "%.3f",
        (double) disk / kvBytes), fmt(buildS), fmt(writeS), fmt(kvBytes / 1e6 / writeS)};
  }

  /** Open ms, load ms, attention ms (every layer once), and whether it matched bit for bit. */
  private static String[] openLoadAttend(Path dir, ContextCache ctx, float[] query,
      float[] scratch) throws IOException {
    AttentionShape shape = ctx.shape();
    long t1 = System.nanoTime();
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      long t2 = System.nanoTime();
      try (LoadedContext loaded = ContextReader.load(r, "ctx")) {
        long t3 = System.nanoTime();
        ContextCache restored = loaded.toContextCache();
        for (int l = 0; l < shape.layers(); l++) {
          restored.attend(l, query, scratch);
        }
        long t4 = System.nanoTime();
        boolean exact = sameAttention(ctx, restored, query);
        restored.close();
        return new String[] {fmt((t2 - t1) / 1e6), fmt((t3 - t2) / 1e6), fmt((t4 - t3) / 1e6),
            exact ? "yes" : "NO"};
      }
    }
  }

  private static boolean sameAttention(ContextCache a, ContextCache b, float[] query) {
    for (int attempt = 0; attempt < 5; attempt++) {
      boolean same = true;
      for (int l = 0; l < a.shape().layers(); l++) {
        float[] x = new float[query.length];
        float[] y = new float[query.length];
        a.attend(l, query, x);
        b.attend(l, query, y);
        same &= Arrays.equals(x, y);
      }
      if (same) {
        return true; // retried: the JIT may change rounding between the first calls
      }
    }
    return false;
  }

  private static float[] query(AttentionShape shape, Random rnd) {
    float[] q = new float[shape.queryWidth()];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) rnd.nextGaussian();
    }
    return q;
  }

  /** Runs {@link #openChild} in a fresh JVM: open ms, load ms, first attention ms. */
  private static String[] runChild(Path dir) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = List.of(java, "--add-modules=jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED", "-Xmx4g", "-cp", System.getProperty("java.class.path"),
        CodecBenchmark.class.getName(), "--open", dir.toString(), "ctx");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IllegalStateException("fresh-JVM open failed:\n" + out);
    }
    for (String line : out.split("\n")) {
      if (line.startsWith("OPEN ")) {
        return Arrays.copyOfRange(line.split(" "), 1, 4);
      }
    }
    throw new IllegalStateException("no OPEN line from the child:\n" + out);
  }

  /** The fresh-JVM child: times open, load and the first attention of every layer. */
  private static void openChild(Path dir, String id) throws IOException {
    long t0 = System.nanoTime();
    try (Directory d = new MMapDirectory(dir); DirectoryReader r = DirectoryReader.open(d)) {
      long t1 = System.nanoTime();
      try (LoadedContext loaded = ContextReader.load(r, id)) {
        long t2 = System.nanoTime();
        AttentionShape shape = loaded.shape();
        ContextCache ctx = loaded.toContextCache();
        float[] out = new float[shape.queryWidth()];
        float[] q = query(shape, new Random(7));
        for (int l = 0; l < shape.layers(); l++) {
          ctx.attend(l, q, out);
        }
        long t3 = System.nanoTime();
        ctx.close();
        System.out.println("OPEN " + fmt((t1 - t0) / 1e6) + " " + fmt((t2 - t1) / 1e6) + " "
            + fmt((t3 - t2) / 1e6));
      }
    }
  }

  // ---- kNN: wave IVF vs HNSW on the same keys ----

  private static void knnRows(String name, Path dir, float[] keys, int d, float[][] queries,
      List<String[]> rows) throws Exception {
    int n = keys.length / d;
    System.out.println(name + ": exact top-" + K + " of " + queries.length + " queries");
    int[][] truth = new int[queries.length][];
    for (int i = 0; i < queries.length; i++) {
      truth[i] = exactTopK(keys, d, queries[i]);
    }
    Codec wave = new WaveCodec(new WaveVectorsFormat(), f -> true);
    Codec hnsw = Codec.getDefault();
    Object[][] variants = {
        {"wave IVF", wave, new Object[][] {
            {"1% of clusters", new WaveSearchStrategy(0.01, 1)},
            {"2% of clusters", new WaveSearchStrategy(0.02, 1)},
            {"default: 5% of clusters (>= 8)", null},
            {"10% of clusters", new WaveSearchStrategy(0.10, 1)},
            {"20% of clusters", new WaveSearchStrategy(0.20, 1)}}},
        {"Lucene HNSW (M=16, beam 100)", hnsw, new Object[][] {
            {"k=10", 10}, {"k=50, top 10", 50}, {"k=100, top 10", 100}}}};
    for (Object[] v : variants) {
      String format = (String) v[0];
      Path idx = dir.resolve(format.startsWith("wave") ? "wave" : "hnsw");
      double buildS = buildKnnIndex(idx, (Codec) v[1], keys, d);
      long size = filesByExtension(idx).values().stream().mapToLong(Long::longValue).sum();
      try (Directory dd = new MMapDirectory(idx); DirectoryReader r = DirectoryReader.open(dd)) {
        IndexSearcher s = new IndexSearcher(r);
        s.setQueryCache(null);
        for (int pass = 0; pass < 3; pass++) { // compile the search path before any timing
          for (Object[] setting : (Object[][]) v[2]) {
            for (float[] target : queries) {
              s.search(query(target, setting[1]), K);
            }
          }
        }
        boolean first = true;
        for (Object[] setting : (Object[][]) v[2]) {
          // Pass 0 warms the JIT up; then each query's latency is its fastest of PASSES passes,
          // which filters out the other processes of a shared machine.
          long[] nanos = new long[queries.length];
          Arrays.fill(nanos, Long.MAX_VALUE);
          double recall = 0;
          long scored = 0;
          for (int pass = 0; pass <= PASSES; pass++) {
            recall = 0;
            for (int i = 0; i < queries.length; i++) {
              Query q = query(queries[i], setting[1]);
              long t0 = System.nanoTime();
              var td = s.search(q, K);
              long t = System.nanoTime() - t0;
              if (pass > 0) {
                nanos[i] = Math.min(nanos[i], t);
              }
              recall += overlap(truth[i], td.scoreDocs, s);
            }
          }
          for (float[] target : queries) {
            scored += visited(r, target, setting[1]);
          }
          Arrays.sort(nanos);
          double mean = Arrays.stream(nanos).average().orElse(0) / 1e3;
          rows.add(new String[] {name, format, (String) setting[0], first ? fmt(buildS) : "",
              first ? mb(size) : "", String.format(Locale.ROOT, "%.3f",
                  recall / (queries.length * (double) K)),
              fmt(mean), fmt(nanos[nanos.length / 2] / 1e3),
              fmt(nanos[(int) (nanos.length * 0.99)] / 1e3),
              Long.toString(scored / queries.length)});
          first = false;
        }
      }
    }
    System.out.println(name + ": " + n + " keys indexed in both formats");
  }

  /** Vectors scored by the approximate search of one query (outside the timed loop). */
  private static long visited(DirectoryReader r, float[] q, Object setting) throws IOException {
    long total = 0;
    for (var leaf : r.leaves()) {
      int k = setting instanceof Integer c ? c : K;
      KnnSearchStrategy strategy = setting instanceof WaveSearchStrategy ws ? ws
          : KnnSearchStrategy.Hnsw.DEFAULT;
      TopKnnCollector collector = new TopKnnCollector(k, Integer.MAX_VALUE, strategy);
      leaf.reader().searchNearestVectors("k", q, collector,
          AcceptDocs.fromLiveDocs(leaf.reader().getLiveDocs(), leaf.reader().maxDoc()));
      total += collector.visitedCount();
    }
    return total;
  }

  private static Query query(float[] q, Object setting) {
    if (setting instanceof WaveSearchStrategy ws) {
      return new KnnFloatVectorQuery("k", q, K, null, ws);
    }
    if (setting instanceof Integer candidates) {
      return new KnnFloatVectorQuery("k", q, candidates, null, KnnSearchStrategy.Hnsw.DEFAULT);
    }
    return new KnnFloatVectorQuery("k", q, K);
  }

  private static double buildKnnIndex(Path dir, Codec codec, float[] keys, int d) throws IOException {
    IndexWriterConfig c = new IndexWriterConfig().setCodec(codec).setRAMBufferSizeMB(1024);
    long t0 = System.nanoTime();
    try (Directory dd = new MMapDirectory(dir); IndexWriter w = new IndexWriter(dd, c)) {
      for (int i = 0; i < keys.length / d; i++) {
        Document doc = new Document();
        doc.add(new StoredField("id", i));
        doc.add(new KnnFloatVectorField("k", Arrays.copyOfRange(keys, i * d, (i + 1) * d),
            VectorSimilarityFunction.MAXIMUM_INNER_PRODUCT));
        w.addDocument(doc);
      }
      w.forceMerge(1);
      w.commit();
    }
    return (System.nanoTime() - t0) / 1e9;
  }

  private static int[] exactTopK(float[] keys, int d, float[] q) {
    int n = keys.length / d;
    double[] score = new double[n];
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int t = 0; t < d; t++) {
        s += (double) q[t] * keys[i * d + t];
      }
      score[i] = s;
    }
    Integer[] ids = new Integer[n];
    for (int i = 0; i < n; i++) {
      ids[i] = i;
    }
    Arrays.sort(ids, (a, b) -> Double.compare(score[b], score[a]));
    int[] top = new int[K];
    for (int i = 0; i < K; i++) {
      top[i] = ids[i];
    }
    return top;
  }

  private static int overlap(int[] truth, ScoreDoc[] got, IndexSearcher s) throws IOException {
    Set<Integer> t = new HashSet<>();
    for (int id : truth) {
      t.add(id);
    }
    int hits = 0;
    for (int i = 0; i < Math.min(K, got.length); i++) {
      int id = s.storedFields().document(got[i].doc).getField("id").numericValue().intValue();
      hits += t.contains(id) ? 1 : 0;
    }
    return hits;
  }

  // ---- output ----

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (IOException e) {
      return "unknown";
    }
  }

  private static Map<String, Long> filesByExtension(Path dir) throws IOException {
    Map<String, Long> m = new TreeMap<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path p : files.toList()) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String ext = dot < 0 ? name.replaceAll("_\\d+$", "") : name.substring(dot + 1);
        m.merge(ext, Files.size(p), Long::sum);
      }
    }
    return m;
  }

  private static void table(String[] header, List<String[]> rows) {
    System.out.println("| " + String.join(" | ", header) + " |");
    System.out.println("|" + "---|".repeat(header.length));
    for (String[] r : rows) {
      System.out.println("| " + String.join(" | ", r) + " |");
    }
  }

  private static String mb(long bytes) {
    return String.format(Locale.ROOT, "%.1f", bytes / 1e6);
  }

  private static String fmt(double x) {
    return x >= 100 ? String.format(Locale.ROOT, "%.0f", x) : String.format(Locale.ROOT, "%.2f", x);
  }
}
