package org.retroinfer.model.eval;

import java.util.List;
import java.util.stream.Collectors;

/**
 * What one attention method did on one prompt.
 *
 * @param method the method, as named on the command line
 * @param recalls each answer asked for, in order
 * @param bits total -log2 p of the scored text tokens
 * @param scored scored text tokens
 * @param agreements scored positions whose top-1 token equals full attention's
 * @param compared positions compared with full attention (0 when full did not run first)
 * @param decodeSteps decode steps timed (scored text, questions and answers)
 * @param decodeNanos wall time of those steps
 * @param indexNanos wall time of {@code endPrefill} (the wave index build; ~0 for others)
 * @param exactPerHead mean tokens read exactly per decode step, layer and KV head (the budget)
 * @param budget the tokens read exactly per decode step and head, as read
 */
public record MethodOutcome(String method, List<RecallOutcome> recalls, double bits, int scored,
    int agreements, int compared, int decodeSteps, long decodeNanos, long indexNanos,
    double exactPerHead, BudgetStats budget) {

  public MethodOutcome {
    recalls = List.copyOf(recalls);
  }

  /** The answers, space-separated. */
  public String answer() {
    return recalls.stream().map(RecallOutcome::answer).collect(Collectors.joining(" "));
  }

  /** Whether every answer was right. */
  public boolean correct() {
    return recalls.stream().allMatch(RecallOutcome::correct);
  }

  /** Right answers. */
  public int recalled() {
    return (int) recalls.stream().filter(RecallOutcome::correct).count();
  }
}
