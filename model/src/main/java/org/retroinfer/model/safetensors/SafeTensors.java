package org.retroinfer.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A safetensors file, memory-mapped: tensor data is read in place through {@link MemorySegment}s
 * and never copied through the Java heap.
 *
 * <p>File format (Hugging Face safetensors): an unsigned 64-bit little-endian header length
 * {@code N}; {@code N} bytes of UTF-8 JSON mapping each tensor name to
 * {@code {"dtype": "F16", "shape": [rows, cols], "data_offsets": [begin, end]}} (offsets relative to
 * the data section), plus an optional {@code "__metadata__"} object of strings; then the data
 * section, row-major, little-endian.
 *
 * <p>{@link #open} validates the whole header (sizes, offsets within the file, byte sizes that match
 * shape and dtype) so that a truncated or corrupt file fails at open with a message naming the
 * tensor, never later with garbage numbers. Tensors of dtypes this runtime does not read are allowed
 * in the file and rejected only when asked for. Closing unmaps the file; segments handed out before
 * become invalid.
 */
public final class SafeTensors implements AutoCloseable {
  /** Headers larger than this are rejected as corrupt (the format's own reference limit). */
  static final long MAX_HEADER_BYTES = 100L << 20;

  private static final ValueLayout.OfLong LONG_LE =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path path;
  private final Arena arena;
  private final MemorySegment data;
  private final Map<String, Entry> entries;
  private final Map<String, String> metadata;

  private record Entry(String dtype, long[] shape, long begin, long end) {}

  private SafeTensors(Path path, Arena arena, MemorySegment data, Map<String, Entry> entries,
      Map<String, String> metadata) {
    this.path = path;
    this.arena = arena;
    this.data = data;
    this.entries = entries;
    this.metadata = metadata;
  }

