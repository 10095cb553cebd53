package org.retroinfer.model.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The results of a {@link NeedleEvaluation}: every trial, and per (context, method) a summary row.
 *
 * @param model a description of the run (K/V type, corpus, seed)
 * @param rows one per context length and method, in run order
 * @param trials every prompt and every method's outcome on it
 */
public record EvaluationReport(Map<String, Object> model, List<Row> rows, List<Trial> trials) {

  /** One prompt: where its needle was, how long its prefill took, and each method's outcome. */
  public record Trial(int context, double depth, int trial, String key, String answer,
      int needlePosition, double prefillSeconds, List<MethodOutcome> outcomes) {}

  /**
   * A summary of one method at one context length.
   *
   * @param recall correct answers / trials
   * @param recallByDepth depth (percent) to recall at that depth
   * @param bitsPerByte mean bits per scored text byte
   * @param agreement share of scored positions where the top-1 token equals full attention's (NaN
   *     when full attention did not run)
   * @param decodeTokensPerSecond decode steps per second of decode wall time (whole model step)
   * @param exactTokensPerHead mean tokens read exactly per decode step, layer and KV head
   * @param prefillSeconds mean prefill time of this context's prompts (method independent)
   * @param indexSeconds mean time of {@code endPrefill} (the index build for wave)
   */
  public record Row(int context, String method, int trials, int correct, double recall,
      Map<String, Double> recallByDepth, double bitsPerByte, double agreement,
      double decodeTokensPerSecond, double exactTokensPerHead, double prefillSeconds,
      double indexSeconds) {

    /** Index build time as a share of the prefill time. */
    public double indexShareOfPrefill() {
      return indexSeconds / prefillSeconds;
    }
  }

  static EvaluationReport of(NeedleEvaluation.Options options, List<MethodSpec> methods,
      List<Trial> trials) {
    Map<String, Object> about = new LinkedHashMap<>();
    about.put("kvType", options.config().kvType().toString());
    about.put("waveConfig", options.config()); // a JSON object of the record's fields
    about.put("corpus", options.corpus().description());
    about.put("seed", options.seed());
    about.put("trialsPerDepth", options.trials());
    List<Row> rows = new ArrayList<>();
    for (int context : options.contexts()) {
      for (MethodSpec m : methods) {
        String name = m.toString();
        int n = 0;
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
        Map<String, int[]> byDepth = new LinkedHashMap<>();
        for (Trial t : trials) {
          if (t.context() != context) {
            continue;
          }
          for (MethodOutcome o : t.outcomes()) {
            if (!o.method().equals(name)) {
              continue;
            }
            n++;
            correct += o.correct() ? 1 : 0;
            bits += o.bits();
            scored += o.scored();
            agree += o.agreements();
            compared += o.compared();
            steps += o.decodeSteps();
            nanos += o.decodeNanos();
            exact += o.exactPerHead() * o.decodeSteps();
            prefill += t.prefillSeconds();
            index += o.indexNanos() / 1e9;
            int[] d = byDepth.computeIfAbsent(Math.round(t.depth() * 100) + "%", k -> new int[2]);
            d[0] += o.correct() ? 1 : 0;
            d[1]++;
          }
        }
        if (n == 0) {
          continue;
        }
        Map<String, Double> recallByDepth = new LinkedHashMap<>();
        byDepth.forEach((k, v) -> recallByDepth.put(k, (double) v[0] / v[1]));
        rows.add(new Row(context, name, n, correct, (double) correct / n, recallByDepth,
            bits / scored, compared == 0 ? Double.NaN : (double) agree / compared,
            steps / (nanos / 1e9), exact / steps, prefill / n,
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

  /** The summary rows as a fixed-width table. */
  public String toTable() {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format("%-8s %-14s %8s %7s %9s %10s %12s %10s %10s %8s  %s%n", "context",
        "method", "recall", "bpb", "agree", "tok/s", "exact/head", "prefill s", "index s",
        "index%", "recall by depth"));
    for (Row r : rows) {
      StringBuilder depths = new StringBuilder();
      r.recallByDepth().forEach((k, v) -> depths.append(k).append('=')
          .append(String.format("%.0f", v * 100)).append(' '));
      sb.append(String.format("%-8d %-14s %3d/%-4d %7.4f %9s %10.1f %12.0f %10.2f %10.3f %7.1f%%  %s%n",
          r.context(), r.method(), r.correct(), r.trials(), r.bitsPerByte(),
          Double.isNaN(r.agreement()) ? "-" : String.format("%.2f%%", r.agreement() * 100),
          r.decodeTokensPerSecond(), r.exactTokensPerHead(), r.prefillSeconds(), r.indexSeconds(),
          100 * r.indexShareOfPrefill(), depths.toString().strip()));
    }
    return sb.toString();
  }
}
