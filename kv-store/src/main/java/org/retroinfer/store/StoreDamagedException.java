package org.retroinfer.store;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.lucene.index.CorruptIndexException;

/**
 * The store's files are damaged: a checksum does not match, a file is truncated, missing or cannot
 * be decoded, or what was read does not form what was written. It is the one error type for a
 * damaged store: every read path of {@link ContextStore} turns Lucene's and the codec's errors into
 * it, and the command line prints its message as one line, with its own exit code. Nothing of the
 * damaged part was served.
 *
 * <p>The message reads {@code the store is damaged: context <id>, file <name>: <what>; ...} (the
 * context and the file when they are known) and says what to do. Damage found in a context fetched
 * from a remote store (read from a temporary copy that is removed afterwards) is reported by
 * {@link #fetchedFrom}, whose message names the remote store and the context instead.
 */
public final class StoreDamagedException extends IOException {
  private static final Pattern PATH = Pattern.compile("path=\"([^\"]+)\"");
  private static final Pattern SLICE = Pattern.compile("\\[slice=([^\\]]+)\\]");
  private static final Pattern FILE = Pattern.compile(
      "(?:_[0-9a-z]+[\\w]*\\.\\w+|segments_[0-9a-z]+)(?: in _[0-9a-z]+\\.cfs)?");

  private final Path store;
  private final String context;
  private final String file;
  private final String what;
  private final String remote; // the remote store the damaged context was fetched from, or null

  /**
   * @param store the store directory
   * @param context the context concerned (or several, separated by ", "), or null
   * @param file the damaged file, relative to the store directory, or null
   * @param what what is wrong, in words
   */
  public StoreDamagedException(Path store, String context, String file, String what,
      Throwable cause) {
    this(store, context, file, what, cause, null, message(store, context, file, what));
  }

  private StoreDamagedException(Path store, String context, String file, String what,
      Throwable cause, String remote, String message) {
    super(message, cause);
    this.store = store;
    this.context = context;
    this.file = file;
    this.what = what;
    this.remote = remote;
  }

  /**
   * This damage, found in a temporary copy of context {@code context} (or of several, separated by
   * ", ") fetched from the remote store {@code remote} ({@code http://HOST:PORT/INDEX}): the copy
   * is removed when the command ends, so the message names the remote store and the context rather
   * than the copy, and says how to check it there or delete it and put it again. The file, when
   * known, is the file of the context as it travels (its pack).
   *
   * @param remote the remote store, {@code http://HOST:PORT/INDEX}
   * @param context the context fetched, or null to keep the one this damage names
   * @param tenant whether the command ran with a --tenant (the commands it suggests need the same)
   * @param inspected whether the damage was found by inspecting the remote store (the message
   *     then does not suggest inspecting it)
   */
  public StoreDamagedException fetchedFrom(String remote, String context, boolean tenant,
      boolean inspected) {
    String id = context != null ? context : this.context;
    StringBuilder b = new StringBuilder("the store is damaged: ");
    b.append(id == null ? "a context" : (id.contains(", ") ? "contexts " : "context ") + id)
        .append(" of the remote store ").append(remote).append(", ");
    if (file != null) {
      b.append("file ").append(file).append(" of it as fetched, ");
    }
    b.append(what).append("; nothing damaged was served. ");
    if (!inspected) {
      b.append("Run 'retroinfer inspect ").append(remote).append("' to check its contexts; ");
    }
    b.append(inspected ? "The" : "the").append(" store is a cache: delete ");
    boolean several = id != null && id.contains(", ");
    b.append(several ? "each" : "it").append(" with 'retroinfer store delete --store ")
        .append(remote).append(' ').append(several || id == null ? "ID" : id).append('\'');
    b.append(" and put it again with 'retroinfer store put --store ").append(remote)
        .append("' and its prompt").append(tenant ? " (each with the same --tenant)" : "");
    return new StoreDamagedException(store, id, file, what, this, remote, b.toString());
  }

  /**
   * The damage that {@code e}, thrown while reading the store (a {@code CorruptIndexException}, a
   * truncated or missing file, an error decoding it), reports, with the file it names.
   */
  public static StoreDamagedException of(Path store, String context, Throwable e) {
    if (e instanceof StoreDamagedException d) {
      return d.context != null || context == null || d.remote != null ? d
          : new StoreDamagedException(store, context, d.file, d.what, d.getCause());
    }
    String what;
    String file = null;
    if (e instanceof CorruptIndexException c) {
      what = c.getOriginalMessage();
      file = indexFile(c.getResourceDescription());
    } else if (e instanceof EOFException) {
      what = "a file ends before its end (truncated)";
      file = indexFile(String.valueOf(e.getMessage()));
    } else if (e instanceof org.apache.lucene.index.IndexFormatTooOldException
        || e instanceof org.apache.lucene.index.IndexFormatTooNewException) {
      what = "a file has a format version this code does not read";
      file = indexFile(String.valueOf(e.getMessage()));
    } else if (e instanceof java.nio.file.NoSuchFileException n) {
      what = "a file of its index is missing";
      file = n.getFile() == null ? null : indexFile("path=\"" + n.getFile() + "\"");
    } else {
      what = "its index cannot be decoded";
    }
    return new StoreDamagedException(store, context, file, what, e);
  }

  /**
   * The index file a Lucene resource description names ({@code index/_1.cfs (part _1.fdt)}), or null.
   */
  static String indexFile(String resource) {
    if (resource == null) {
      return null;
    }
    Matcher path = PATH.matcher(resource);
    if (path.find()) {
      String name = Path.of(path.group(1)).getFileName().toString();
      Matcher slice = SLICE.matcher(resource);
      return "index/" + name + (slice.find() ? " (part " + slice.group(1) + ")" : "");
    }
    Matcher file = FILE.matcher(resource);
    if (file.matches()) {
      String[] parts = resource.split(" in ");
      return parts.length == 2 ? "index/" + parts[1] + " (part " + parts[0] + ")"
          : "index/" + resource;
    }
    return null;
  }

  private static String message(Path store, String context, String file, String what) {
    StringBuilder b = new StringBuilder("the store is damaged: ");
    if (context != null) {
      b.append(context.contains(", ") ? "contexts " : "context ").append(context).append(", ");
    }
    if (file != null) {
      b.append("file ").append(file).append(", ");
    }
    b.append(what).append("; nothing damaged was served. Run 'retroinfer inspect ").append(store)
        .append("' to check every file. The store is a cache: move it aside and put the contexts"
            + " again, or restore it from a backup");
    return b.toString();
  }

  /** The store directory (for a context fetched from a remote store, its temporary copy). */
  public Path store() {
    return store;
  }

  /** The remote store the damaged context was fetched from ({@link #fetchedFrom}), if any. */
  public Optional<String> remote() {
    return Optional.ofNullable(remote);
  }

  /** The context concerned, if known. */
  public Optional<String> context() {
    return Optional.ofNullable(context);
  }

  /** What is wrong, in words. */
  public String what() {
    return what;
  }

  /** The damaged file (relative to the store directory), if known. */
  public Optional<String> file() {
    return Optional.ofNullable(file);
  }
}
