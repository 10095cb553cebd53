package org.retroinfer.gpu.engine;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;
import org.retroinfer.gpu.buffer.Admission;
import org.retroinfer.gpu.buffer.BlockCache;
import org.retroinfer.gpu.buffer.CacheUpdater;
import org.retroinfer.gpu.buffer.ClusterSource;
import org.retroinfer.gpu.buffer.ExecutionAssembler;
import org.retroinfer.gpu.buffer.GatherPlan;
import org.retroinfer.gpu.cuda.Cuda;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.gpu.cuda.DeviceBuffer;
import org.retroinfer.gpu.cuda.KernelNames;
import org.retroinfer.gpu.cuda.PinnedBuffer;
import org.retroinfer.gpu.layout.BatchTables;
import org.retroinfer.gpu.layout.Selection;
import org.retroinfer.gpu.layout.SplitPlan;
import org.retroinfer.gpu.layout.WaveBatch;
import org.retroinfer.wave.kv.KvDType;

/**
 * Tripartite wave attention for a batch of items on the GPU, one decode step per {@link #step}:
 *
 * <ol>
 *   <li>main stream: centroid logits, cluster scores (softmax per head summed over the group),
 *       top-(r+e) selection;
 *   <li>aux stream (overlapping 3-4): the estimation zone from the centroid logits, sizes and value
 *       sums;
 *   <li>main: the execution buffer: the steady zone (device) and the retrieved clusters, which come
 *       from the device pool ({@link Mode#RESIDENT}: a device-side gather, no host involvement), or
 *       from the wave buffer ({@link Mode#OFFLOAD_CACHED}: the CPU looks the clusters up in the
 *       block cache's mapping table, hits are copied from the device block pool, misses read from
 *       pinned host memory through a mapped pointer), or all from pinned host memory
 *       ({@link Mode#OFFLOAD_UNCACHED});
 *   <li>main: split-K exact attention over the execution buffer, then the log-sum-exp merge of
 *       every partial state (exact splits and estimation).
 * </ol>
 *
 * <p>In {@code OFFLOAD_CACHED} mode the step's hits and misses go to a {@link CacheUpdater} whose
 * thread applies LRU and decides admissions off the critical path; decided admissions are copied
 * host->cache on the copy stream after the current step's gather (so no block being read is
 * overwritten), and become hits once that copy's event has completed.
 *
 * <p>One engine per batch shape; used by one thread at a time.
 */
public final class GpuWaveEngine implements AutoCloseable {
  /** Where retrieved clusters are read from. */
  public enum Mode {
    RESIDENT,
    OFFLOAD_CACHED,
    OFFLOAD_UNCACHED
  }

  /** What the last step did: clusters hit and missed, and bytes moved over PCIe. */
  public record StepStats(int hits, int misses, long missBytes, long fillBytes) {
    public long pcieBytes() {
      return missBytes + fillBytes;
    }
  }

  private static final int GATHER_ROWS = 64;
  private final CudaContext cx;
  private final BatchTables t;
  private final Mode mode;
  private final int d;
  private final int g;
  private final long rowBytes;
  private final float scale;
  private final SplitPlan split;
  private final SplitPlan est;
  private final int estSplits;
  private final int parts;
  private final int cStride;
  private final int tiles;
  private final Selection sel;
  private final List<AutoCloseable> owned = new ArrayList<>();

  private final DeviceBuffer steadyK;
  private final DeviceBuffer steadyV;
  private final DeviceBuffer clusterK; // RESIDENT
  private final DeviceBuffer clusterV;
  private final PinnedBuffer hostK; // OFFLOAD_*
  private final PinnedBuffer hostV;
  private final DeviceBuffer cacheK; // OFFLOAD_CACHED
  private final DeviceBuffer cacheV;
  private final DeviceBuffer centroids;
  private final DeviceBuffer valueSums;
  private final DeviceBuffer execK;
  private final DeviceBuffer execV;
  private final DeviceBuffer dRowIdx; // RESIDENT
  private final DeviceBuffer dCentBase;
  private final DeviceBuffer dClusters;
  private final DeviceBuffer dRetrieve;
  private final DeviceBuffer dEstimate;
  private final DeviceBuffer dClusterRow;
  private final DeviceBuffer dClusterSize;
  private final DeviceBuffer dSteadyLen;
  private final DeviceBuffer dExecBase;
  private final DeviceBuffer dQ;
  private final DeviceBuffer dLogits;
  private final DeviceBuffer dTileM;
  private final DeviceBuffer dTileS;
  private final DeviceBuffer dScores;
  private final DeviceBuffer dRetIds;
  private final DeviceBuffer dRetDst;
  private final DeviceBuffer dEstIds;
  private final DeviceBuffer dExecLen;
  private final DeviceBuffer partM;
  private final DeviceBuffer partL;
  private final DeviceBuffer partO;
  private final DeviceBuffer dOut;
  private final Tasks steadyTasks;
  private final Tasks stepTasks;
  private final Tasks fillTasks;
  private final PinnedBuffer stageQ;
  private final PinnedBuffer stageOut;
  private final PinnedBuffer stageSel;
  private final CUevent evSelect;
  private final CUevent evEst;
  private final CUevent evGather;
  private final CUevent evFill;

