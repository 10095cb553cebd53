package org.retroinfer.store;

import org.retroinfer.wave.attention.ContextCache;

/**
 * A stored context (or a prefix of it) loaded for reuse: a wave {@link ContextCache} holding
 * {@link #tokens()} tokens, which the caller now owns.
 *
 * @param info the stored context it came from
 * @param cache the K/V and wave index, ready for decode (or for the rest of a prompt)
 * @param tokens tokens reused
 * @param logits the logits after the last reused token when the whole stored context was reused
 *     and its logits were stored; otherwise null (the caller runs at least one more token)
 */
public record ReusedContext(ContextInfo info, ContextCache cache, int tokens, float[] logits)
    implements AutoCloseable {

  /** Closes the cache (only if the caller did not take it over). */
  @Override
  public void close() {
    cache.close();
  }
}
