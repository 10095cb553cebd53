package org.retroinfer.model.eval;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import org.retroinfer.model.tokenizer.ByteTokenizer;

/**
 * Python source text for haystacks. The default, {@link #stdlib()}, is a fixed selection of Python
 * 3.11 standard-library modules shipped in this module (with the PSF licence), so that a seed gives
 * the same text on every machine; the alternatives are the {@code .py} files of this machine's
 * Python installations ({@link #system()}: they differ between machines and change when a package is
 * installed), of given directories ({@link #of}), or a few snippets written for this project
 * ({@link #fallback()}). Files are listed in sorted name order and drawn with a seeded generator, so
 * a given corpus, seed and length always give the same text.
 */
public final class PythonCorpus {
  /** Where {@link #system()} looks. */
  public static final Path DEFAULT_ROOT = Path.of("/usr/lib");
  /** Files smaller than this carry little text; larger ones would dominate a haystack. */
  static final int MIN_FILE_BYTES = 1024;
  static final int MAX_FILE_BYTES = 256 * 1024;
  private static final String FALLBACK = "/org/retroinfer/model/eval/fallback/";
  private static final String STDLIB = "/org/retroinfer/model/eval/stdlib/python-3.11-stdlib.zip";
  /** The {@code --haystack} of the commands when none is given: {@link #stdlib()}. */
  public static final String DEFAULT_NAME = "stdlib";
  /** What {@code --haystack} accepts, in words (for option descriptions and errors). */
  public static final String CHOICES = "'stdlib' (the default: Python 3.11 standard-library modules"
      + " shipped with the project, the same on every machine), 'system' (the Python sources in"
      + " /usr/lib/python3*, which differ between machines), 'builtin' (a few snippets), or"
      + " comma-separated directories of .py files";

  private final String description;
  private final List<byte[]> documents;

  private PythonCorpus(String description, List<byte[]> documents) {
    if (documents.isEmpty()) {
      throw new IllegalArgumentException("corpus '" + description + "' has no documents");
    }
    this.description = description;
    this.documents = documents;
  }

  /**
   * The corpus shipped with this module: 102 modules of the Python 3.11 standard library (4-32 KB
   * each, 1.5 MB in all), read from a zip resource in name order. Its licence and provenance are in
   * {@code stdlib/LICENSE.txt} and {@code stdlib/README.txt} beside it.
   */
  public static PythonCorpus stdlib() {
    return Stdlib.CORPUS;
  }

  /** Reads the shipped zip once, on first use. */
  private static final class Stdlib {
    static final PythonCorpus CORPUS = read();

