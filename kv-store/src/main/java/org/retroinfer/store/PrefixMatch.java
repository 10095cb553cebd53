package org.retroinfer.store;

/**
 * The longest stored prefix of a prompt, verified against the stored token ids.
 *
 * @param context the stored context that holds it
 * @param matchedTokens how many leading tokens of the prompt equal the context's (may exceed the
 *     whole chunks that the hash chain matched: the match is extended token by token)
 * @param promptTokens the prompt's length
 */
public record PrefixMatch(ContextInfo context, int matchedTokens, int promptTokens) {

  /** Whether the prompt is exactly the stored context. */
  public boolean exact() {
    return matchedTokens == promptTokens && matchedTokens == context.tokens();
  }
}
