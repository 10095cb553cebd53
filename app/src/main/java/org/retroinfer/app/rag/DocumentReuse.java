package org.retroinfer.app.rag;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.llama.Rope;
import org.retroinfer.store.ContextInfo;
import org.retroinfer.store.ContextStore;
import org.retroinfer.app.PromptCache;
import org.retroinfer.store.ReusedContext;
import org.retroinfer.wave.WaveAttention;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;

/**
 * RAG with stored documents: each document's K/V and wave index are computed once, on their own,
 * and stored ({@link #storeDocument}); a prompt made of documents followed by a question is then
 * prepared by loading the documents, composing them at their new positions
 * ({@link DocumentComposer}: keys re-rotated, clusters kept) and prefilling only the question, exactly,
 * over the composed K/V.
 */
public final class DocumentReuse {
  private final Llama model;
  private final ContextStore.Scope scope;
  private final WaveConfig config;
  private final Rope rope;

  public DocumentReuse(Llama model, ContextStore.Scope scope, WaveConfig config) {
    this.model = Objects.requireNonNull(model, "model");
    this.scope = Objects.requireNonNull(scope, "scope");
    this.config = Objects.requireNonNull(config, "config");
    this.rope = new Rope(model.config().headDim(), model.config().ropeTheta());
  }

  /** The stored document with these tokens, if any. */
  public Optional<ContextInfo> find(int[] document) throws IOException {
    return scope.info(scope.contextId("document", document));
  }

  /** Computes a document's K/V on its own (from position 0) and stores it, unless it is stored. */
  public ContextInfo storeDocument(String name, int[] document) throws IOException {
    Optional<ContextInfo> stored = find(document);
    if (stored.isPresent()) {
      return stored.get();
    }
    try (ContextCache cache = compute(document)) {
      return scope.put(name, "document", document, cache, null, null);
    }
  }

  /** A document's wave context computed on its own. */
  public ContextCache compute(int[] document) {
    PromptState state = model.prefill(document);
    ContextCache cache = model.newCache(new WaveAttention(config));
    state.copyInto(cache);
    cache.endPrefill();
    return cache;
  }

  /**
   * Prepares {@code documents} (each stored first if it is not) followed by {@code question}: the
   * returned cache holds the whole prompt with its index built; the logits follow the question's
   * last token.
   */
  public PromptCache.Prepared prepare(List<int[]> documents, int[] question) throws IOException {
    if (question.length == 0) {
      throw new IllegalArgumentException("empty question; the prompt needs at least one token after"
          + " the documents");
    }
    long t0 = System.nanoTime();
    List<ContextCache> loaded = new ArrayList<>();
    int length = 0;
    try {
      for (int i = 0; i < documents.size(); i++) {
        int[] doc = documents.get(i);
        ContextInfo info = storeDocument("document " + i, doc);
        ReusedContext r = scope.load(info.id(), doc, doc.length, false);
        loaded.add(r.cache());
        length += doc.length;
      }
      long t1 = System.nanoTime();
      ContextCache composed = DocumentComposer.compose(loaded, rope, config);
      try {
        long t2 = System.nanoTime();
        PromptState state = PromptCache.positionOrder(composed, length);
        model.prefill(state, question, null, null);
        long t3 = System.nanoTime();
        PromptCache.appendRange(state, composed, length, length + question.length);
        composed.endPrefill();
        long t4 = System.nanoTime();
        return new PromptCache.Prepared(composed, state.lastLogits(), length, null, 0, t1 - t0
            + (t2 - t1), t3 - t2, t4 - t3);
      } catch (RuntimeException e) {
        composed.close();
        throw e;
      }
    } finally {
      for (ContextCache c : loaded) {
        c.close();
      }
    }
  }
}