    private static PythonCorpus read() {
      InputStream in = PythonCorpus.class.getResourceAsStream(STDLIB);
      if (in == null) {
        throw new IllegalStateException("the shipped haystack corpus " + STDLIB
            + " is missing from the class path; rebuild the model module");
      }
      TreeMap<String, byte[]> files = new TreeMap<>();
      try (ZipInputStream zip = new ZipInputStream(in)) {
        for (ZipEntry e; (e = zip.getNextEntry()) != null; ) {
          if (!e.isDirectory() && e.getName().endsWith(".py")) {
            files.put(e.getName(), zip.readAllBytes());
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read the shipped haystack corpus " + STDLIB, e);
      }
      return new PythonCorpus("Python 3.11 standard library, " + files.size()
          + " modules shipped with the project", List.copyOf(files.values()));
    }
  }

  /**
   * The Python sources of this machine ({@code /usr/lib/python3*}).
   *
   * @throws IllegalArgumentException if there are none
   */
  public static PythonCorpus system() {
    List<Path> roots = new ArrayList<>();
    if (Files.isDirectory(DEFAULT_ROOT)) {
      try (Stream<Path> s = Files.list(DEFAULT_ROOT)) {
        s.filter(p -> p.getFileName().toString().startsWith("python3") && Files.isDirectory(p))
            .sorted().forEach(roots::add);
      } catch (IOException e) {
        // unreadable: fall back below
      }
    }
    List<byte[]> docs = roots.isEmpty() ? List.of() : read(roots);
    if (docs.isEmpty()) {
      throw new IllegalArgumentException("this machine has no Python sources in " + DEFAULT_ROOT
          + "/python3*; use the shipped corpus instead (--haystack " + DEFAULT_NAME + ")");
    }
    return new PythonCorpus("python sources in " + roots, docs);
  }

  /**
   * The {@code .py} files under {@code roots}.
   *
   * @throws IllegalArgumentException if there are none
   */
  public static PythonCorpus of(List<Path> roots) {
    for (Path r : roots) {
      if (!Files.isDirectory(r)) {
        throw new IllegalArgumentException("haystack directory " + r + " does not exist; expected "
            + CHOICES);
      }
    }
    List<byte[]> docs = read(roots);
    if (docs.isEmpty()) {
      throw new IllegalArgumentException("no .py files of " + MIN_FILE_BYTES + ".." + MAX_FILE_BYTES
          + " bytes under " + roots + "; point --haystack at Python sources, or use '"
          + DEFAULT_NAME + "'");
    }
    return new PythonCorpus("python sources in " + roots, docs);
  }

  /** The snippets carried in this module (about 8 KB, written for this project). */
  public static PythonCorpus fallback() {
    List<byte[]> docs = new ArrayList<>();
    try (InputStream index = PythonCorpus.class.getResourceAsStream(FALLBACK + "index.txt")) {
      if (index == null) {
        throw new IllegalStateException("the built-in corpus is missing from the class path");
      }
      for (String name : new String(index.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        if (name.isBlank()) {
          continue;
        }
        try (InputStream in = PythonCorpus.class.getResourceAsStream(FALLBACK + name.strip())) {
          docs.add(in.readAllBytes());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new PythonCorpus("built-in snippets (" + docs.size() + " files)", docs);
  }

  /**
   * "stdlib" for {@link #stdlib()}, "system" for {@link #system()}, "builtin" for
   * {@link #fallback()} (any case), otherwise a comma-separated list of directories.
   *
   * @throws IllegalArgumentException if there is no such corpus
   */
  public static PythonCorpus named(String spec) {
    return switch (spec.strip().toLowerCase(Locale.ROOT)) {
      case "stdlib" -> stdlib();
      case "system" -> system();
      case "builtin" -> fallback();
      case "" -> throw new IllegalArgumentException("--haystack is empty; expected " + CHOICES);
      default -> of(Stream.of(spec.split(",")).map(String::strip).map(Path::of).toList());
    };
  }

  private static List<byte[]> read(List<Path> roots) {
    List<Path> files = new ArrayList<>();
    for (Path root : roots) {
      try (Stream<Path> s = Files.walk(root)) {
        s.filter(p -> p.toString().endsWith(".py") && Files.isRegularFile(p)).forEach(files::add);
      } catch (IOException | UncheckedIOException e) {
        // a directory we may not read: skip it
      }
    }
    files.sort(Comparator.comparing(Path::toString));
    List<byte[]> docs = new ArrayList<>();
    for (Path f : files) {
      try {
        long size = Files.size(f);
        if (size >= MIN_FILE_BYTES && size <= MAX_FILE_BYTES) {
          docs.add(Files.readAllBytes(f));
        }
      } catch (IOException e) {
        // unreadable file: skip it
      }
    }
    return docs;
  }

  public String description() {
    return description;
  }

  public int documents() {
    return documents.size();
  }

  /**
   * {@code length} bytes of text: documents drawn at random (without repeats until all were used),
   * each preceded by the document-start byte (2), as in the model's training data.
   */
  public byte[] text(int length, SplittableRandom random) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(length + MAX_FILE_BYTES);
    List<Integer> bag = new ArrayList<>();
    while (out.size() < length) {
      if (bag.isEmpty()) {
        for (int i = 0; i < documents.size(); i++) {
          bag.add(i);
        }
      }
      byte[] doc = documents.get(bag.remove(random.nextInt(bag.size())));
      out.write(ByteTokenizer.DOCUMENT_START);
      out.writeBytes(doc);
      if (doc.length > 0 && doc[doc.length - 1] != '\n') {
        out.write('\n');
      }
    }
    return java.util.Arrays.copyOf(out.toByteArray(), length);
  }

  @Override
  public String toString() {
    return description;
  }
}
