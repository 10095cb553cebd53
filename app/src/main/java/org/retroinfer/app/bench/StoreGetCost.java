package org.retroinfer.app.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.lucene.codecs.CompoundDirectory;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FilterLeafReader;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.index.SegmentReader;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.retroinfer.lucene.SegmentChecksums;
import org.retroinfer.model.eval.PythonCorpus;
import org.retroinfer.store.ContextStore;

/**
 * What the store's verification costs {@code retroinfer store get}, measured in one run: two
 * builds of the command line (the jar before the verification and the jar after it) each put the
 * same {@code TOKENS}-token prompt into a store of their own, then answer {@code store get
 * --generate 1} on it in alternating order, {@code PAIRS} times, each in a fresh JVM; the wall
 * time of each process and the time to its first token are printed, with their medians. Then, in
 * this JVM (the code after), the parts of opening the store: Lucene's open alone, and the
 * checksums of the parts Lucene decodes unverified ({@link SegmentChecksums}), medians of 20.
 *
 * <p>Args: {@code BEFORE_JAR AFTER_JAR [TOKENS (16384)] [PAIRS (5)] [WORK_DIR (a temp dir)]}.
 * Run it with the after jar on the class path (app/scripts/verify-cost-bench.sh).
 */
public final class StoreGetCost {
  private static final Pattern FIRST_TOKEN = Pattern.compile("\"firstTokenSeconds\"\\s*:\\s*([0-9.Ee-]+)");

