package org.retroinfer.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.lucene.codecs.CompoundDirectory;
import org.apache.lucene.index.IndexFileNames;
import org.apache.lucene.index.SegmentCommitInfo;
import org.apache.lucene.index.SegmentInfos;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.store.IOContext;
import org.apache.lucene.store.IndexInput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.cli.RetroInfer;
import org.retroinfer.model.eval.PythonCorpus;
import picocli.CommandLine;

/**
 * Fault injection on a small store made by {@code retroinfer store put} (a 1,300-token prompt of the
 * shipped model): every file of it (store.properties, the segments file, each segment's .si, .cfe
 * and compound .cfs) and every file inside each compound file is damaged, one trial at a time, on
 * a fresh copy of the pristine store: a byte changed at a seeded random offset, or the file
 * truncated. Then the read paths run through the command line, as a user runs them: {@code store
 * list}, {@code store get} with decoding, {@code inspect}. Each must either stop with the one
 * damaged-store error (exit code 4, the single line {@code retroinfer: the store is damaged: ...},
 * no stack trace, no library internals) or print exactly what it prints for the pristine store.
 * Never a different answer, never a raw exception. Prints the counts.
 */
class StoreFaultInjectionTest {
  private static final long SEED = 16;
  private static final int FLIPS_PER_FILE = 3;
  private static final int FLIPS_PER_INNER_FILE = 2;
  private static final String DAMAGED = "retroinfer: the store is damaged: ";

  @TempDir Path dir;

  record Run(int exit, String out, String err) {}

  static Run run(Object... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = RetroInfer.commandLine();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int exit = cl.execute(Arrays.stream(args).map(String::valueOf).toArray(String[]::new));
    return new Run(exit, out.toString(), err.toString());
  }

  /** A byte range of a file to damage: a whole file, or one file inside a compound file. */
  record Target(Path file, long from, long length, String kind) {}

  /** What the read paths print, with the fields that vary between runs (times, paths) removed. */
  static List<Run> readPaths(Path store, Path prompt) {
    List<Run> runs = new ArrayList<>();
    runs.add(run("store", "list", "--store", store, "--json"));
    runs.add(run("store", "get", "--store", store, "--file", prompt, "--generate", 3, "--json"));
    runs.add(run("inspect", store, "--json"));
    return runs;
  }

  static String normalized(Run r) {
    try {
      JsonNode n = new ObjectMapper().readTree(r.out());
      if (n instanceof ObjectNode o) {
        o.remove("firstTokenSeconds");
        o.remove("timesMs");
        o.remove("directory");
      }
      return n.toString();
    } catch (IOException e) {
      return r.out();
    }
  }

