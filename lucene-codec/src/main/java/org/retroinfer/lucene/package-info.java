/**
 * The KV cache of long-context inference persisted as a Lucene index.
 *
 * <h2>The codec</h2>
 *
 * {@link org.retroinfer.lucene.WaveVectorsFormat} is a {@code KnnVectorsFormat} that stores float
 * vectors cluster-contiguous with the wave index of wave-core (segmented spherical k-means at
 * flush; centroids, sizes, value sums and RoaringBitmap postings per cluster), keeps clusters
 * across merges, and answers {@code KnnFloatVectorQuery} with an IVF search. Its javadoc is the
 * file-format specification. {@link org.retroinfer.lucene.WaveCodec} is Lucene's default codec
 * with the K/V fields routed to it. Both are registered through SPI.
 *
 * <h2>Contexts (what kv-store builds on)</h2>
 *
 * <ul>
 *   <li>Write: {@link org.retroinfer.lucene.ContextWriter#write} stores a context (token ids, the K/V
 *       of every layer and KV head, its wave index) into an {@code IndexWriter} configured with
 *       {@link org.retroinfer.lucene.ContextWriter#indexWriterConfig()}; commit to make it durable;
 *       {@link org.retroinfer.lucene.ContextWriter#delete} removes one.
 *   <li>Read: {@link org.retroinfer.lucene.ContextReader#load} gives a
 *       {@link org.retroinfer.lucene.LoadedContext}: one wave cache per (layer, KV head),
 *       ready for decode, no re-clustering, bit-identical in attention to what was written;
 *       {@link org.retroinfer.lucene.ContextReader#contextIds} lists the stored contexts.
 *   <li>Inspect: {@link org.retroinfer.lucene.WaveField} (via
 *       {@link org.retroinfer.lucene.WaveVectorsReader#waveField}) exposes one field's clusters in
 *       one segment: centroids, sizes, value sums, postings, cluster-contiguous K/V as off-heap
 *       views of the mapped files; {@link org.retroinfer.lucene.WaveIndexInspector} prints an index.
 * </ul>
 *
 * The document mapping (one document per token, a key and a value field per layer and KV head) is
 * described in {@link org.retroinfer.lucene.ContextFields}.
 */
package org.retroinfer.lucene;
