package org.retroinfer.gpu.emulation;

import java.lang.foreign.MemorySegment;
import org.retroinfer.gpu.buffer.ExecutionAssembler;
import org.retroinfer.gpu.buffer.GatherPlan;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.gpu.layout.SplitPlan;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * The GPU kernels of {@code retroinfer_kernels.cu}, step by step on the CPU: same inputs (the
 * flat tables and pools of a batch), same outputs (logits, scores, selection, gather, partial
 * softmax states, merge), the same split-K division, the same selection (the k-th largest score and
 * the same tie rule as select_top's radix select) and the same gather task lists. It exists so that
 * the kernels' semantics are tested against wave-core on machines without a GPU, and so that a GPU
 * run can be checked stage by stage against it. The order of summation differs from the GPU's: the
 * emulator runs an online softmax per tile of {@link SplitPlan#TILE} rows, the attention kernels
 * one per team of lanes merged at the end, and dot products split differently (last-bit
 * differences; selections are compared on the GPU's own scores).
 *
 * <p>Stateless; not optimised (reference speed).
 */
public final class KernelEmulator {
  private KernelEmulator() {}

  /** {@code centroid_logits}: logits[(item * g + h) * cStride + c] = scale * q_h . C[c]. */
  public static float[] centroidLogits(BatchTables t, MemorySegment centroids, float[] q, int cStride) {
    int d = t.dim;
    int g = t.groupSize;
    float scale = (float) (1.0 / Math.sqrt(d));
    VectorStore cs = VectorStore.wrap(centroids, d, KvDType.FLOAT32, t.totalClusters());
    float[] logits = new float[t.items * g * cStride];
    float[] row = new float[d];
    for (int i = 0; i < t.items; i++) {
      for (int c = 0; c < t.clusters[i]; c++) {
        cs.read((int) (t.centBase[i] + c), row, 0);
        for (int h = 0; h < g; h++) {
          logits[(i * g + h) * cStride + c] = dot(q, (i * g + h) * d, row, d) * scale;
        }
      }
    }
    return logits;
  }

  /**
   * {@code cluster_scores}: per item and head the softmax over all clusters (max and normaliser
   * combined from per-tile partials, as on the GPU), summed over the group.
   */
  public static float[] clusterScores(BatchTables t, float[] logits, int cStride) {
    int g = t.groupSize;
    float[] scores = new float[t.items * cStride];
    for (int i = 0; i < t.items; i++) {
      int nc = t.clusters[i];
      int tiles = (nc + SplitPlan.TILE - 1) / SplitPlan.TILE;
      for (int h = 0; h < g; h++) {
        int off = (i * g + h) * cStride;
        float[] tm = new float[tiles];
        float[] ts = new float[tiles];
        for (int k = 0; k < tiles; k++) {
          int c0 = k * SplitPlan.TILE;
          int c1 = Math.min(nc, c0 + SplitPlan.TILE);
          float mx = Float.NEGATIVE_INFINITY;
          for (int c = c0; c < c1; c++) {
            mx = Math.max(mx, logits[off + c]);
          }
          float s = 0;
          for (int c = c0; c < c1; c++) {
            s += (float) Math.exp(logits[off + c] - mx);
          }
          tm[k] = mx;
          ts[k] = s;
        }
        float m = Float.NEGATIVE_INFINITY;
        for (float v : tm) {
          m = Math.max(m, v);
        }
        float z = 0;
        for (int k = 0; k < tiles; k++) {
          z += ts[k] * (float) Math.exp(tm[k] - m);
        }
        for (int c = 0; c < nc; c++) {
          scores[i * cStride + c] += (float) Math.exp(logits[off + c] - m) / z;
        }
      }
    }
    return scores;
  }

  /**
   * {@code select_top}: per item the top r clusters by (score, lower id first) are retrieved and
   * the next e estimated, both ascending by id, found with the kernel's 4-pass 8-bit radix select
   * on the scores' bit patterns (scores are non-negative, so bit order is value order).
   */
  public static void select(BatchTables t, float[] scores, int cStride, Selection out) {
    for (int i = 0; i < t.items; i++) {
      int nc = t.clusters[i];
      int r = t.retrieve[i];
      int e = t.estimate[i];
      int[] keys = new int[nc];
      for (int c = 0; c < nc; c++) {
        float s = scores[i * cStride + c];
        if (!(s >= 0)) {
          throw new IllegalStateException("item " + i + ", cluster " + c + ": score " + s
              + " is not a non-negative number");
        }
        keys[c] = Float.floatToRawIntBits(s);
      }
      long[] all = r + e > 0 ? kthLargest(keys, r + e) : new long[] {0, 0};
      long[] ret = r > 0 ? kthLargest(keys, r) : new long[] {0, 0};
      int eqAll = 0;
      int eqR = 0;
      int nr = 0;
      int ne = 0;
      int rows = t.steadyLen[i];
      for (int c = 0; c < nc; c++) {
        long x = Integer.toUnsignedLong(keys[c]);
        boolean selAll = r + e > 0 && (x > all[0] || (x == all[0] && eqAll++ < all[1]));
        boolean selR = r > 0 && (x > ret[0] || (x == ret[0] && eqR++ < ret[1]));
        if (selR) {
          out.retIds()[i * out.rStride() + nr] = c;
          out.retDst()[i * out.rStride() + nr] = rows;
          rows += t.clusterSize[(int) (t.centBase[i] + c)];
          nr++;
        } else if (selAll) {
          out.estIds()[i * out.eStride() + ne++] = c;
        }
      }
      if (nr != r || ne != e) {
        throw new IllegalStateException("item " + i + ": selected " + nr + " + " + ne
            + " clusters, expected " + r + " + " + e);
      }
      out.execLen()[i] = rows;
    }
  }

  /** The radix select of the kernel: {k-th largest key (unsigned), how many equal to it are taken}. */
  static long[] kthLargest(int[] keys, int k) {
    long prefix = 0;
    long mask = 0;
    int kk = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
      int[] hist = new int[256];
      for (int key : keys) {
        long x = Integer.toUnsignedLong(key);
        if ((x & mask) == prefix) {
          hist[(int) ((x >>> shift) & 255)]++;
        }
      }
      int cum = 0;
      int b = 255;
      for (; b > 0; b--) {
        if (cum + hist[b] >= kk) {
          break;
        }
        cum += hist[b];
      }
      kk -= cum;
      prefix |= (long) b << shift;
      mask |= 255L << shift;
    }
    return new long[] {prefix, kk};
  }

  /** {@code gather_tasks}: executes a gather plan between byte pools. */
  public static void gather(GatherPlan plan, MemorySegment[] srcK, MemorySegment[] srcV,
      MemorySegment dstK, MemorySegment dstV, long rowBytes) {
    for (int k = 0; k < plan.size(); k++) {
      int s = plan.source(k);
      long bytes = plan.rows(k) * rowBytes;
      MemorySegment.copy(srcK[s], plan.srcRow(k) * rowBytes, dstK, plan.dstRow(k) * rowBytes, bytes);
      MemorySegment.copy(srcV[s], plan.srcRow(k) * rowBytes, dstV, plan.dstRow(k) * rowBytes, bytes);
    }
  }

  /**
   * {@code attend_stream}: split-K exact attention; item i reads rows
   * {@code [base[i], base[i] + len[i])} of K/V, split {@code s} of them rows
   * {@code [s * per, (s + 1) * per)}, written as partial {@code partOffset + s}.
   */
  public static void attendPartials(int d, int g, KvDType type, MemorySegment k, MemorySegment v,
      long rows, long[] base, int[] len, float[] q, SplitPlan split, Partials out, int partOffset) {
    VectorStore ks = VectorStore.wrap(k, d, type, Math.toIntExact(rows));
    VectorStore vs = VectorStore.wrap(v, d, type, Math.toIntExact(rows));
    float scale = (float) (1.0 / Math.sqrt(d));
    float[] row = new float[d];
    for (int i = 0; i < base.length; i++) {
      for (int s = 0; s < split.splits(); s++) {
        int from = Math.min(len[i], s * split.rowsPerSplit());
        int to = Math.min(len[i], from + split.rowsPerSplit());
        State st = new State(g, d);
        for (int t0 = from; t0 < to; t0 += SplitPlan.TILE) {
          int n = Math.min(SplitPlan.TILE, to - t0);
          float[][] p = new float[g][n];
          for (int j = 0; j < n; j++) {
            ks.read((int) (base[i] + t0 + j), row, 0);
            for (int h = 0; h < g; h++) {
              p[h][j] = dot(q, (i * g + h) * d, row, d) * scale;
            }
          }
          st.absorbTile(p, n, null);
          for (int j = 0; j < n; j++) {
            vs.read((int) (base[i] + t0 + j), row, 0);
            st.accumulate(p, j, row);
          }
        }
        st.write(out, i, partOffset + s);
      }
    }
  }

  /**
   * {@code estimate_partial}: the estimation zone of each item from the centroid logits, cluster
   * sizes and value sums, clusters split {@code per} to a partial from {@code partOffset}.
   */
  public static void estimatePartials(BatchTables t, Selection sel, float[] logits, int cStride,
      MemorySegment valueSums, int per, int splits, Partials out, int partOffset) {
    int d = t.dim;
    int g = t.groupSize;
    VectorStore vs = VectorStore.wrap(valueSums, d, KvDType.FLOAT32, t.totalClusters());
    float[] row = new float[d];
    for (int i = 0; i < t.items; i++) {
      int count = t.estimate[i];
      for (int s = 0; s < splits; s++) {
        int from = Math.min(count, s * per);
        int to = Math.min(count, from + per);
        State st = new State(g, d);
        for (int t0 = from; t0 < to; t0 += SplitPlan.TILE) {
          int n = Math.min(SplitPlan.TILE, to - t0);
          float[][] p = new float[g][n];
          float[] w = new float[n];
          int[] ids = new int[n];
          for (int j = 0; j < n; j++) {
            ids[j] = sel.estIds()[i * sel.eStride() + t0 + j];
            w[j] = t.clusterSize[(int) (t.centBase[i] + ids[j])];
            for (int h = 0; h < g; h++) {
              p[h][j] = logits[(i * g + h) * cStride + ids[j]];
            }
          }
          st.absorbTile(p, n, w);
          for (int j = 0; j < n; j++) {
            vs.read((int) (t.centBase[i] + ids[j]), row, 0);
            st.accumulate(p, j, row);
          }
        }
        st.write(out, i, partOffset + s);
      }
    }
  }

  /** {@code merge_partials}: the log-sum-exp merge of every partial of each item; zeros if empty. */
  public static void merge(Partials p, float[] out) {
    int g = p.groupSize();
    int d = p.dim();
    for (int i = 0; i < p.items(); i++) {
      for (int h = 0; h < g; h++) {
        float m = Float.NEGATIVE_INFINITY;
        for (int k = 0; k < p.parts(); k++) {
          int at = (i * p.parts() + k) * g + h;
          if (p.l()[at] > 0) {
            m = Math.max(m, p.m()[at]);
          }
        }
        for (int c = 0; c < d; c++) {
          float z = 0;
          float o = 0;
          for (int k = 0; k < p.parts(); k++) {
            int at = (i * p.parts() + k) * g + h;
            if (p.l()[at] > 0) {
              float w = (float) Math.exp(p.m()[at] - m);
              z += w * p.l()[at];
              o += w * p.o()[at * d + c];
            }
          }
          out[(i * g + h) * d + c] = z > 0 ? o / z : 0f;
        }
      }
    }
  }

  /** The result of one emulated wave step: the output and what the step did. */
  public record WaveStep(float[] out, Selection selection, GatherPlan plan, float[] scores,
      int cStride) {}

  /**
   * The whole wave step of the GPU engine on the CPU: ranking, selection, execution-buffer
   * assembly (from the block cache and the pool when {@code pool} is given, whose cache is then
   * updated through its updater exactly as on the GPU), exact split-K attention over the buffer,
   * the estimation zone, and the merge. {@code q} is {@code [item][g][d]}. With {@code pool} null
   * every retrieved cluster is read from the cluster-contiguous pool (GPU-resident mode, or
   * offload without a cache).
   */
  public static WaveStep waveStep(WaveBatch batch, float[] q, int targetBlocks, HostBlockPool pool) {
    return waveStep(batch, q, targetBlocks, pool, null);
  }

  /**
   * {@link #waveStep(WaveBatch, float[], int, HostBlockPool)} with the misses and the cache's fills
   * read from {@code source} (the host tier) instead of the batch's cluster pool, as the GPU
   * engine does with {@code useClusterSource}: each miss is staged at its execution-buffer rows,
   * and the gather reads it there. With {@code source} null, the pool.
   */
  public static WaveStep waveStep(WaveBatch batch, float[] q, int targetBlocks, HostBlockPool pool,
      org.retroinfer.gpu.buffer.ClusterSource source) {
    BatchTables t = batch.tables;
    int d = t.dim;
    int g = t.groupSize;
    int cStride = Math.max(1, t.maxClusters());
    float[] logits = centroidLogits(t, batch.centroids, q, cStride);
    float[] scores = clusterScores(t, logits, cStride);
    Selection sel = Selection.allocate(t);
    select(t, scores, cStride, sel);
    GatherPlan plan = new GatherPlan(64);
    ExecutionAssembler asm = new ExecutionAssembler();
    asm.missesAtDestination(source != null);
    asm.assemble(t, sel, pool == null ? null : pool.cache(), true, plan);
    long rb = t.rowBytes();
    MemorySegment cacheK = pool == null ? null : pool.keys;
    MemorySegment cacheV = pool == null ? null : pool.values;
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
      MemorySegment ek = arena.allocate(Math.max(16, t.execRows * rb), 256);
      MemorySegment ev = arena.allocate(Math.max(16, t.execRows * rb), 256);
      MemorySegment missK = batch.clusterK;
      MemorySegment missV = batch.clusterV;
      if (source != null) {
        missK = arena.allocate(Math.max(16, t.execRows * rb), 256);
        missV = arena.allocate(Math.max(16, t.execRows * rb), 256);
        asm.stageMisses(t, source, missK, missV, rb);
      }
      gather(plan, new MemorySegment[] {batch.steadyK, cacheK, missK},
          new MemorySegment[] {batch.steadyV, cacheV, missV}, ek, ev, rb);
      if (pool != null) {
        // after the step, as on the GPU: the updater decides, the admitted rows are copied
        asm.submitTo(pool.updater());
        pool.updater().awaitIdle();
        if (source != null) {
          pool.fill(t, pool.updater().drainAdmissions(), source);
        } else {
          pool.fill(t, pool.updater().drainAdmissions(), batch.clusterK, batch.clusterV);
        }
      }
      int maxExec = 0;
      for (int c : t.execCapacity) {
        maxExec = Math.max(maxExec, c);
      }
      SplitPlan split = SplitPlan.of(t.items, maxExec, targetBlocks);
      int eMax = t.maxEstimate();
      SplitPlan est = SplitPlan.of(t.items, eMax, targetBlocks);
      int estSplits = eMax == 0 ? 0 : est.splits();
      Partials parts = Partials.allocate(t.items, split.splits() + estSplits, g, d);
      attendPartials(d, g, t.kvType, ek, ev, t.execRows, t.execBase, sel.execLen(), q, split, parts, 0);
      if (estSplits > 0) {
        estimatePartials(t, sel, logits, cStride, batch.valueSums, est.rowsPerSplit(), estSplits,
            parts, split.splits());
      }
      float[] out = new float[t.items * g * d];
      merge(parts, out);
      return new WaveStep(out, sel, plan, scores, cStride);
    }
  }

  /** Full attention over each item's rows {@code [base, base + len)} (the baseline kernel). */
  public static float[] fullAttention(int d, int g, KvDType type, MemorySegment k, MemorySegment v,
      long rows, long[] base, int[] len, float[] q, int targetBlocks) {
    int maxLen = 0;
    for (int n : len) {
      maxLen = Math.max(maxLen, n);
    }
    SplitPlan split = SplitPlan.of(base.length, maxLen, targetBlocks);
    Partials parts = Partials.allocate(base.length, split.splits(), g, d);
    attendPartials(d, g, type, k, v, rows, base, len, q, split, parts, 0);
    float[] out = new float[base.length * g * d];
    merge(parts, out);
    return out;
  }

  private static float dot(float[] q, int qOff, float[] row, int d) {
    float s = 0;
    for (int c = 0; c < d; c++) {
      s += q[qOff + c] * row[c];
    }
    return s;
  }

  /** The online-softmax state of one thread block: softmax_tile + accumulate_tile. */
  private static final class State {
    final int g;
    final int d;
    final float[] m;
    final float[] l;
    final float[] alpha;
    final float[] o;

    State(int g, int d) {
      this.g = g;
      this.d = d;
      m = new float[g];
      l = new float[g];
      alpha = new float[g];
      o = new float[g * d];
      java.util.Arrays.fill(m, Float.NEGATIVE_INFINITY);
    }

    /** Turns logits into exp(l - m_new), updates m, Z, and rescales O by alpha. */
    void absorbTile(float[][] p, int n, float[] w) {
      for (int h = 0; h < g; h++) {
        float mx = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
          mx = Math.max(mx, p[h][j]);
        }
        float mNew = Math.max(m[h], mx);
        float sum = 0;
        for (int j = 0; j < n; j++) {
          p[h][j] = (float) Math.exp(p[h][j] - mNew);
          sum += w == null ? p[h][j] : p[h][j] * w[j];
        }
        alpha[h] = l[h] == 0 ? 0 : (float) Math.exp(m[h] - mNew);
        l[h] = l[h] * alpha[h] + sum;
        m[h] = mNew;
        for (int c = 0; c < d; c++) {
          o[h * d + c] *= alpha[h];
        }
      }
    }

    void accumulate(float[][] p, int j, float[] row) {
      for (int h = 0; h < g; h++) {
        float pj = p[h][j];
        for (int c = 0; c < d; c++) {
          o[h * d + c] += pj * row[c];
        }
      }
    }

    void write(Partials out, int item, int part) {
      int at = (item * out.parts() + part) * g;
      for (int h = 0; h < g; h++) {
        out.m()[at + h] = m[h];
        out.l()[at + h] = l[h];
        System.arraycopy(o, h * d, out.o(), (at + h) * d, d);
      }
    }
  }
}
