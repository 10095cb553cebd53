package org.retroinfer.wave.attention;

import org.retroinfer.wave.kv.KvDType;

/**
 * An attention method: full attention, wave attention, or a peer baseline. A model creates one
 * {@link ContextCache} per context and calls it per layer; the backend decides what is stored, what
 * is indexed and what is read at decode time.
 */
public interface AttentionBackend {

  /** Short name, as used on command lines: "full", "wave", "quest", "streaming", "oracle". */
  String name();

  /** Storage type of keys and values. */
  KvDType kvType();

  /** An empty cache for one (layer, KV head). */
  HeadCache newHead(int headDim, int groupSize);

  /** An empty cache for a whole context of the given shape. */
  default ContextCache newContext(AttentionShape shape) {
    return new HeadwiseContextCache(this, shape);
  }
}
