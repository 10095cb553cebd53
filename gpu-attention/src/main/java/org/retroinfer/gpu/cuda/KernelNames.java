package org.retroinfer.gpu.cuda;

import java.util.ArrayList;
import java.util.List;
import org.retroinfer.wave.kv.KvDType;

/** The names of the kernels in {@code retroinfer_kernels.cu}, and which variant serves a shape. */
public final class KernelNames {
  /** Group-size variants compiled: a group of g heads runs on the smallest variant >= g. */
  static final int[] GROUP_VARIANTS = {1, 2, 4, 8};

  private KernelNames() {}

  public static int groupVariant(int g) {
    for (int v : GROUP_VARIANTS) {
      if (g <= v) {
        return v;
      }
    }
    throw new IllegalArgumentException("query group size " + g + " exceeds the largest kernel variant"
        + " (8 query heads per KV head)");
  }

  static String typeSuffix(KvDType t) {
    return switch (t) {
      case BFLOAT16 -> "bf16";
      case FLOAT16 -> "f16";
      case FLOAT32 -> "f32";
    };
  }

  public static String attendPartial(KvDType t, int g) {
    return "attend_partial_" + typeSuffix(t) + "_g" + groupVariant(g);
  }

  /**
   * How the exact-attention kernels load K/V: {@code STREAM} copies them asynchronously into
   * shared memory several steps ahead ({@code cp.async}, Ampere and newer), {@code REGISTERS} loads
   * them into registers one step ahead. Both compute the same partial states.
   */
  public enum Attend {
    STREAM,
    REGISTERS
  }

  /** The family the engines use unless told otherwise. */
  public static final Attend DEFAULT_ATTEND = Attend.STREAM;

  /** The exact-attention kernel of family {@code a}, over rows in place or through row indices. */
  public static String attend(Attend a, KvDType t, int g, boolean indexed) {
    String family = a == Attend.STREAM ? (indexed ? "attend_stream_indexed_" : "attend_stream_")
        : (indexed ? "attend_indexed_" : "attend_partial_");
    return family + typeSuffix(t) + "_g" + groupVariant(g);
  }

  /** attend_partial reading its rows through row indices (steady or cluster pool, in place). */
  public static String attendIndexed(KvDType t, int g) {
    return "attend_indexed_" + typeSuffix(t) + "_g" + groupVariant(g);
  }

  /** Centroid logits over centroids stored in the K/V type {@code t}. */
  public static String centroidLogits(KvDType t, int g) {
    return "centroid_logits_" + typeSuffix(t) + "_g" + groupVariant(g);
  }

  public static String estimatePartial(int g) {
    return "estimate_partial_g" + groupVariant(g);
  }

  public static final String CLUSTER_SCORES = "cluster_scores";
  public static final String SELECT_TOP = "select_top";
  public static final String GATHER_TASKS = "gather_tasks";
  public static final String GATHER_INDEX = "gather_index";
  public static final String MERGE_PARTIALS = "merge_partials";
  public static final String SYNTH_KV = "synth_kv";
  /** Threads per block of attend_partial (THREADS in the CUDA source). */
  public static final int ATTEND_THREADS = 128;
  /** Threads per block of merge_partials (MERGE_THREADS in the CUDA source). */
  public static final int MERGE_THREADS = 256;
  public static final String CLUSTER_SUMMARIES = "cluster_summaries";

  /** Every kernel name the Java side launches. */
  public static List<String> all() {
    List<String> out = new ArrayList<>();
    for (KvDType t : KvDType.values()) {
      for (int g : GROUP_VARIANTS) {
        out.add(attendPartial(t, g));
        out.add(attendIndexed(t, g));
        out.add(attend(Attend.STREAM, t, g, false));
        out.add(attend(Attend.STREAM, t, g, true));
        out.add(centroidLogits(t, g));
      }
    }
    for (int g : GROUP_VARIANTS) {
      out.add(estimatePartial(g));
    }
    out.addAll(List.of(CLUSTER_SCORES, SELECT_TOP, GATHER_TASKS, GATHER_INDEX,
        MERGE_PARTIALS,
        SYNTH_KV, CLUSTER_SUMMARIES));
    return out;
  }
}