  private StoreGetCost() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: StoreGetCost BEFORE_JAR AFTER_JAR [TOKENS] [PAIRS] [WORK_DIR]");
      System.exit(2);
    }
    Path[] jars = {Path.of(args[0]), Path.of(args[1])};
    String[] names = {"before", "after"};
    int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 16384;
    int pairs = args.length > 3 ? Integer.parseInt(args[3]) : 5;
    Path work = args.length > 4 ? Path.of(args[4]) : Files.createTempDirectory("retroinfer-verify");
    Path prompt = work.resolve("prompt.py");
    // the document-start token the command adds makes TOKENS tokens
    Files.write(prompt, PythonCorpus.fallback().text(tokens - 1, new SplittableRandom(1)));
    System.out.println("work " + work + ", prompt of " + tokens + " tokens");
    for (int j = 0; j < 2; j++) {
      Path store = work.resolve("store-" + names[j]);
      if (!Files.exists(store)) {
        Result put = run(jars[j], "store", "put", "--store", store.toString(), "--file",
            prompt.toString(), "--json");
        System.out.printf("%-6s put: %.1f s%n", names[j], put.millis / 1e3);
      }
    }
    List<List<Double>> wall = List.of(new ArrayList<>(), new ArrayList<>());
    List<List<Double>> first = List.of(new ArrayList<>(), new ArrayList<>());
    for (int p = 0; p < pairs; p++) {
      for (int k = 0; k < 2; k++) {
        int j = (p + k) % 2; // rotate the order
        Result r = run(jars[j], "store", "get", "--store", work.resolve("store-" + names[j])
            .toString(), "--file", prompt.toString(), "--generate", "1", "--json");
        Matcher m = FIRST_TOKEN.matcher(r.out);
        if (!m.find()) {
          throw new IllegalStateException(names[j] + " printed no firstTokenSeconds:\n" + r.out);
        }
        wall.get(j).add(r.millis);
        first.get(j).add(Double.parseDouble(m.group(1)) * 1e3);
        System.out.printf("pair %d %-6s: process %,7.0f ms, first token %,6.0f ms%n", p, names[j],
            r.millis, first.get(j).getLast());
      }
    }
    System.out.printf("%nstore get --generate 1, %d tokens, %d alternating pairs (medians):%n",
        tokens, pairs);
    System.out.printf("%-8s %12s %16s%n", "", "process ms", "first token ms");
    for (int j = 0; j < 2; j++) {
      System.out.printf("%-8s %12.0f %16.0f%n", names[j], median(wall.get(j)),
          median(first.get(j)));
    }
    parts(work.resolve("store-after"));
  }

  /** The open of the after store, in parts: Lucene alone, the checksums, the store's open. */
  private static void parts(Path store) throws IOException {
    List<Double> open = new ArrayList<>();
    List<Double> verify = new ArrayList<>();
    List<Double> storeOpen = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      try (Directory d = FSDirectory.open(store.resolve("index"))) {
        long t0 = System.nanoTime();
        try (DirectoryReader r = DirectoryReader.open(d)) {
          long t1 = System.nanoTime();
          for (LeafReaderContext leaf : r.leaves()) {
            SegmentChecksums.verify((SegmentReader) FilterLeafReader.unwrap(leaf.reader()));
          }
          long t2 = System.nanoTime();
          open.add((t1 - t0) / 1e6);
          verify.add((t2 - t1) / 1e6);
        }
      }
      long t0 = System.nanoTime();
      try (ContextStore s = ContextStore.openReadOnly(store)) {
        storeOpen.add((System.nanoTime() - t0) / 1e6);
      }
    }
    long bytes;
    try (var files = Files.walk(store)) {
      bytes = files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
    System.out.printf("%nopening the after store in this JVM (%,d bytes, %,d of them in the parts"
        + " the checksums read), first / median of 20: Lucene's open %.2f / %.2f ms, the checksums"
        + " (SegmentChecksums) %.2f / %.2f ms, ContextStore.openReadOnly (both) %.2f / %.2f ms%n",
        bytes, checkedBytes(store), open.getFirst(), median(open), verify.getFirst(),
        median(verify), storeOpen.getFirst(), median(storeOpen));
  }

  /** Bytes of the files SegmentChecksums reads: all but the K/V format's (inside compound files too). */
  private static long checkedBytes(Path store) throws IOException {
    long bytes = 0;
    try (Directory d = FSDirectory.open(store.resolve("index"))) {
      for (SegmentCommitInfo si : SegmentInfos.readLatestCommit(d)) {
        if (si.info.getUseCompoundFile()) {
          try (CompoundDirectory cfs = si.info.getCodec().compoundFormat()
              .getCompoundReader(d, si.info)) {
            for (String f : cfs.listAll()) {
              bytes += checked(f) ? cfs.fileLength(f) : 0;
            }
          }
        } else {
          for (String f : si.files()) {
            bytes += checked(f) ? d.fileLength(f) : 0;
          }
        }
      }
    }
    return bytes;
  }

  /**
   * Whether SegmentChecksums reads this file: the data files of stored fields, terms, postings, doc
   * values, norms, points and term vectors (their metadata files Lucene verifies when it opens them).
   */
  private static boolean checked(String file) {
    return List.of("fdt", "fdx", "tim", "tip", "doc", "pos", "pay", "dvd", "nvd", "kdd", "kdi",
        "tvd", "tvx").contains(String.valueOf(IndexFileNames.getExtension(file)));
  }

  record Result(double millis, String out) {}

  /** Runs the command line of {@code jar} in a fresh JVM with this JVM's flags; times it. */
  private static Result run(Path jar, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-") || a.startsWith("--enable-native-access")
          || a.startsWith("--sun-misc") || a.startsWith("-D")) {
        cmd.add(a);
      }
    }
    cmd.add("-jar");
    cmd.add(jar.toString());
    cmd.addAll(Arrays.asList(args));
    long t0 = System.nanoTime();
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int code = p.waitFor();
    double millis = (System.nanoTime() - t0) / 1e6;
    if (code != 0) {
      throw new IllegalStateException(jar + " " + String.join(" ", args) + " exited with " + code
          + ":\n" + out);
    }
    return new Result(millis, out);
  }

  private static double median(List<Double> xs) {
    double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  }
}
