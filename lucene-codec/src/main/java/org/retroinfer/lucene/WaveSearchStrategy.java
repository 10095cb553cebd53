package org.retroinfer.lucene;

import java.util.Objects;
import org.apache.lucene.search.knn.KnnSearchStrategy;

/**
 * How many clusters a kNN search over a {@link WaveVectorsFormat} field probes: {@code fraction}
 * of the field's clusters in the segment, at least {@code minProbes}. Pass it to
 * {@code new KnnFloatVectorQuery(field, target, k, filter, strategy)}; other formats ignore it.
 * More probes: higher recall, more vectors scored.
 */
public final class WaveSearchStrategy extends KnnSearchStrategy {
  private final double fraction;
  private final int minProbes;

  /**
   * @param fraction share of the clusters to probe, in [0, 1]
   * @param minProbes least clusters to probe, at least 1
   */
  public WaveSearchStrategy(double fraction, int minProbes) {
    if (!(fraction >= 0 && fraction <= 1) || minProbes < 1) {
      throw new IllegalArgumentException("need fraction in [0, 1] and minProbes >= 1, got "
          + fraction + " and " + minProbes);
    }
    this.fraction = fraction;
    this.minProbes = minProbes;
  }

  /** Exactly {@code probes} clusters (or all, if fewer). */
  public static WaveSearchStrategy exactly(int probes) {
    return new WaveSearchStrategy(0, probes);
  }

  /** Clusters probed among {@code clusters}. */
  public int probeCount(int clusters) {
    return Math.min(clusters, Math.max(minProbes, (int) Math.ceil(fraction * clusters)));
  }

  @Override
  public void nextVectorsBlock() {}

  @Override
  public boolean equals(Object o) {
    return o instanceof WaveSearchStrategy w && w.fraction == fraction && w.minProbes == minProbes;
  }

  @Override
  public int hashCode() {
    return Objects.hash(fraction, minProbes);
  }

  @Override
  public String toString() {
    return "WaveSearchStrategy(fraction=" + fraction + ", minProbes=" + minProbes + ")";
  }
}
