package org.retroinfer.lucene;

import org.retroinfer.wave.HeadLayout;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.attention.HeadwiseContextCache;

/**
 * A context loaded by {@link ContextReader}: its shape, wave configuration, token ids and one
 * ready wave cache per (layer, KV head) ({@link HeadLayout} describes each). Owns the caches until
 * {@link #toContextCache()} hands them over. It may read its rows in place from the reader's
 * mapped files and holds a reference to the reader until it (or the context cache it was handed
 * over to) is closed, so the caller may close its own reference at any time.
 */
public final class LoadedContext implements AutoCloseable {
  private final String id;
  private final AttentionShape shape;
  private final WaveConfig config;
  private final int[] tokens;
  private final boolean prefillDone;
  private final HeadCache[][] heads;
  private final AutoCloseable release;
  private boolean handedOver;

  LoadedContext(String id, AttentionShape shape, WaveConfig config, int[] tokens,
      boolean prefillDone, HeadCache[][] heads, AutoCloseable release) {
    this.id = id;
    this.shape = shape;
    this.config = config;
    this.tokens = tokens;
    this.prefillDone = prefillDone;
    this.heads = heads;
    this.release = release;
  }

  public String id() {
    return id;
  }

  public AttentionShape shape() {
    return shape;
  }

  /** The configuration the context was written with. */
  public WaveConfig config() {
    return config;
  }

  /** Token ids by position (a copy). */
  public int[] tokens() {
    return tokens.clone();
  }

  public int length() {
    return tokens.length;
  }

  public boolean prefillDone() {
    return prefillDone;
  }

  /** The cache of (layer, KV head); still owned by this object. */
  public HeadCache head(int layer, int kvHead) {
    checkOpen();
    return heads[layer][kvHead];
  }

  /** The layout of (layer, KV head)'s cache (valid while this object owns it). */
  public HeadLayout layout(int layer, int kvHead) {
    return HeadLayout.of(head(layer, kvHead));
  }

  /**
   * The whole context as a model's {@link ContextCache} over wave attention with the stored
   * configuration; the caches now belong to it (closing this object no longer closes them).
   */
  public ContextCache toContextCache() {
    checkOpen();
    handedOver = true;
    HeadCache[][] h = new HeadCache[heads.length][];
    for (int l = 0; l < heads.length; l++) {
      h[l] = heads[l].clone();
    }
    return new HeadwiseContextCache(new WaveAttention(config), shape, h, release);
  }

  private void checkOpen() {
    if (handedOver) {
      throw new IllegalStateException("context '" + id + "' was handed over to a ContextCache");
    }
  }

  /** Off-heap bytes held by the caches. */
  public long memoryBytes() {
    long total = 0;
    for (HeadCache[] layer : heads) {
      for (HeadCache h : layer) {
        total += h.memoryBytes();
      }
    }
    return total;
  }

  @Override
  public void close() {
    if (!handedOver) {
      handedOver = true;
      for (HeadCache[] layer : heads) {
        for (HeadCache h : layer) {
          h.close();
        }
      }
      try {
        release.close();
      } catch (Exception e) {
        throw new IllegalStateException("cannot release the reader of context '" + id + "': "
            + e.getMessage(), e);
      }
    }
  }
}