  private final BlockCache cache;
  private final CacheUpdater updater;
  private final ExecutionAssembler assembler = new ExecutionAssembler();
  private final GatherPlan plan = new GatherPlan(GATHER_ROWS);
  private final GatherPlan fillPlan;
  private final List<Admission> waiting = new ArrayList<>();
  private List<Admission> inFlight;
  private StepStats last = new StepStats(0, 0, 0, 0);
  /** The host tier the offload modes read misses and fills from, or null: the pinned pool. */
  private ClusterSource source;
  private PinnedBuffer missStageK;
  private PinnedBuffer missStageV;
  private CudaContext.CudaGraph graph;
  private CudaContext.CudaGraph deviceGraph;
  private Profile profile;
  private long enqueueNanos;

  /**
   * An engine for the batch layout {@code t}. {@code cacheFraction} and {@code blockTokens} size the
   * block cache of {@link Mode#OFFLOAD_CACHED} (ALGORITHM.md: 5% of all KV tokens, blocks of 8).
   */
  public GpuWaveEngine(CudaContext cx, BatchTables t, Mode mode, double cacheFraction, int blockTokens) {
    this.cx = cx;
    this.t = t;
    this.mode = mode;
    this.d = t.dim;
    this.g = t.groupSize;
    this.rowBytes = t.rowBytes();
    this.scale = (float) (1.0 / Math.sqrt(d));
    cx.makeCurrent();
    int target = 4 * Math.max(1, cx.info().multiprocessors());
    int maxExec = 0;
    for (int c : t.execCapacity) {
      maxExec = Math.max(maxExec, c);
    }
    split = SplitPlan.of(t.items, maxExec,
        cx.residentBlocks(attendKernel(), KernelNames.ATTEND_THREADS));
    int eMax = t.maxEstimate();
    est = SplitPlan.of(t.items, eMax, target);
    estSplits = eMax == 0 ? 0 : est.splits();
    parts = split.splits() + estSplits;
    cStride = Math.max(1, t.maxClusters());
    tiles = Math.max(1, (cStride + SplitPlan.TILE - 1) / SplitPlan.TILE);
    sel = Selection.allocate(t);
    // one fill task per block: the fill tasks' capacity is the block count
    fillPlan = new GatherPlan(Math.max(1, blockTokens));

    steadyK = dev(t.steadyRows * rowBytes);
    steadyV = dev(t.steadyRows * rowBytes);
    if (mode == Mode.RESIDENT) {
      clusterK = dev(t.clusterRows * rowBytes);
      clusterV = dev(t.clusterRows * rowBytes);
      hostK = null;
      hostV = null;
    } else {
      clusterK = null;
      clusterV = null;
      hostK = pinned(t.clusterRows * rowBytes);
      hostV = pinned(t.clusterRows * rowBytes);
    }
    if (mode == Mode.OFFLOAD_CACHED) {
      int blocks = BlockCache.blocksFor(t.clusterRows + t.steadyRows, cacheFraction, blockTokens);
      cache = new BlockCache(t.totalClusters(), blocks, blockTokens);
      updater = new CacheUpdater(cache);
      owned.add(updater);
      cacheK = dev((long) blocks * blockTokens * rowBytes);
      cacheV = dev((long) blocks * blockTokens * rowBytes);
    } else {
      cache = null;
      updater = null;
      cacheK = null;
      cacheV = null;
    }
    // in the K/V type: ranking reads centroids rounded to the keys' precision (WaveIndex's
    // ranking copy), so 16-bit K/V halve the bytes ranking reads
    centroids = dev((long) t.totalClusters() * d * t.kvType.bytes());
    valueSums = dev(4L * t.totalClusters() * d);
    if (mode == Mode.RESIDENT) {
      // no execution buffer: attend_indexed reads the steady zone and the retrieved clusters in
      // place, through one row index per execution-buffer row (steady rows fixed here)
      execK = null;
      execV = null;
      dRowIdx = dev(8L * Math.max(1, t.execRows));
      long[] idx = new long[Math.toIntExact(Math.max(1, t.execRows))];
      for (int i = 0; i < t.items; i++) {
        for (int k = 0; k < t.steadyLen[i]; k++) {
          idx[Math.toIntExact(t.execBase[i] + k)] = -(t.steadyBase[i] + k) - 1;
        }
      }
      dRowIdx.upload(idx);
    } else {
      execK = dev(t.execRows * rowBytes);
      execV = dev(t.execRows * rowBytes);
      dRowIdx = null;
    }
    dCentBase = upload(t.centBase);
    dClusters = upload(t.clusters);
    dRetrieve = upload(t.retrieve);
    dEstimate = upload(t.estimate);
    dClusterRow = upload(t.clusterRow);
    dClusterSize = upload(t.clusterSize);
    dSteadyLen = upload(t.steadyLen);
    dExecBase = upload(t.execBase);
    int qFloats = t.items * g * d;
    dQ = dev(4L * qFloats);
    dLogits = dev(4L * t.items * g * cStride);
    dTileM = dev(4L * t.items * tiles * g);
    dTileS = dev(4L * t.items * tiles * g);
    dScores = dev(4L * t.items * cStride);
    dRetIds = dev(4L * sel.retIds().length);
    dRetDst = dev(4L * sel.retDst().length);
    dEstIds = dev(4L * sel.estIds().length);
    dExecLen = dev(4L * t.items);
    long states = (long) t.items * parts * g;
    partM = dev(4 * states);
    partL = dev(4 * states);
    partO = dev(4 * states * d);
    dOut = dev(4L * qFloats);
    stageQ = pinned(4L * qFloats);
    stageOut = pinned(4L * qFloats);
    stageSel = pinned(8L * sel.retIds().length);

    if (mode == Mode.RESIDENT) {
      steadyTasks = new Tasks(0); // the steady rows are read in place through dRowIdx
    } else {
      GatherPlan steady = new GatherPlan(GATHER_ROWS);
      for (int i = 0; i < t.items; i++) {
        if (t.steadyLen[i] > 0) {
          steady.add(GatherPlan.STEADY, t.steadyBase[i], t.execBase[i], t.steadyLen[i]);
        }
      }
      steadyTasks = new Tasks(steady.size());
      steadyTasks.uploadSync(steady);
    }
    stepTasks = new Tasks(mode == Mode.RESIDENT ? 0 : (int) Math.min(Integer.MAX_VALUE - 8, t.execRows));
    fillTasks = new Tasks(cache == null ? 0 : cache.blocks());
    evSelect = cx.newEvent(false);
    evEst = cx.newEvent(false);
    evGather = cx.newEvent(false);
    evFill = cx.newEvent(false);
  }

