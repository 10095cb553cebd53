package org.retroinfer.gpu.buffer;

/**
 * A decision of the cache updater: cluster {@code cluster} ({@code tokens} tokens) gets the blocks
 * {@code blocks}; once its rows have been copied there, {@link BlockCache#complete} makes it a hit.
 * {@code generation} tells a stale decision (the cluster was evicted again meanwhile) from a live one.
 */
public record Admission(int cluster, int tokens, int[] blocks, long generation) {}
