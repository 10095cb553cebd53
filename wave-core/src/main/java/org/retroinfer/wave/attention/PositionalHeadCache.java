package org.retroinfer.wave.attention;

import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * A head cache that keeps every token's key and value in position order: the storage of full
 * attention and of the baselines, which differ only in which tokens they read.
 */
public abstract class PositionalHeadCache implements HeadCache {
  protected final int dim;
  protected final int groupSize;
  protected final float scale;
  protected final VectorStore keys;
  protected final VectorStore values;
  protected final SoftmaxState state;
  protected int lastExact;

  protected PositionalHeadCache(int dim, int groupSize, KvDType type) {
    if (dim <= 0 || groupSize <= 0) {
      throw new IllegalArgumentException("head dim and group size must be positive, got " + dim
          + " and " + groupSize);
    }
    this.dim = dim;
    this.groupSize = groupSize;
    this.scale = (float) (1.0 / Math.sqrt(dim));
    this.keys = VectorStore.allocate(dim, type, 1024);
    this.values = VectorStore.allocate(dim, type, 1024);
    this.state = new SoftmaxState(groupSize, dim);
  }

  @Override
  public int headDim() {
    return dim;
  }

  @Override
  public int groupSize() {
    return groupSize;
  }

  @Override
  public int size() {
    return keys.size();
  }

  /** Keys in position order (read-only use). */
  public VectorStore keys() {
    return keys;
  }

  /** Values in position order (read-only use). */
  public VectorStore values() {
    return values;
  }

  @Override
  public void append(float[] key, int keyOff, float[] value, int valueOff) {
    keys.append(key, keyOff);
    try {
      values.append(value, valueOff);
    } catch (RuntimeException e) {
      keys.removeLast();
      throw e;
    }
    appended();
  }

  /** Hook after each append. */
  protected void appended() {}

  @Override
  public void endPrefill() {}

  @Override
  public int lastExactTokens() {
    return lastExact;
  }

  @Override
  public long memoryBytes() {
    return keys.capacityBytes() + values.capacityBytes();
  }

  @Override
  public void close() {
    keys.close();
    values.close();
  }

  /** Exact attention over every token: the reference. */
  protected final void attendAll(float[] queries, int qOff, float[] out, int outOff) {
    state.reset();
    state.absorbRange(keys, values, 0, keys.size(), queries, qOff, scale);
    state.writeOutput(out, outOff);
    lastExact = keys.size();
  }
}
