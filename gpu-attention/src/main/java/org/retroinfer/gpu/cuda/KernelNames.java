package org.retroinfer.gpu.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
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

  /**
   * The split-K exact-attention kernel (K/V copied with {@code cp.async} into a shared-memory ring),
   * over rows in place, or {@code indexed}: through the row indices of {@code gather_index}.
   */
  public static String attend(KvDType t, int g, boolean indexed) {
    return (indexed ? "attend_stream_indexed_" : "attend_stream_") + typeSuffix(t) + "_g"
        + groupVariant(g);
  }

  /**
   * The null pointer passed as the row indices of {@link #attend} when it reads its rows in place
   * (the steady-pool arguments are unused then too).
   */
  public static final CUdeviceptr NO_INDEX = new CUdeviceptr();

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
  /** Threads per block of the attention kernels (THREADS in the CUDA source). */
  public static final int ATTEND_THREADS = 128;
  /** Threads per block of merge_partials (MERGE_THREADS in the CUDA source). */
  public static final int MERGE_THREADS = 256;
  public static final String CLUSTER_SUMMARIES = "cluster_summaries";

  /** Every kernel name the Java side launches. */
  public static List<String> all() {
    List<String> out = new ArrayList<>();
    for (KvDType t : KvDType.values()) {
      for (int g : GROUP_VARIANTS) {
        out.add(attend(t, g, false));
        out.add(attend(t, g, true));
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
