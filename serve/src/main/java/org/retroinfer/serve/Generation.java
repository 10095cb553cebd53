package org.retroinfer.serve;

import java.util.List;

/**
 * One request's work, parsed and checked: the prompt's tokens, how to sample, where to stop, and
 * whose store scope it reads and writes.
 *
 * @param prompt token ids (the document-start token first)
 * @param maxTokens tokens to generate at most (at least 1)
 * @param temperature 0 for greedy decoding
 * @param topP nucleus mass in (0, 1]
 * @param seed the sampler's seed
 * @param stops stop sequences (the text ends before the first that appears)
 * @param tenantSalt the store's tenant salt (the API key's tenant, and the request's cache_salt)
 * @param storeMinTokens the server's policy: the prompt is stored for later requests when at least
 *     this many of its tokens were computed (not reused); 0: never. A context is then never a copy
 *     of a stored one plus a few tokens.
 */
record Generation(int[] prompt, int maxTokens, double temperature, double topP, long seed,
    List<String> stops, String tenantSalt, int storeMinTokens) {

  /** Whether to store the prompt, of which {@code reused} tokens came from the store. */
  boolean store(int reused) {
    return storeMinTokens > 0 && prompt.length - reused >= storeMinTokens;
  }
}
