package org.retroinfer.store;

import java.time.Instant;

/**
 * What the store knows about one stored context, without its K/V.
 *
 * @param id the context id (derived from the namespace and the token ids: putting the same tokens
 *     again replaces the context)
 * @param name a label given at put (e.g. a document name), or ""
 * @param kind {@code "prompt"} or {@code "document"} (a RAG document computed on its own)
 * @param namespace the prefix chain's seed (model fingerprint, K/V type, chunk size, tenant salt)
 * @param model the model fingerprint
 * @param tenant the SHA-256 (first 16 hex digits) of the tenant salt, or "" for no tenant
 * @param tokens tokens in the context
 * @param hasLogits whether the logits after the last token are stored (a prompt can then be
 *     answered with no model call at all)
 * @param created when it was put
 * @param shape the attention shape, as text
 * @param config the wave configuration, as text
 */
public record ContextInfo(String id, String name, String kind, String namespace, String model,
    String tenant, int tokens, boolean hasLogits, Instant created, String shape, String config) {}
