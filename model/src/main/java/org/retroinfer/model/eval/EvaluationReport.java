package org.retroinfer.model.eval;

import org.retroinfer.wave.attention.MethodSpec;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The results of a {@link NeedleEvaluation} or {@link MultiKeyEvaluation}: every prompt, and per
 * (context, method) a summary row.
 *
 * @param model a description of the run (K/V type, corpus, seed)
 * @param rows one per context length and method, in run order
 * @param trials every prompt and every method's outcome on it
 */
public record EvaluationReport(Map<String, Object> model, List<Row> rows, List<Trial> trials) {

  /**
   * One prompt: what it asked (keys, answers, where the keys were), how long its prefill took, and
   * each method's outcome.
   *
   * @param depth the needle depth asked for, NaN where there is none (multi-key prompts)
   */
  public record Trial(int context, double depth, int trial, List<RecallPrompt.Recall> recalls,
      double prefillSeconds, List<MethodOutcome> outcomes) {}

  /**
   * A summary of one method at one context length.
   *
   * @param trials prompts
   * @param recalls answers asked for (one per prompt for needle tasks)
   * @param correct right answers
   * @param recall correct answers / recalls
   * @param recallByGroup recall per group of answers: needle depth ("30%"), or where the key
   *     entered the cache ("prefilled", "decoded")
   * @param bitsPerByte mean bits per scored text byte
   * @param agreement share of scored positions where the top-1 token equals full attention's (NaN
   *     when full attention did not run)
   * @param decodeTokensPerSecond decode steps per second of decode wall time (whole model step)
   * @param exactTokensPerHead mean tokens read exactly per decode step, layer and KV head
   * @param budget the tokens read exactly per step and head over all prompts: spread and per head
   * @param prefillSeconds mean prefill time of this context's prompts (method independent)
   * @param indexSeconds mean time of {@code endPrefill} (the index build for wave)
   */
  public record Row(int context, String method, int trials, int recalls, int correct,
      double recall, Map<String, Double> recallByGroup, double bitsPerByte, double agreement,
      double decodeTokensPerSecond, double exactTokensPerHead, BudgetStats budget,
      double prefillSeconds, double indexSeconds) {

    /** Index build time as a share of the prefill time. */
    public double indexShareOfPrefill() {
      return indexSeconds / prefillSeconds;
    }
  }

  static EvaluationReport of(Map<String, Object> about, List<Integer> contexts,
      List<MethodSpec> methods, List<Trial> trials) {
    List<Row> rows = new ArrayList<>();
    for (int context : contexts) {
      for (MethodSpec m : methods) {
        String name = m.toString();
        int n = 0;
        int recalls = 0;
        int correct = 0;
        double bits = 0;
        long scored = 0;
        long agree = 0;
        long compared = 0;
        long steps = 0;
        long nanos = 0;
        double exact = 0;
        double prefill = 0;
        double index = 0;
        Map<String, int[]> byGroup = new LinkedHashMap<>();
        List<BudgetStats> budgets = new ArrayList<>();
        for (Trial t : trials) {
          if (t.context() != context) {
            continue;
          }
          for (MethodOutcome o : t.outcomes()) {
            if (!o.method().equals(name)) {
              continue;
            }
            n++;
            recalls += o.recalls().size();
            correct += o.recalled();
            bits += o.bits();
            scored += o.scored();
            agree += o.agreements();
            compared += o.compared();
            steps += o.decodeSteps();
            nanos += o.decodeNanos();
            exact += o.exactPerHead() * o.decodeSteps();
            budgets.add(o.budget());
            prefill += t.prefillSeconds();
            index += o.indexNanos() / 1e9;
            for (RecallOutcome r : o.recalls()) {
              int[] g = byGroup.computeIfAbsent(r.group(), k -> new int[2]);
              g[0] += r.correct() ? 1 : 0;
              g[1]++;
            }
          }
        }
        if (n == 0) {
          continue;
        }
        Map<String, Double> recallByGroup = new LinkedHashMap<>();
        byGroup.forEach((k, v) -> recallByGroup.put(k, (double) v[0] / v[1]));
        rows.add(new Row(context, name, n, recalls, correct, (double) correct / recalls,
            recallByGroup, bits / scored, compared == 0 ? Double.NaN : (double) agree / compared,
            steps / (nanos / 1e9), exact / steps, BudgetStats.merge(budgets), prefill / n,
            index / n));
      }
    }
    return new EvaluationReport(about, rows, trials);
  }

  /** The report as pretty-printed JSON (NaN written as null). */
  public String toJson() {
    ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    try {
      return mapper.writeValueAsString(this).replace("\"NaN\"", "null");
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write the report as JSON", e);
    }
  }

  /**
   * The summary rows as a fixed-width table, then the budget each method actually read: tokens per
   * decode step and head, as mean, 10/50/90th percentile and maximum, and the mean of every (layer,
   * KV head).
   */
  public String toTable() {
    int width = Math.max(14, rows.stream().mapToInt(r -> r.method().length()).max().orElse(0));
    String m = "%-" + width + "s";
    StringBuilder sb = new StringBuilder();
    sb.append(String.format("%-8s " + m + " %8s %7s %9s %10s %12s %10s %10s %8s  %s%n", "context",
        "method", "recall", "bpb", "agree", "tok/s", "exact/head", "prefill s", "index s",
        "index%", "recall by"));
    for (Row r : rows) {
      StringBuilder depths = new StringBuilder();
      r.recallByGroup().forEach((k, v) -> depths.append(k).append('=')
          .append(String.format("%.0f", v * 100)).append(' '));
      sb.append(String.format("%-8d " + m + " %3d/%-4d %7.4f %9s %10.1f %12.0f %10.2f %10.3f %7.1f%%  %s%n",
          r.context(), r.method(), r.correct(), r.recalls(), r.bitsPerByte(),
          Double.isNaN(r.agreement()) ? "-" : String.format("%.2f%%", r.agreement() * 100),
          r.decodeTokensPerSecond(), r.exactTokensPerHead(), r.prefillSeconds(), r.indexSeconds(),
          100 * r.indexShareOfPrefill(), depths.toString().strip()));
    }
    sb.append(budgetTable(rows, width));
    return sb.toString();
  }

  /** The budget read per step and head: spread, then the mean of each (layer, KV head). */
  static String budgetTable(List<Row> rows, int width) {
    StringBuilder sb = new StringBuilder(String.format(
        "%nexact tokens per step and head, as read: mean, p10/p50/p90/max, then the mean of each"
            + " layer.kvHead%n"));
    sb.append(String.format("%-8s %s%n", "context", BudgetStats.header(width)));
    for (Row r : rows) {
      sb.append(String.format("%-8d %s%n", r.context(), r.budget().row(r.method(), width)));
    }
    return sb.toString();
  }
}
