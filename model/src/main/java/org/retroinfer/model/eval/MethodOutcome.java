package org.retroinfer.model.eval;

/**
 * What one attention method did on one needle task.
 *
 * @param method the method, as named on the command line
 * @param answer the decoded answer text
 * @param correct whether the answer is the needle's value
 * @param bits total -log2 p of the scored text tokens
 * @param scored scored text tokens
 * @param agreements scored positions whose top-1 token equals full attention's
 * @param compared positions compared with full attention (0 when full did not run first)
 * @param decodeSteps decode steps timed (scored text, question and answer)
 * @param decodeNanos wall time of those steps
 * @param indexNanos wall time of {@code endPrefill} (the wave index build; ~0 for others)
 * @param exactPerHead mean tokens read exactly per decode step, layer and KV head (the budget)
 */
public record MethodOutcome(String method, String answer, boolean correct, double bits, int scored,
    int agreements, int compared, int decodeSteps, long decodeNanos, long indexNanos,
    double exactPerHead) {}
