package org.retroinfer.model.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * The byte tokenizer of the shipped model: the token id of a byte is its value (0..255), text is
 * UTF-8, and byte 2 (STX) starts a document. Every byte sequence is encodable, so nothing is ever
 * out of vocabulary.
 */
public final class ByteTokenizer implements Tokenizer {
  /** STX: the model saw it at the start of every training document. */
  public static final int DOCUMENT_START = 2;

  @Override
  public int vocabSize() {
    return 256;
  }

  @Override
  public int documentStart() {
    return DOCUMENT_START;
  }

  @Override
  public int[] encode(String text) {
    return encode(text.getBytes(StandardCharsets.UTF_8));
  }

  /** The ids of raw bytes. */
  public int[] encode(byte[] bytes) {
    int[] ids = new int[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      ids[i] = bytes[i] & 0xFF;
    }
    return ids;
  }

  @Override
  public String decode(int[] ids, int from, int to) {
    byte[] bytes = new byte[to - from];
    for (int i = from; i < to; i++) {
      if (ids[i] < 0 || ids[i] > 255) {
        throw new IllegalArgumentException("token id " + ids[i] + " at index " + i
            + " is not a byte (expected 0..255)");
      }
      bytes[i - from] = (byte) ids[i];
    }
    return new String(bytes, StandardCharsets.UTF_8);
  }
}
