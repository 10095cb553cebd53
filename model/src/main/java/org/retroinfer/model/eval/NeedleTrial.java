package org.retroinfer.model.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.ContextCache;

/**
 * Runs one attention method on one prefilled {@link RecallPrompt}: fills a fresh cache with the
 * prefix's K/V, builds its index, feeds the rest token by token (scoring each scored-text token and
 * recording the top-1 prediction), and at every answer decodes greedily, feeding its own digits on.
 */
public final class NeedleTrial {
  private NeedleTrial() {}

  /** {@link #run(Llama, RecallPrompt, PromptState, String, AttentionBackend, int[], int[])} on a needle task. */
  public static MethodOutcome run(Llama model, NeedleTask task, PromptState prefix, String method,
      AttentionBackend backend, int[] reference, int[] top1) {
    return run(model, task.recallPrompt(), prefix, method, backend, reference, top1);
  }

  /**
   * @param reference full attention's top-1 predictions at the scored positions, or null
   * @param top1 if not null, receives this method's top-1 predictions at the scored positions
   */
  public static MethodOutcome run(Llama model, RecallPrompt task, PromptState prefix, String method,
      AttentionBackend backend, int[] reference, int[] top1) {
    if (prefix.length() != task.prefixLength()) {
      throw new IllegalArgumentException("the prefill holds " + prefix.length()
          + " tokens but the task's prefix is " + task.prefixLength());
    }
    int[] tokens = task.tokens();
    boolean[] answer = new boolean[tokens.length];
    for (RecallPrompt.Recall r : task.recalls()) {
      Arrays.fill(answer, r.answerStart(), r.answerEnd(), true);
    }
    try (ContextCache cache = model.newCache(backend)) {
      prefix.copyInto(cache);
      long t0 = System.nanoTime();
      cache.endPrefill();
      long indexNanos = System.nanoTime() - t0;
      Decoder decoder = model.decoder(cache);
      float[] logits = prefix.lastLogits();
      double bits = 0;
      int agreements = 0;
      int compared = 0;
      long decodeNanos = 0;
      BudgetStats budget = new BudgetStats(cache.shape().layers(), cache.shape().kvHeads());
      int[] decoded = new int[tokens.length];
      for (int i = task.prefixLength(); i < tokens.length; i++) {
        int token = tokens[i];
        if (i < task.scoredEnd()) {
          int at = i - task.prefixLength();
          int best = Sampler.argmax(logits);
          bits += Scoring.bits(logits, tokens[i]);
          if (top1 != null) {
            top1[at] = best;
          }
          if (reference != null) {
            compared++;
            agreements += reference[at] == best ? 1 : 0;
          }
        } else if (answer[i]) {
          token = Sampler.argmax(logits); // the method answers; its own digits are fed on
        }
        decoded[i] = token;
        long s = System.nanoTime();
        logits = decoder.step(token);
        decodeNanos += System.nanoTime() - s;
        budget.addStep(cache);
      }
      List<RecallOutcome> recalls = new ArrayList<>();
      for (RecallPrompt.Recall r : task.recalls()) {
        int[] got = Arrays.copyOfRange(decoded, r.answerStart(), r.answerEnd());
        int[] want = Arrays.copyOfRange(tokens, r.answerStart(), r.answerEnd());
        recalls.add(new RecallOutcome(r.group(), Scoring.printable(got), Arrays.equals(got, want)));
      }
      return new MethodOutcome(method, recalls, bits, task.scoredEnd() - task.prefixLength(),
          agreements, compared, budget.steps(), decodeNanos, indexNanos, budget.mean(), budget);
    }
  }
}