  /**
   * Maps {@code file} read-only and parses its header.
   *
   * @throws CheckpointException if the file is not a valid safetensors file
   * @throws IOException if it cannot be read
   */
  public static SafeTensors open(Path file) throws IOException {
    Arena arena = Arena.ofShared();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) {
        throw new CheckpointException(file + " is " + size + " bytes long; a safetensors file starts"
            + " with an 8-byte header length. Is the download complete?");
      }
      MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      long headerLen = all.get(LONG_LE, 0);
      if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
        throw new CheckpointException(file + ": header length " + Long.toUnsignedString(headerLen)
            + " does not fit a file of " + size + " bytes (at most " + Math.min(MAX_HEADER_BYTES,
                size - 8) + "); the file is truncated or not a safetensors file");
      }
      byte[] header = all.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
      MemorySegment data = all.asSlice(8 + headerLen);
      Map<String, String> metadata = new TreeMap<>();
      Map<String, Entry> entries = parseHeader(file, header, data.byteSize(), metadata);
      return new SafeTensors(file, arena, data, entries, Collections.unmodifiableMap(metadata));
    } catch (IOException | RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  private static Map<String, Entry> parseHeader(Path file, byte[] header, long dataBytes,
      Map<String, String> metadata) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(new String(header, StandardCharsets.UTF_8));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new CheckpointException(file + ": the header is not valid JSON (" + e.getOriginalMessage()
          + "); the file is corrupt or not a safetensors file", e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file + ": the header is not a JSON object");
    }
    Map<String, Entry> entries = new TreeMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      String name = field.getKey();
      JsonNode node = field.getValue();
      if (name.equals("__metadata__")) {
        node.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
        continue;
      }
      entries.put(name, parseEntry(file, name, node, dataBytes));
    }
    return entries;
  }

  private static Entry parseEntry(Path file, String name, JsonNode node, long dataBytes) {
    String where = file + ": tensor '" + name + "'";
    JsonNode dtype = node.get("dtype");
    JsonNode shape = node.get("shape");
    JsonNode offsets = node.get("data_offsets");
    if (dtype == null || !dtype.isTextual() || shape == null || !shape.isArray() || offsets == null
        || !offsets.isArray() || offsets.size() != 2) {
      throw new CheckpointException(where + " lacks dtype, shape or data_offsets [begin, end]: "
          + node);
    }
    long[] dims = new long[shape.size()];
    for (int i = 0; i < dims.length; i++) {
      if (!shape.get(i).canConvertToLong() || shape.get(i).asLong() < 0) {
        throw new CheckpointException(where + " has an invalid shape " + shape);
      }
      dims[i] = shape.get(i).asLong();
    }
    long begin = offsets.get(0).asLong(-1);
    long end = offsets.get(1).asLong(-1);
    if (begin < 0 || end < begin || end > dataBytes) {
      throw new CheckpointException(where + " has data_offsets [" + begin + ", " + end
          + "] outside the data section of " + dataBytes + " bytes; the file is truncated or corrupt");
    }
    for (TensorDType t : TensorDType.values()) {
      if (t.name().equals(dtype.asText())) {
        long elements = 1;
        for (long d : dims) {
          elements = Math.multiplyExact(elements, d);
        }
        if (Math.multiplyExact(elements, t.bytes()) != end - begin) {
          throw new CheckpointException(where + ": shape " + Arrays.toString(dims) + " of " + t
              + " needs " + elements * t.bytes() + " bytes but data_offsets span " + (end - begin));
        }
      }
    }
    return new Entry(dtype.asText(), dims, begin, end);
  }

  /** The file this was opened from. */
  public Path path() {
    return path;
  }

  /** Names of all tensors, sorted. */
  public Set<String> names() {
    return Collections.unmodifiableSet(entries.keySet());
  }

  /** The free-form {@code __metadata__} of the header (may be empty). */
  public Map<String, String> metadata() {
    return metadata;
  }

  public boolean contains(String name) {
    return entries.containsKey(name);
  }

  /**
   * The tensor {@code name}.
   *
   * @throws CheckpointException if there is no such tensor (the message lists similar names)
   * @throws UnsupportedTensorException if its dtype is not F32, F16 or BF16
   */
  public TensorInfo info(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new CheckpointException(path + " has no tensor '" + name + "'" + similar(name)
          + "; is this a Hugging Face Llama checkpoint (LlamaForCausalLM)?");
    }
    return new TensorInfo(name, TensorDType.parse(e.dtype, name), e.shape, e.begin, e.end);
  }

  /**
   * The tensor {@code name}, checked to have exactly the shape {@code expected}.
   *
   * @param why where the expected shape comes from, for the error message (e.g. "config.json:
   *     hidden_size 384")
   */
  public TensorInfo require(String name, String why, long... expected) {
    TensorInfo info = info(name);
    if (!Arrays.equals(info.shape(), expected)) {
      throw new CheckpointException(path + ": tensor '" + name + "' has shape " + info.shapeString()
          + ", expected " + Arrays.toString(expected) + " (" + why + "); config.json and the weights"
          + " do not belong together");
    }
    return info;
  }

  /** The bytes of a tensor, in place in the mapped file. */
  public MemorySegment data(TensorInfo info) {
    return data.asSlice(info.begin(), info.byteSize());
  }

  @Override
  public void close() {
    arena.close();
  }

  private String similar(String name) {
    String tail = name.substring(name.lastIndexOf('.', name.length() - 1) + 1);
    String stem = name.contains(".") ? name.substring(0, name.lastIndexOf('.')) : name;
    String stemTail = stem.substring(stem.lastIndexOf('.') + 1);
    List<String> close = new ArrayList<>();
    for (String n : entries.keySet()) {
      if (n.endsWith("." + stemTail + "." + tail) || n.endsWith(stemTail)) {
        close.add(n);
      }
    }
    close.sort(Comparator.comparingInt(String::length));
    if (close.isEmpty()) {
      List<String> first = new ArrayList<>(entries.keySet());
      return " (it has " + entries.size() + " tensors, e.g. "
          + first.subList(0, Math.min(3, first.size())) + ")";
    }
    return " (similar: " + close.subList(0, Math.min(3, close.size())) + ")";
  }
}