  @Test
  void everyDamagedFileIsReportedOrChangesNothing() throws Exception {
    Path pristine = dir.resolve("pristine");
    Path prompt = dir.resolve("prompt.py");
    Files.write(prompt, PythonCorpus.fallback().text(1300, new SplittableRandom(SEED)));
    Run put = run("store", "put", "--store", pristine, "--file", prompt, "--json");
    assertEquals(0, put.exit(), put.err());
    List<Run> expected = readPaths(pristine, prompt);
    for (Run r : expected) {
      assertEquals(0, r.exit(), "the pristine store: " + r.err());
    }
    JsonNode get = new ObjectMapper().readTree(expected.get(1).out());
    int tokens = new ObjectMapper().readTree(put.out()).get("context").get("tokens").asInt();
    assertEquals(tokens, get.get("reusedTokens").asInt(), "the whole prompt comes from the store");
    assertEquals(3, get.get("generated").asText().length());
    assertTrue(normalized(expected.get(2)).contains("\"clean\":true"));

    List<Target> targets = targets(pristine);
    SplittableRandom random = new SplittableRandom(SEED);
    Map<String, int[]> byKind = new TreeMap<>(); // kind -> {trials, detected, identical}
    List<String> problems = new ArrayList<>();
    int trials = 0;
    int detected = 0;
    int identical = 0;
    for (Target t : targets) {
      List<String> damages = new ArrayList<>();
      boolean inner = t.kind().contains(" in ");
      for (int i = 0; i < (inner ? FLIPS_PER_INNER_FILE : FLIPS_PER_FILE); i++) {
        damages.add("flip " + (t.from() + random.nextLong(t.length())) + " "
            + (1 + random.nextInt(255)));
      }
      if (!inner) {
        for (long keep : new long[] {0, t.length() / 2, t.length() - 1}) {
          damages.add("cut " + keep);
        }
      }
      for (String damage : damages) {
        Path copy = copy(pristine, dir.resolve("trial-" + trials));
        damage(copy.resolve(pristine.relativize(t.file())), damage);
        String what = damage + " of " + pristine.relativize(t.file()) + " (" + t.kind() + ")";
        boolean anyDetected = false;
        List<Run> got = readPaths(copy, prompt);
        for (int c = 0; c < got.size(); c++) {
          Run r = got.get(c);
          String command = List.of("store list", "store get --generate", "inspect").get(c);
          if (r.exit() == 0) {
            if (!normalized(expected.get(c)).equals(normalized(r))) {
              problems.add(what + ": " + command + " gave a different answer from the pristine"
                  + " store's, with exit code 0:\n" + r.out());
            }
          } else if (r.exit() == RetroInfer.EXIT_DAMAGED) {
            String err = r.err().strip();
            if (!err.startsWith(DAMAGED) || err.lines().count() != 1 || err.contains("Exception")
                || err.contains("\tat ") || err.contains("java.")) {
              problems.add(what + ": " + command + " must report the damage in one line, without"
                  + " internals:\n" + r.err());
            }
            anyDetected = true;
          } else {
            problems.add(what + ": " + command + " exited with " + r.exit() + ", neither 0 nor the"
                + " damaged-store code:\n" + r.err() + r.out());
          }
        }
        int[] k = byKind.computeIfAbsent(t.kind(), x -> new int[3]);
        k[0]++;
        trials++;
        if (anyDetected) {
          k[1]++;
          detected++;
        } else {
          k[2]++;
          identical++;
        }
        delete(copy);
      }
    }
    StringBuilder table = new StringBuilder();
    table.append(String.format("store fault injection (seed %d): %d trials over %d targets,"
        + " %d detected (damaged-store error), %d identical to the pristine store, 0 different%n",
        SEED, trials, targets.size(), detected, identical));
    byKind.forEach((kind, k) -> table.append(String.format("  %-16s %4d trials %4d detected %4d"
        + " identical%n", kind, k[0], k[1], k[2])));
    System.out.print(table);
    if (!problems.isEmpty()) {
      fail(problems.size() + " of the read paths' answers were neither the damaged-store error nor"
          + " the pristine answer; the first ones:\n"
          + String.join("\n", problems.subList(0, Math.min(15, problems.size()))));
    }
    assertEquals(trials, detected + identical);
    assertTrue(detected > trials / 2, "most damage must be seen: " + table);
  }

  /** Every non-empty file of the store, and every file inside its compound files. */
  static List<Target> targets(Path store) throws IOException {
    List<Target> out = new ArrayList<>();
    try (Stream<Path> files = Files.walk(store)) {
      for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
        String name = f.getFileName().toString();
        long size = Files.size(f);
        if (size > 0) { // write.lock is empty: nothing to flip or cut
          out.add(new Target(f, 0, size, name.startsWith("segments_") ? "segments_N"
              : name.contains(".") ? IndexFileNames.getExtension(name) : name));
        }
      }
    }
    try (Directory d = FSDirectory.open(store.resolve("index"))) {
      for (SegmentCommitInfo si : SegmentInfos.readLatestCommit(d)) {
        if (!si.info.getUseCompoundFile()) {
          continue;
        }
        String cfsName = IndexFileNames.segmentFileName(si.info.name, "", "cfs");
        Path cfs = store.resolve("index").resolve(cfsName);
        byte[] container = Files.readAllBytes(cfs);
        try (CompoundDirectory inner = si.info.getCodec().compoundFormat()
            .getCompoundReader(d, si.info)) {
          for (String f : inner.listAll()) {
            byte[] bytes;
            try (IndexInput in = inner.openInput(f, IOContext.READONCE)) {
              bytes = new byte[(int) in.length()];
              in.readBytes(bytes, 0, bytes.length);
            }
            long at = indexOf(container, bytes);
            assertTrue(at >= 0, f + " not found inside " + cfsName);
            out.add(new Target(cfs, at, bytes.length, IndexFileNames.getExtension(f) + " in cfs"));
          }
        }
      }
    }
    return out;
  }

  static long indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static void damage(Path file, String damage) throws IOException {
    String[] p = damage.split(" ");
    byte[] bytes = Files.readAllBytes(file);
    if (p[0].equals("flip")) {
      int at = Integer.parseInt(p[1]);
      bytes[at] ^= (byte) Integer.parseInt(p[2]);
      Files.write(file, bytes);
    } else {
      Files.write(file, Arrays.copyOf(bytes, Integer.parseInt(p[1])));
    }
  }

  private static Path copy(Path from, Path to) throws IOException {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path f : files.toList()) {
        Path dst = to.resolve(from.relativize(f));
        if (Files.isDirectory(f)) {
          Files.createDirectories(dst);
        } else {
          Files.copy(f, dst);
        }
      }
    }
    return to;
  }

  private static void delete(Path root) throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    }
  }
}
