package org.retroinfer.store;

/**
 * The store's own documents, beside the context documents of lucene-codec's ContextFields:
 *
 * <ul>
 *   <li>one <b>record</b> per context ({@value #KIND} = {@value #KIND_RECORD}): stored id, name, kind,
 *       namespace, model fingerprint, tenant hash, token count, token ids (int32 little-endian,
 *       binary), optional logits after the last token (float32 little-endian, binary), creation time,
 *       shape and configuration text, and last a {@code DocumentChecksum} of all of these
 *       ({@value #CHECKSUM}), checked whenever the record is read;
 *   <li>one <b>prefix key</b> per whole chunk ({@value #KIND} = {@value #KIND_PREFIX}): the chained
 *       hash {@value #PREFIX} (indexed, not stored), the context id and the tokens it covers.
 * </ul>
 *
 * A context's record, prefix keys and K/V documents are committed together, in one Lucene commit.
 */
final class StoreFields {
  static final String CONTEXT = "store.ctx";
  static final String KIND = "store.doc";
  static final String KIND_RECORD = "record";
  static final String KIND_PREFIX = "prefix";
  static final String PREFIX = "store.prefix";
  static final String PREFIX_TOKENS = "store.prefixTokens";
  static final String NAME = "store.name";
  static final String CONTEXT_KIND = "store.kind";
  static final String NAMESPACE = "store.ns";
  static final String MODEL = "store.model";
  static final String TENANT = "store.tenant";
  static final String TOKENS = "store.tokens";
  static final String TOKEN_IDS = "store.tokenIds";
  static final String LOGITS = "store.logits";
  static final String CREATED = "store.created";
  static final String SHAPE = "store.shape";
  static final String CONFIG = "store.config";
  static final String CHECKSUM = "store.checksum";

  private StoreFields() {}
}
