package org.retroinfer.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.perfield.PerFieldKnnVectorsFormat;
import org.apache.lucene.index.CodecReader;
import org.apache.lucene.index.CorruptIndexException;
import org.apache.lucene.index.FieldInfo;

/**
 * Verifies the checksums of the files of an open segment that Lucene reads without verifying them.
 *
 * <p>Every Lucene file ends with a CRC32 of its bytes, but a reader checks it only for the small
 * files that it reads whole when a segment opens (segment and field infos, live docs, the metadata
 * files). Stored fields, postings, doc values, norms and points are decoded unverified: only
 * {@code checkIntegrity()} and CheckIndex read their checksums, and a damaged byte there can decode
 * into another document, another term or another token id without an error. {@link #verify} runs
 * {@code checkIntegrity()} of each of those parts of a segment (through the reader's own open
 * files, so a writer that deletes the files meanwhile changes nothing), so that what the reader
 * serves afterwards was verified.
 *
 * <p>The K/V fields of {@link WaveVectorsFormat} are not read here: its {@code .wvm} and
 * {@code .wvc} are verified completely when the segment opens, and each block of {@code .wvd}
 * before any of its rows is served. The K/V, nearly all of a context's bytes, are so read only when
 * used. Other vector formats, if a segment has any, are verified like the rest.
 */
public final class SegmentChecksums {
  private SegmentChecksums() {}

  /**
   * Verifies every part of {@code segment} except the K/V of {@link WaveVectorsFormat}.
   *
   * @throws CorruptIndexException if a checksum does not match (its resource description names the
   *     file); a truncated file is caught when the segment opens
   */
  public static void verify(CodecReader segment) throws IOException {
    List<Check> parts = new ArrayList<>();
    parts.add(segment.getFieldsReader()::checkIntegrity);
    if (segment.getPostingsReader() != null) {
      parts.add(segment.getPostingsReader()::checkIntegrity);
    }
    if (segment.getDocValuesReader() != null) {
      parts.add(segment.getDocValuesReader()::checkIntegrity);
    }
    if (segment.getNormsReader() != null) {
      parts.add(segment.getNormsReader()::checkIntegrity);
    }
    if (segment.getPointsReader() != null) {
      parts.add(segment.getPointsReader()::checkIntegrity);
    }
    if (segment.getTermVectorsReader() != null) {
      parts.add(segment.getTermVectorsReader()::checkIntegrity);
    }
    for (KnnVectorsReader r : otherVectorReaders(segment)) {
      parts.add(r::checkIntegrity);
    }
    for (Check part : parts) {
      part.check();
    }
  }

  /** The segment's vector readers that are not {@link WaveVectorsReader}s. */
  private static Set<KnnVectorsReader> otherVectorReaders(CodecReader segment) {
    KnnVectorsReader vectors = segment.getVectorReader();
    Set<KnnVectorsReader> other = Collections.newSetFromMap(new IdentityHashMap<>());
    if (vectors == null) {
      return other;
    }
    if (!(vectors instanceof PerFieldKnnVectorsFormat.FieldsReader perField)) {
      if (!(vectors instanceof WaveVectorsReader)) {
        other.add(vectors);
      }
      return other;
    }
    for (FieldInfo fi : segment.getFieldInfos()) {
      if (fi.hasVectorValues()) {
        KnnVectorsReader r = perField.getFieldReader(fi.name);
        if (r != null && !(r instanceof WaveVectorsReader)) {
          other.add(r);
        }
      }
    }
    return other;
  }

  @FunctionalInterface
  private interface Check {
    void check() throws IOException;
  }
}