  public Mode mode() {
    return mode;
  }

  public BatchTables tables() {
    return t;
  }

  /** The block cache (OFFLOAD_CACHED), else null. */
  public BlockCache cache() {
    return cache;
  }

  public StepStats lastStep() {
    return last;
  }

  /**
   * Reads the offload modes' misses from {@code source} (the host tier, e.g. the application's CPU
   * tier over a stored context) instead of the pinned pool: after the selection comes back, each
   * miss is copied from the source into a pinned staging area at its execution-buffer rows, and the
   * gather reads it there; the block cache's fills are read from the source too. Call before the
   * first step. RESIDENT mode holds every cluster on the device and reads no host tier.
   */
  public void useClusterSource(ClusterSource source) {
    if (mode == Mode.RESIDENT) {
      throw new IllegalStateException("a RESIDENT engine holds every cluster on the device; a host"
          + " tier serves the OFFLOAD modes' misses");
    }
    this.source = java.util.Objects.requireNonNull(source, "source");
    assembler.missesAtDestination(true);
    missStageK = pinned(Math.max(16, t.execRows * rowBytes));
    missStageV = pinned(Math.max(16, t.execRows * rowBytes));
  }

  /** Copies a flattened batch of wave-core caches to the device (and the pinned host tier). */
  public void load(WaveBatch b) {
    if (b.tables.items != t.items || b.tables.clusterRows != t.clusterRows
        || b.tables.kvType != t.kvType) {
      throw new IllegalArgumentException("batch does not match the engine's layout");
    }
    cx.makeCurrent();
    steadyK.upload(b.steadyK, 0, t.steadyRows * rowBytes);
    steadyV.upload(b.steadyV, 0, t.steadyRows * rowBytes);
    long bytes = t.clusterRows * rowBytes;
    if (mode == Mode.RESIDENT) {
      clusterK.upload(b.clusterK, 0, bytes);
      clusterV.upload(b.clusterV, 0, bytes);
    } else {
      MemorySegment.copy(b.clusterK, 0, hostK.segment(), 0, bytes);
      MemorySegment.copy(b.clusterV, 0, hostV.segment(), 0, bytes);
    }
    uploadCentroids(b.centroids);
    valueSums.upload(b.valueSums, 0, 4L * t.totalClusters() * d);
  }

