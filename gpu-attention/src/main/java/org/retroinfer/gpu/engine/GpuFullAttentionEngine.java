package org.retroinfer.gpu.engine;

import java.lang.foreign.MemorySegment;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.cuda.DeviceBuffer;
import org.retroinfer.gpu.cuda.KernelNames;
import org.retroinfer.gpu.layout.SplitPlan;
import org.retroinfer.wave.kv.KvDType;

/**
 * The full-attention baseline on the GPU: for each item (request x KV head) exact attention of its
 * g queries over rows {@code [base, base + len)} of a device K/V pool, split-K over the GPU
 * ({@code attend_stream}) and merged ({@code merge_partials}). Outputs are poisoned (NaN) before
 * each launch, so a row the kernels fail to write shows up as NaN.
 */
public final class GpuFullAttentionEngine implements AutoCloseable {
  private final CudaContext cx;
  private final int dim;
  private final int groupSize;
  private final KvDType type;
  private final int items;
  private final long rows;
  private final SplitPlan split;
  public final DeviceBuffer keys;
  public final DeviceBuffer values;
  private final DeviceBuffer base;
  private final DeviceBuffer len;
  private final DeviceBuffer q;
  private final DeviceBuffer partM;
  private final DeviceBuffer partL;
  private final DeviceBuffer partO;
  private final DeviceBuffer out;
  private CudaContext.CudaGraph graph;

  public GpuFullAttentionEngine(CudaContext cx, int dim, int groupSize, KvDType type, long[] itemBase,
      int[] itemLen, long poolRows) {
    org.retroinfer.gpu.layout.Shapes.check(dim, groupSize);
    if (itemBase.length != itemLen.length || itemBase.length == 0) {
      throw new IllegalArgumentException("need one base and one length per item, got "
          + itemBase.length + " and " + itemLen.length);
    }
    int maxLen = 0;
    for (int i = 0; i < itemLen.length; i++) {
      if (itemBase[i] < 0 || itemLen[i] < 0 || itemBase[i] + itemLen[i] > poolRows) {
        throw new IllegalArgumentException("item " + i + " rows [" + itemBase[i] + ", "
            + (itemBase[i] + itemLen[i]) + ") outside the pool of " + poolRows + " rows");
      }
      maxLen = Math.max(maxLen, itemLen[i]);
    }
    this.cx = cx;
    this.dim = dim;
    this.groupSize = groupSize;
    this.type = type;
    this.items = itemBase.length;
    this.rows = poolRows;
    cx.makeCurrent();
    this.split = SplitPlan.of(items, maxLen,
        cx.residentBlocks(KernelNames.attend(type, groupSize, false), KernelNames.ATTEND_THREADS));
    long rb = (long) dim * type.bytes();
    keys = new DeviceBuffer(poolRows * rb);
    values = new DeviceBuffer(poolRows * rb);
    base = new DeviceBuffer(8L * items);
    base.upload(itemBase);
    len = new DeviceBuffer(4L * items);
    len.upload(itemLen);
    q = new DeviceBuffer(4L * items * groupSize * dim);
    long states = (long) items * split.splits() * groupSize;
    partM = new DeviceBuffer(4 * states);
    partL = new DeviceBuffer(4 * states);
    partO = new DeviceBuffer(4 * states * dim);
    out = new DeviceBuffer(4L * items * groupSize * dim);
  }

  public SplitPlan split() {
    return split;
  }

  /** Copies the pool's K/V from host memory (same layout: rows of {@code dim} elements). */
  public void upload(MemorySegment k, MemorySegment v) {
    cx.makeCurrent();
    keys.upload(k, 0, k.byteSize());
    values.upload(v, 0, v.byteSize());
  }

  /** Fills the pool with synthetic clustered K/V on the device (benchmarks). */
  public void synthesize(long seed) {
    cx.makeCurrent();
    if (type == KvDType.FLOAT16) {
      throw new IllegalArgumentException("synthetic K/V are bf16 or f32; got " + type);
    }
    cx.launch(KernelNames.SYNTH_KV, 4096, 1, 256, cx.main(), keys.ptr(), values.ptr(), rows, dim,
        type == KvDType.BFLOAT16 ? 1 : 0, seed);
    CudaContext.sync(cx.main());
  }

  /** Enqueues one attention on the main stream (for timing); results via {@link #attend}. */
  public void enqueue() {
    if (graph != null) {
      cx.launch(graph);
      return;
    }
    enqueueKernels();
  }

  /**
   * From now on {@link #enqueue} replays the attention as one captured CUDA graph instead of
   * launching its kernels one by one (the same kernels and arguments).
   */
  public void useGraph() {
    if (graph == null) {
      graph = cx.capture(this::enqueueKernels);
    }
  }

  private void enqueueKernels() {
    // the steady-pool and index arguments are unused without indices
    cx.launch(KernelNames.attend(type, groupSize, false), split.splits(), items,
        KernelNames.ATTEND_THREADS, cx.main(), keys.ptr(), values.ptr(), keys.ptr(), values.ptr(),
        KernelNames.NO_INDEX, base.ptr(), len.ptr(), q.ptr(), dim, groupSize, (float) (1.0 / Math.sqrt(dim)),
        split.rowsPerSplit(), split.splits(), 0, partM.ptr(), partL.ptr(), partO.ptr());
    cx.launch(KernelNames.MERGE_PARTIALS, items, groupSize, KernelNames.MERGE_THREADS, cx.main(),
        partM.ptr(), partL.ptr(), partO.ptr(), split.splits(), groupSize, dim, out.ptr());
  }

  /** Uploads the queries ({@code [item][g][d]}). */
  public void setQueries(float[] queries) {
    if (queries.length != items * groupSize * dim) {
      throw new IllegalArgumentException(queries.length + " query floats, expected items " + items
          + " x g " + groupSize + " x d " + dim);
    }
    cx.makeCurrent();
    q.upload(queries);
  }

  /** Attention of {@code queries} ({@code [item][g][d]}); returns {@code [item][g][d]}. */
  public float[] attend(float[] queries) {
    setQueries(queries);
    out.poison();
    partM.poison();
    partL.poison();
    partO.poison();
    enqueue();
    CudaContext.sync(cx.main());
    float[] result = new float[items * groupSize * dim];
    out.download(result);
    return result;
  }

  /** Bytes of K and V one attention reads. */
  public long bytesRead(int[] itemLen) {
    long n = 0;
    for (int l : itemLen) {
      n += l;
    }
    return 2 * n * dim * type.bytes();
  }

  @Override
  public void close() {
    cx.makeCurrent();
    if (graph != null) {
      graph.close();
      graph = null;
    }
    for (DeviceBuffer b : new DeviceBuffer[] {keys, values, base, len, q, partM, partL, partO, out}) {
      b.close();
    }
  }
}
