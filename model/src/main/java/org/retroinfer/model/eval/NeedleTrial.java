package org.retroinfer.model.eval;

import org.retroinfer.model.llama.Decoder;
import org.retroinfer.model.llama.Llama;
import org.retroinfer.model.llama.PromptState;
import org.retroinfer.model.sampling.Sampler;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.ContextCache;

/**
 * Runs one attention method on one prefilled {@link NeedleTask}: fills a fresh cache with the
 * prefix's K/V, builds its index, feeds the scored text and the question token by token (scoring
 * each text token and recording the top-1 prediction), then decodes the answer greedily.
 */
public final class NeedleTrial {
  private NeedleTrial() {}

  /**
   * @param reference full attention's top-1 predictions at the scored positions, or null
   * @param top1 if not null, receives this method's top-1 predictions at the scored positions
   */
  public static MethodOutcome run(Llama model, NeedleTask task, PromptState prefix, String method,
      AttentionBackend backend, int[] reference, int[] top1) {
    if (prefix.length() != task.prefixLength()) {
      throw new IllegalArgumentException("the prefill holds " + prefix.length()
          + " tokens but the task's prefix is " + task.prefixLength());
    }
    int[] prompt = task.prompt();
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
      long exact = 0;
      int steps = 0;
      for (int i = task.prefixLength(); i < prompt.length; i++) {
        if (i < task.questionStart()) {
          int at = i - task.prefixLength();
          int best = Sampler.argmax(logits);
          bits += Scoring.bits(logits, prompt[i]);
          if (top1 != null) {
            top1[at] = best;
          }
          if (reference != null) {
            compared++;
            agreements += reference[at] == best ? 1 : 0;
          }
        }
        long s = System.nanoTime();
        logits = decoder.step(prompt[i]);
        decodeNanos += System.nanoTime() - s;
        exact += exactReads(cache);
        steps++;
      }
      int[] answerTokens = task.answerTokens();
      int[] answer = new int[answerTokens.length];
      for (int i = 0; i < answer.length; i++) {
        answer[i] = Sampler.argmax(logits);
        long s = System.nanoTime();
        logits = decoder.step(answer[i]);
        decodeNanos += System.nanoTime() - s;
        exact += exactReads(cache);
        steps++;
      }
      String text = Scoring.printable(answer);
      return new MethodOutcome(method, text, java.util.Arrays.equals(answer, answerTokens), bits,
          task.questionStart() - task.prefixLength(), agreements, compared, steps, decodeNanos,
          indexNanos, (double) exact / steps / (cache.shape().layers() * cache.shape().kvHeads()));
    }
  }

  static long exactReads(ContextCache cache) {
    long n = 0;
    for (int l = 0; l < cache.shape().layers(); l++) {
      for (int h = 0; h < cache.shape().kvHeads(); h++) {
        n += cache.head(l, h).lastExactTokens();
      }
    }
    return n;
  }
}