  /**
   * Uploads float32 centroids into the K/V-typed centroid pool. WaveBatch's centroids are already
   * rounded to the K/V type (the values wave-core ranks with), so the conversion is exact.
   */
  private void uploadCentroids(MemorySegment f32) {
    long n = (long) t.totalClusters() * d;
    if (t.kvType == KvDType.FLOAT32) {
      centroids.upload(f32, 0, 4 * n);
      return;
    }
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
      MemorySegment bits = arena.allocate(2 * Math.max(1, n), 16);
      for (long i = 0; i < n; i++) {
        bits.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i,
            t.kvType.encode16(f32.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i)));
      }
      centroids.upload(bits, 0, 2 * n);
    }
  }

  /**
   * Fills every pool with synthetic clustered K/V generated on the device, and computes the
   * centroids and value sums from them on the device (benchmarks: no host-side data).
   */
  public void synthesize(long seed) {
    if (t.kvType == KvDType.FLOAT16) {
      throw new IllegalArgumentException("synthetic K/V are bf16 or f32; got " + t.kvType);
    }
    cx.makeCurrent();
    int bf16 = t.kvType == KvDType.BFLOAT16 ? 1 : 0;
    cx.launch(KernelNames.SYNTH_KV, 1024, 1, 256, cx.main(), steadyK.ptr(), steadyV.ptr(),
        t.steadyRows, d, bf16, seed);
    DeviceBuffer k = clusterK;
    DeviceBuffer v = clusterV;
    if (mode != Mode.RESIDENT) {
      k = new DeviceBuffer(t.clusterRows * rowBytes);
      v = new DeviceBuffer(t.clusterRows * rowBytes);
    }
    try {
      cx.launch(KernelNames.SYNTH_KV, 8192, 1, 256, cx.main(), k.ptr(), v.ptr(), t.clusterRows, d,
          bf16, seed + 1);
      cx.launch(KernelNames.CLUSTER_SUMMARIES, 8192, 1, Math.min(256, d), cx.main(), k.ptr(), v.ptr(),
          dClusterRow.ptr(), dClusterSize.ptr(), (long) t.totalClusters(), d, bf16, centroids.ptr(),
          valueSums.ptr());
      CudaContext.sync(cx.main());
      if (mode != Mode.RESIDENT) {
        k.download(hostK.segment(), 0, t.clusterRows * rowBytes);
        v.download(hostV.segment(), 0, t.clusterRows * rowBytes);
      }
    } finally {
      if (mode != Mode.RESIDENT) {
        k.close();
        v.close();
      }
    }
  }

  /** One decode step: {@code q} is {@code [item][g][d]}; returns {@code [item][g][d]}. */
  public float[] step(float[] q) {
    long t0 = System.nanoTime();
    if (graph != null) {
      checkQueries(q);
      cx.makeCurrent();
      MemorySegment.copy(q, 0, stageQ.segment(), ValueLayout.JAVA_FLOAT, 0, q.length);
      cx.launch(graph);
    } else if (profile != null && profile.gate != null && profile.closeGate()) {
      enqueueStep(q);
      int v = profile.gateValue;
      profile.gate.segment().set(ValueLayout.JAVA_INT, 0, v);
      java.lang.invoke.VarHandle.fullFence();
    } else {
      enqueueStep(q);
    }
    enqueueNanos = System.nanoTime() - t0;
    CudaContext.sync(cx.main());
    if (profile != null) {
      profile.collect();
    }
    float[] out = new float[t.items * g * d];
    MemorySegment.copy(stageOut.segment(), ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
    return out;
  }

  /** Poisons every output and intermediate buffer with NaN (tests: unwritten values show up). */
  public void poison() {
    cx.makeCurrent();
    for (DeviceBuffer b : new DeviceBuffer[] {dLogits, dTileM, dTileS, dScores, dRetIds, dRetDst,
        dEstIds, dExecLen, partM, partL, partO, dOut, execK, execV}) {
      if (b == null) {
        continue; // RESIDENT has no execution buffer; its row indices are never poisoned (a
        // poisoned index would be a wild read, not a NaN)
      }
      b.poison();
    }
  }

  /** The last step's selection, read back from the device (tests). */
  public Selection readSelection() {
    cx.makeCurrent();
    CudaContext.sync(cx.main());
    Selection s = Selection.allocate(t);
    dRetIds.download(s.retIds());
    dRetDst.download(s.retDst());
    dEstIds.download(s.estIds());
    dExecLen.download(s.execLen());
    return s;
  }

  /** The output on the device ({@code [item][g][d]}), read back (tests of replayOnDevice). */
  public float[] readOutput() {
    cx.makeCurrent();
    CudaContext.sync(cx.main());
    float[] o = new float[t.items * g * d];
    dOut.download(o);
    return o;
  }

  /** The last step's cluster scores ({@code [item][cStride]}), read back (tests). */
  public float[] readScores() {
    cx.makeCurrent();
    CudaContext.sync(cx.main());
    float[] s = new float[t.items * cStride];
    dScores.download(s);
    return s;
  }

  public int scoreStride() {
    return cStride;
  }

  /** The exact-attention kernel of this mode: in place through row indices when RESIDENT. */
  private String attendKernel() {
    return KernelNames.attend(t.kvType, g, mode == Mode.RESIDENT);
  }

  private void checkQueries(float[] q) {
    if (q.length != t.items * g * d) {
      throw new IllegalArgumentException(q.length + " query floats, expected items " + t.items
          + " x g " + g + " x d " + d);
    }
  }

  /**
   * From now on (RESIDENT mode) a step replays its whole device side, from the query upload to the
   * output's download, as one captured CUDA graph: the same kernels and arguments, one launch call.
   * The offload modes cannot: the CPU looks the selection up in the middle of a step.
   */
  public void useGraph() {
    if (graph == null) {
      graph = captureStep(true);
    }
  }

  /**
   * Runs one step's device work again, from the queries already on the device (the last step's)
   * to the output left on the device: no host copies, one graph launch (RESIDENT; captured on first
   * use). Timings comparable with full attention's, whose queries and output also stay on the
   * device, as they would between the layers of a model on the GPU.
   */
  public void replayOnDevice() {
    if (deviceGraph == null) {
      deviceGraph = captureStep(false);
    }
    cx.launch(deviceGraph);
    CudaContext.sync(cx.main());
  }

  /** A RESIDENT step's device side as a graph; {@code io}: with the query and output copies. */
  private CudaContext.CudaGraph captureStep(boolean io) {
    if (mode != Mode.RESIDENT) {
      throw new IllegalStateException("only a RESIDENT step is one graph; this engine is " + mode);
    }
    Profile p = profile;
    profile = null; // no timing events inside the graph
    try {
      return cx.capture(() -> enqueueDevice(4L * t.items * g * d, io));
    } finally {
      profile = p;
    }
  }

  /** Host time of the last {@link #step}'s enqueueing (launch calls, host-side lookups). */
  public long lastEnqueueNanos() {
    return enqueueNanos;
  }

  /**
   * Starts timing every stage of each following step with CUDA events (off the graph path);
   * {@link #stageMicros()} gives the averages. In RESIDENT mode the step's device work is held at a
   * gate (a stream wait on pinned memory) until all of it is enqueued, so the stages run back to
   * back as in a graph and their times exclude the host's launch gaps.
   */
  public void profile() {
    if (profile == null) {
      profile = new Profile();
    }
  }

  /** Average GPU microseconds per profiled step, by stage: see {@link #STAGES}. */
  public double[] stageMicros() {
    return profile == null ? new double[STAGES.size()] : profile.averages();
  }

  /** The stages {@link #stageMicros()} reports, in its order. */
  public static final List<String> STAGES = List.of("query+logits", "scores", "select",
      "gather", "attend", "merge", "estimate(aux)", "total");

  /** Enqueues one step; the output lands in pinned staging once the main stream is done. */
  void enqueueStep(float[] q) {
    checkQueries(q);
    cx.makeCurrent();
    completeFills();
    MemorySegment.copy(q, 0, stageQ.segment(), ValueLayout.JAVA_FLOAT, 0, q.length);
    enqueueDevice(4L * q.length, true);
  }

  private void mark(int i, jcuda.driver.CUstream s) {
    if (profile != null) {
      CudaContext.record(profile.events[i], s);
    }
  }

  /** The device side of a step; {@code io}: with the query upload and the output download. */
  private void enqueueDevice(long qBytes, boolean io) {
    mark(0, cx.main());
    if (io) {
      Cuda.check(JCudaDriver.cuMemcpyHtoDAsync(dQ.ptr(), stageQ.hostPtr(0), qBytes, cx.main()),
          "cuMemcpyHtoDAsync(queries)");
    }
    cx.launch(KernelNames.centroidLogits(t.kvType, g), tiles, t.items, 128, cx.main(),
        centroids.ptr(), dCentBase.ptr(), dClusters.ptr(), dQ.ptr(), d, g, scale, cStride, tiles,
        dLogits.ptr(), dTileM.ptr(), dTileS.ptr());
    mark(1, cx.main());
    cx.launch(KernelNames.CLUSTER_SCORES, tiles, t.items, 128, cx.main(), dLogits.ptr(), dTileM.ptr(),
        dTileS.ptr(), dClusters.ptr(), g, cStride, tiles, dScores.ptr());
    mark(2, cx.main());
    cx.launch(KernelNames.SELECT_TOP, t.items, 1, 1024, cx.main(), dScores.ptr(), dClusters.ptr(),
        dRetrieve.ptr(), dEstimate.ptr(), cStride, dClusterSize.ptr(), dCentBase.ptr(),
        dSteadyLen.ptr(), sel.rStride(), sel.eStride(), dRetIds.ptr(), dRetDst.ptr(), dEstIds.ptr(),
        dExecLen.ptr());
    mark(3, cx.main());
    CudaContext.record(evSelect, cx.main());
    CudaContext.waitFor(cx.aux(), evSelect);
    mark(4, cx.aux());
    if (estSplits > 0) {
      cx.launch(KernelNames.estimatePartial(g), estSplits, t.items, 128, cx.aux(), dLogits.ptr(),
          cStride, dEstIds.ptr(), dEstimate.ptr(), sel.eStride(), valueSums.ptr(),
          dClusterSize.ptr(), dCentBase.ptr(), d, g, est.rowsPerSplit(), parts, split.splits(),
          partM.ptr(), partL.ptr(), partO.ptr());
    }
    mark(5, cx.aux());
    CudaContext.record(evEst, cx.aux());
    StepStats stats;
    if (mode == Mode.RESIDENT) {
      cx.launch(KernelNames.GATHER_INDEX, sel.rStride(), t.items, 128, cx.main(), dClusterRow.ptr(),
          dClusterSize.ptr(), dCentBase.ptr(), dRetrieve.ptr(), dRetIds.ptr(), dRetDst.ptr(),
          sel.rStride(), dExecBase.ptr(), dRowIdx.ptr());
      stats = new StepStats(0, 0, 0, 0);
    } else {
      steadyTasks.launch(cx, steadyK.ptr(), steadyK.ptr(), steadyK.ptr(), steadyV.ptr(),
          steadyV.ptr(), steadyV.ptr(), execK.ptr(), execV.ptr(), rowBytes);
      // the CPU needs the selection to look clusters up: the one host round trip of a step
      long n = 4L * sel.retIds().length;
      Cuda.check(JCudaDriver.cuMemcpyDtoHAsync(stageSel.hostPtr(0), dRetIds.ptr(), n, cx.main()),
          "cuMemcpyDtoHAsync(retrieved ids)");
      Cuda.check(JCudaDriver.cuMemcpyDtoHAsync(stageSel.hostPtr(n), dRetDst.ptr(), n, cx.main()),
          "cuMemcpyDtoHAsync(retrieved rows)");
      CudaContext.sync(cx.main());
      MemorySegment.copy(stageSel.segment(), ValueLayout.JAVA_INT, 0, sel.retIds(), 0,
          sel.retIds().length);
      MemorySegment.copy(stageSel.segment(), ValueLayout.JAVA_INT, n, sel.retDst(), 0,
          sel.retDst().length);
      assembler.assemble(t, sel, cache, false, plan);
      if (source != null) {
        // the misses from the host tier, staged at their execution-buffer rows
        assembler.stageMisses(t, source, missStageK.segment(), missStageV.segment(), rowBytes);
      }
      stepTasks.stage(plan, cx.main());
      stepTasks.launch(cx, steadyK.ptr(), cacheK == null ? steadyK.ptr() : cacheK.ptr(),
          source != null ? missStageK.devicePtr() : hostK.devicePtr(), steadyV.ptr(),
          cacheV == null ? steadyV.ptr() : cacheV.ptr(),
          source != null ? missStageV.devicePtr() : hostV.devicePtr(), execK.ptr(), execV.ptr(),
          rowBytes);
      stats = new StepStats(assembler.hitCount(), assembler.missCount(),
          2 * plan.rowsFrom(GatherPlan.CLUSTERS) * rowBytes, 0);
    }
    CudaContext.record(evGather, cx.main());
    mark(6, cx.main());
    if (mode == Mode.RESIDENT) {
      cx.launch(attendKernel(), split.splits(), t.items, KernelNames.ATTEND_THREADS, cx.main(),
          clusterK.ptr(), clusterV.ptr(), steadyK.ptr(), steadyV.ptr(), dRowIdx.ptr(),
          dExecBase.ptr(), dExecLen.ptr(), dQ.ptr(), d, g, scale, split.rowsPerSplit(), parts, 0,
          partM.ptr(), partL.ptr(), partO.ptr());
    } else {
      // the steady-pool and index arguments are unused without indices
      cx.launch(attendKernel(), split.splits(), t.items, KernelNames.ATTEND_THREADS, cx.main(),
          execK.ptr(), execV.ptr(), execK.ptr(), execV.ptr(), KernelNames.NO_INDEX, dExecBase.ptr(),
          dExecLen.ptr(), dQ.ptr(), d, g, scale, split.rowsPerSplit(), parts, 0, partM.ptr(),
          partL.ptr(), partO.ptr());
    }
    mark(7, cx.main());
    CudaContext.waitFor(cx.main(), evEst);
    cx.launch(KernelNames.MERGE_PARTIALS, t.items, g, KernelNames.MERGE_THREADS, cx.main(),
        partM.ptr(), partL.ptr(), partO.ptr(), parts, g, d, dOut.ptr());
    mark(8, cx.main());
    if (io) {
      Cuda.check(JCudaDriver.cuMemcpyDtoHAsync(stageOut.hostPtr(0), dOut.ptr(), qBytes,
          cx.main()), "cuMemcpyDtoHAsync(output)");
    }
    if (updater != null) {
      // while the GPU attends: hand the accesses to the LRU thread, start earlier decisions' fills
      assembler.submitTo(updater);
      stats = new StepStats(stats.hits(), stats.misses(), stats.missBytes(), issueFills());
    }
    last = stats;
  }

  /** Waits for the cache updater and the fills it decided (benchmarks and tests). */
  public void settleCache() {
    if (updater == null) {
      return;
    }
    cx.makeCurrent();
    updater.awaitIdle();
    CudaContext.sync(cx.main());
    for (int round = 0; round < 3; round++) {
      completeFills();
      if (inFlight != null) {
        CudaContext.sync(cx.copy());
        completeFills();
      }
      CudaContext.record(evGather, cx.main());
      issueFills();
    }
    CudaContext.sync(cx.copy());
    completeFills();
  }

  private void completeFills() {
    if (inFlight != null && CudaContext.done(evFill)) {
      for (Admission a : inFlight) {
        cache.complete(a);
      }
      inFlight = null;
    }
  }

  /** Starts copying decided admissions into their blocks; returns the PCIe bytes it moves. */
  private long issueFills() {
    waiting.addAll(updater.drainAdmissions());
    if (waiting.isEmpty() || inFlight != null) {
      return 0; // one fill in flight at a time: its staging and event are reused
    }
    List<Admission> batch = new ArrayList<>();
    int blocks = 0;
    while (!waiting.isEmpty() && blocks + waiting.getFirst().blocks().length <= cache.blocks()) {
      Admission a = waiting.removeFirst();
      blocks += a.blocks().length;
      batch.add(a);
    }
    if (source != null) {
      // the fills read the pool's rows: copy each admitted cluster there from the host tier first
      for (Admission a : batch) {
        int item = itemOf(a.cluster());
        long at = t.clusterRow[a.cluster()] * rowBytes;
        source.read(item, a.cluster() - (int) t.centBase[item], a.tokens(), hostK.segment(), at,
            hostV.segment(), at);
      }
    }
    ExecutionAssembler.fillPlan(t, batch, cache.blockTokens(), fillPlan);
    // after this step's gather: a block being refilled may have been read by it
    CudaContext.waitFor(cx.copy(), evGather);
    fillTasks.stage(fillPlan, cx.copy());
    fillTasks.launchOn(cx, cx.copy(), steadyK.ptr(), steadyK.ptr(), hostK.devicePtr(), steadyV.ptr(),
        steadyV.ptr(), hostV.devicePtr(), cacheK.ptr(), cacheV.ptr(), rowBytes);
    CudaContext.record(evFill, cx.copy());
    inFlight = batch;
    return 2 * fillPlan.rowsFrom(GatherPlan.CLUSTERS) * rowBytes;
  }

  private int itemOf(int cluster) {
    int i = 0;
    while (i + 1 < t.items && t.centBase[i + 1] <= cluster) {
      i++;
    }
    return i;
  }

  private DeviceBuffer dev(long bytes) {
    DeviceBuffer b = new DeviceBuffer(bytes);
    owned.add(b);
    return b;
  }

  private PinnedBuffer pinned(long bytes) {
    PinnedBuffer b = new PinnedBuffer(bytes);
    owned.add(b);
    return b;
  }

  private DeviceBuffer upload(long[] a) {
    DeviceBuffer b = dev(8L * Math.max(1, a.length));
    if (a.length > 0) {
      b.upload(a);
    }
    return b;
  }

  private DeviceBuffer upload(int[] a) {
    DeviceBuffer b = dev(4L * Math.max(1, a.length));
    if (a.length > 0) {
      b.upload(a);
    }
    return b;
  }

  /** The argument columns of gather_tasks, on the device, with pinned staging for async upload. */
  private final class Tasks {
    final int capacity;
    final DeviceBuffer src;
    final DeviceBuffer srcRow;
    final DeviceBuffer dstRow;
    final DeviceBuffer rows;
    final PinnedBuffer stage;
    int count;

    Tasks(int capacity) {
      this.capacity = capacity;
      int c = Math.max(1, capacity);
      src = dev(4L * c);
      srcRow = dev(8L * c);
      dstRow = dev(8L * c);
      rows = dev(4L * c);
      stage = pinned(24L * c);
    }

    void uploadSync(GatherPlan p) {
      stage(p, cx.main());
      CudaContext.sync(cx.main());
    }

    /** Writes the plan into pinned staging and enqueues its upload on {@code stream}. */
    void stage(GatherPlan p, jcuda.driver.CUstream stream) {
      count = p.size();
      if (count > capacity) {
        throw new IllegalStateException(count + " gather tasks exceed the capacity " + capacity
            + " computed from the layout: the layout and the plan disagree");
      }
      MemorySegment s = stage.segment();
      long c = Math.max(1, capacity);
      p.writeColumns(s, 0, 4 * c, 12 * c, 20 * c); // four bulk copies, not four writes per task
      if (count == 0) {
        return;
      }
      copy(src.ptr(), 0, 4L * count, stream);
      copy(srcRow.ptr(), 4 * c, 8L * count, stream);
      copy(dstRow.ptr(), 12 * c, 8L * count, stream);
      copy(rows.ptr(), 20 * c, 4L * count, stream);
    }

    private void copy(CUdeviceptr to, long from, long n, jcuda.driver.CUstream stream) {
      Cuda.check(JCudaDriver.cuMemcpyHtoDAsync(to, stage.hostPtr(from), n, stream),
          "cuMemcpyHtoDAsync(gather tasks)");
    }

    void launch(CudaContext c, CUdeviceptr k0, CUdeviceptr k1, CUdeviceptr k2, CUdeviceptr v0,
        CUdeviceptr v1, CUdeviceptr v2, CUdeviceptr dk, CUdeviceptr dv, long rb) {
      launchOn(c, c.main(), k0, k1, k2, v0, v1, v2, dk, dv, rb);
    }

    void launchOn(CudaContext c, jcuda.driver.CUstream stream, CUdeviceptr k0, CUdeviceptr k1,
        CUdeviceptr k2, CUdeviceptr v0, CUdeviceptr v1, CUdeviceptr v2, CUdeviceptr dk,
        CUdeviceptr dv, long rb) {
      c.launch(KernelNames.GATHER_TASKS, count, 1, 128, stream, src.ptr(), srcRow.ptr(),
          dstRow.ptr(), rows.ptr(), k0, v0, k1, v1, k2, v2, dk, dv, rb);
    }
  }

  /** CUDA events around the stages of a step, and their running sums. */
  private final class Profile {
    final CUevent[] events = new CUevent[9];
    final double[] sums = new double[STAGES.size()];
    PinnedBuffer gate;
    int gateValue;
    int steps;

    Profile() {
      // no gate in the offload modes: their steps wait for the selection midway
      gate = mode == Mode.RESIDENT ? pinned(16) : null;
      for (int i = 0; i < events.length; i++) {
        events[i] = cx.newEvent(true);
        owned.add(new EventHandle(events[i]));
      }
    }

    /** Makes the main stream wait for the gate's next value; false (and no gate) if unsupported. */
    boolean closeGate() {
      int rc = JCudaDriver.cuStreamWaitValue32(cx.main(), gate.devicePtr(), gateValue + 1,
          jcuda.driver.CUstreamWaitValue_flags.CU_STREAM_WAIT_VALUE_GEQ);
      if (rc != jcuda.driver.CUresult.CUDA_SUCCESS) {
        System.err.println("stage profile without a gate (host launch gaps included): "
            + "cuStreamWaitValue32 returned " + jcuda.driver.CUresult.stringFor(rc));
        gate = null;
        return false;
      }
      gateValue++;
      return true;
    }

    void collect() {
      float[] ms = {
        CudaContext.elapsedMs(events[0], events[1]), CudaContext.elapsedMs(events[1], events[2]),
        CudaContext.elapsedMs(events[2], events[3]), CudaContext.elapsedMs(events[3], events[6]),
        CudaContext.elapsedMs(events[6], events[7]), CudaContext.elapsedMs(events[7], events[8]),
        CudaContext.elapsedMs(events[4], events[5]), CudaContext.elapsedMs(events[0], events[8])};
      for (int i = 0; i < ms.length; i++) {
        sums[i] += 1000.0 * ms[i];
      }
      steps++;
    }

    double[] averages() {
      double[] a = sums.clone();
      for (int i = 0; i < a.length; i++) {
        a[i] /= Math.max(1, steps);
      }
      return a;
    }
  }

  private record EventHandle(CUevent event) implements AutoCloseable {
    @Override
    public void close() {
      CudaContext.destroy(event);
    }
  }

  @Override
  public void close() {
    cx.makeCurrent();
    cx.synchronize();
    for (CudaContext.CudaGraph gr : new CudaContext.CudaGraph[] {graph, deviceGraph}) {
      if (gr != null) {
        gr.close();
      }
    }
    graph = null;
    deviceGraph = null;
    for (CUevent e : new CUevent[] {evSelect, evEst, evGather, evFill}) {
      CudaContext.destroy(e);
    }
    for (int i = owned.size() - 1; i >= 0; i--) {
      try {
        owned.get(i).close();
      } catch (Exception e) {
        throw new IllegalStateException("cannot free GPU engine resources: " + e.getMessage(), e);
      }
    }
  }
}
