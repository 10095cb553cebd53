package org.retroinfer.gpu.cuda;

import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * Device 0's primary context with the kernels' module loaded (PTX through
 * {@code cuModuleLoadData}, which JIT-compiles it for the device), and three streams: {@link
 * #main()} for the decode step, {@link #aux()} for the estimation zone that overlaps it, and
 * {@link #copy()} for block-cache fills. Any thread may use the context after
 * {@link #makeCurrent()}.
 */
public final class CudaContext implements AutoCloseable {
  private final CUdevice device = new CUdevice();
  private final CUcontext context = new CUcontext();
  private final CUmodule module = new CUmodule();
  private final Map<String, CUfunction> functions = new HashMap<>();
  private final CUstream main = new CUstream();
  private final CUstream aux = new CUstream();
  private final CUstream copy = new CUstream();
  private final CudaAvailability info;
  private boolean closed;

  private CudaContext(CudaAvailability info) {
    this.info = info;
    Cuda.check(JCudaDriver.cuDeviceGet(device, 0), "cuDeviceGet(0)");
    Cuda.check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
    makeCurrent();
    Cuda.check(JCudaDriver.cuModuleLoadData(module, PtxResource.nulTerminated()),
        "cuModuleLoadData(" + PtxResource.NAME + ")");
    for (CUstream s : new CUstream[] {main, aux, copy}) {
      // blocking streams: ordered with the synchronous copies and memsets of the legacy stream
      // (uploads, poisoning), while still running concurrently with each other
      Cuda.check(JCudaDriver.cuStreamCreate(s, CUstream_flags.CU_STREAM_DEFAULT), "cuStreamCreate");
    }
  }

  /** Opens device 0, or throws with the reason the GPU cannot be used. */
  public static CudaContext open() {
    CudaAvailability a = CudaAvailability.get();
    if (!a.available()) {
      throw new IllegalStateException("no CUDA GPU: " + a.reason());
    }
    return new CudaContext(a);
  }

  public CudaAvailability info() {
    return info;
  }

  /** Binds this context to the calling thread (driver contexts are per thread). */
  public void makeCurrent() {
    Cuda.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  /** A kernel of the module by its (extern "C") name. */
  public synchronized CUfunction function(String name) {
    return functions.computeIfAbsent(name, n -> {
      CUfunction f = new CUfunction();
      Cuda.check(JCudaDriver.cuModuleGetFunction(f, module, n), "cuModuleGetFunction(" + n + ")");
      return f;
    });
  }

  public CUstream main() {
    return main;
  }

  public CUstream aux() {
    return aux;
  }

  public CUstream copy() {
    return copy;
  }

  /**
   * Launches kernel {@code name} on a {@code gx x gy} grid of {@code block}-thread blocks. Arguments
   * are device pointers, Integer, Long or Float, in the kernel's order.
   */
  public void launch(String name, int gx, int gy, int block, CUstream stream, Object... args) {
    if (gx <= 0 || gy <= 0) {
      return; // nothing to do (e.g. no tasks this step)
    }
    Pointer[] params = new Pointer[args.length];
    for (int i = 0; i < args.length; i++) {
      params[i] = switch (args[i]) {
        case CUdeviceptr p -> Pointer.to(p);
        case Integer v -> Pointer.to(new int[] {v});
        case Long v -> Pointer.to(new long[] {v});
        case Float v -> Pointer.to(new float[] {v});
        case null -> throw new IllegalArgumentException("kernel " + name + ": argument " + i + " is null");
        default -> throw new IllegalArgumentException("kernel " + name + ": argument " + i + " of type "
            + args[i].getClass().getSimpleName() + " is not a device pointer, Integer, Long or Float");
      };
    }
    Cuda.check(JCudaDriver.cuLaunchKernel(function(name), gx, gy, 1, block, 1, 1, 0, stream,
        Pointer.to(params), null), "cuLaunchKernel(" + name + ", grid " + gx + "x" + gy + ")");
  }

  /**
   * How many blocks of {@code blockSize} threads of kernel {@code name} the whole GPU holds at once
   * (the occupancy calculator's blocks per multiprocessor times the multiprocessors): split-K plans
   * aim at that, so that every block runs in the first and only wave.
   */
  public int residentBlocks(String name, int blockSize) {
    int[] perSm = new int[1];
    Cuda.check(JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(perSm, function(name),
        blockSize, 0), "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + name + ")");
    return Math.max(1, perSm[0]) * Math.max(1, info.multiprocessors());
  }

  /**
   * Records what {@code work} enqueues on {@link #main()} (and the streams it forks from it with
   * events, which must join back) as a CUDA graph, executes nothing, and returns the instantiated
   * graph: {@link #launch(CudaGraph)} then replays all of it with one call.
   */
  public CudaGraph capture(Runnable work) {
    makeCurrent();
    Cuda.check(JCudaDriver.cuStreamBeginCapture(main,
        CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    CUgraph graph = new CUgraph();
    try {
      work.run();
    } finally {
      // always end the capture, or the stream stays unusable
      Cuda.check(JCudaDriver.cuStreamEndCapture(main, graph), "cuStreamEndCapture");
    }
    CUgraphExec exec = new CUgraphExec();
    try {
      Cuda.check(JCudaDriver.cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
    } finally {
      Cuda.check(JCudaDriver.cuGraphDestroy(graph), "cuGraphDestroy");
    }
    return new CudaGraph(exec);
  }

  /** Replays a captured graph on {@link #main()}. */
  public void launch(CudaGraph g) {
    Cuda.check(JCudaDriver.cuGraphLaunch(g.exec(), main), "cuGraphLaunch");
  }

  /** An instantiated CUDA graph; close frees it. */
  public record CudaGraph(CUgraphExec exec) implements AutoCloseable {
    @Override
    public void close() {
      Cuda.check(JCudaDriver.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
    }
  }

  public CUevent newEvent(boolean timing) {
    CUevent e = new CUevent();
    Cuda.check(JCudaDriver.cuEventCreate(e, timing ? CUevent_flags.CU_EVENT_DEFAULT
        : CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    return e;
  }

  public static void record(CUevent e, CUstream s) {
    Cuda.check(JCudaDriver.cuEventRecord(e, s), "cuEventRecord");
  }

  public static void waitFor(CUstream s, CUevent e) {
    Cuda.check(JCudaDriver.cuStreamWaitEvent(s, e, 0), "cuStreamWaitEvent");
  }

  /** Whether the work before {@code e} has finished (never blocks). */
  public static boolean done(CUevent e) {
    int rc = JCudaDriver.cuEventQuery(e);
    if (rc == CUresult.CUDA_ERROR_NOT_READY) {
      return false;
    }
    Cuda.check(rc, "cuEventQuery");
    return true;
  }

  public static void destroy(CUevent e) {
    Cuda.check(JCudaDriver.cuEventDestroy(e), "cuEventDestroy");
  }

  public static void sync(CUstream s) {
    Cuda.check(JCudaDriver.cuStreamSynchronize(s), "cuStreamSynchronize");
  }

  /** Milliseconds between two recorded, completed events. */
  public static float elapsedMs(CUevent from, CUevent to) {
    float[] ms = new float[1];
    Cuda.check(JCudaDriver.cuEventSynchronize(to), "cuEventSynchronize");
    Cuda.check(JCudaDriver.cuEventElapsedTime(ms, from, to), "cuEventElapsedTime");
    return ms[0];
  }

  /** Waits for all work of the context. */
  public void synchronize() {
    Cuda.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      makeCurrent();
      for (CUstream s : new CUstream[] {main, aux, copy}) {
        Cuda.check(JCudaDriver.cuStreamDestroy(s), "cuStreamDestroy");
      }
      Cuda.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload");
      Cuda.check(JCudaDriver.cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease");
    }
  }
}
