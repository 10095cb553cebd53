package org.retroinfer.model.eval;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Arrays;
import java.util.List;
import org.retroinfer.wave.attention.ContextCache;

/**
 * The exactly-read budget of an attention method as it was actually read: tokens read exactly per
 * decode step and (layer, KV head), kept per sample so that reports give the mean, the spread and
 * the mean of every head. Heads are numbered {@code layer * kvHeads + kvHead}.
 */
public final class BudgetStats {
  private final int layers;
  private final int kvHeads;
  private int[] samples = new int[0];
  private int steps;

  public BudgetStats(int layers, int kvHeads) {
    this.layers = layers;
    this.kvHeads = kvHeads;
  }

  /** Records one decode step: {@code perHead[layer * kvHeads + kvHead]} tokens read exactly. */
  public void add(int[] perHead) {
    int heads = layers * kvHeads;
    if (perHead.length != heads) {
      throw new IllegalArgumentException(perHead.length + " heads for " + heads);
    }
    if ((steps + 1) * heads > samples.length) {
      samples = Arrays.copyOf(samples, Math.max(heads * 64, samples.length * 2));
    }
    System.arraycopy(perHead, 0, samples, steps * heads, heads);
    steps++;
  }

  /** Records the step {@code cache} just took: what each of its heads read exactly. */
  public void addStep(ContextCache cache) {
    int[] n = new int[layers * kvHeads];
    for (int l = 0; l < layers; l++) {
      for (int h = 0; h < kvHeads; h++) {
        n[l * kvHeads + h] = cache.head(l, h).lastExactTokens();
      }
    }
    add(n);
  }

  /** The header of {@link #row}, after a label column of {@code width}. */
  public static String header(int width) {
    return String.format("%-" + width + "s %8s %22s  %s", "method", "mean", "p10/p50/p90/max",
        "per layer.kvHead");
  }

  /** One line: mean, p10/p50/p90/max and each head's mean tokens read exactly per step. */
  public String row(String label, int width) {
    StringBuilder heads = new StringBuilder();
    double[] means = headMeans();
    for (int h = 0; h < means.length; h++) {
      heads.append(String.format("%d.%d=%.0f ", h / kvHeads, h % kvHeads, means[h]));
    }
    return String.format("%-" + width + "s %8.0f %22s  %s", label, mean(),
        p10() + "/" + p50() + "/" + p90() + "/" + max(), heads.toString().strip());
  }

  /** All samples of {@code parts} (same shape) together. */
  public static BudgetStats merge(List<BudgetStats> parts) {
    if (parts.isEmpty()) {
      return new BudgetStats(0, 0);
    }
    BudgetStats all = new BudgetStats(parts.get(0).layers, parts.get(0).kvHeads);
    int heads = all.layers * all.kvHeads;
    for (BudgetStats p : parts) {
      if (p.layers != all.layers || p.kvHeads != all.kvHeads) {
        throw new IllegalArgumentException("budgets of different shapes");
      }
      for (int s = 0; s < p.steps; s++) {
        all.add(Arrays.copyOfRange(p.samples, s * heads, (s + 1) * heads));
      }
    }
    return all;
  }

  @JsonProperty
  public int layers() {
    return layers;
  }

  @JsonProperty
  public int kvHeads() {
    return kvHeads;
  }

  /** Decode steps recorded. */
  @JsonProperty
  public int steps() {
    return steps;
  }

  /** Mean tokens read exactly per step and head. */
  @JsonProperty
  public double mean() {
    int n = steps * layers * kvHeads;
    if (n == 0) {
      return Double.NaN;
    }
    long sum = 0;
    for (int i = 0; i < n; i++) {
      sum += samples[i];
    }
    return (double) sum / n;
  }

  /** The {@code q}-quantile (0..1, nearest rank) of tokens read exactly per step and head. */
  public int quantile(double q) {
    int n = steps * layers * kvHeads;
    if (n == 0) {
      return 0;
    }
    int[] sorted = Arrays.copyOf(samples, n);
    Arrays.sort(sorted);
    return sorted[Math.min(n - 1, Math.max(0, (int) Math.ceil(q * n) - 1))];
  }

  @JsonProperty
  public int p10() {
    return quantile(0.10);
  }

  @JsonProperty
  public int p50() {
    return quantile(0.50);
  }

  @JsonProperty
  public int p90() {
    return quantile(0.90);
  }

  @JsonProperty
  public int max() {
    return quantile(1.0);
  }

  /** Mean tokens read exactly per step, by head ({@code layer * kvHeads + kvHead}). */
  @JsonProperty
  public double[] headMeans() {
    int heads = layers * kvHeads;
    double[] means = new double[heads];
    for (int s = 0; s < steps; s++) {
      for (int h = 0; h < heads; h++) {
        means[h] += samples[s * heads + h];
      }
    }
    for (int h = 0; h < heads; h++) {
      means[h] = steps == 0 ? Double.NaN : means[h] / steps;
    }
    return means;
  }

  @JsonIgnore
  int[] rawSamples() {
    return Arrays.copyOf(samples, steps * layers * kvHeads);
  }
}
