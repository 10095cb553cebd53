package org.retroinfer.gpu;

import java.util.List;
import java.util.logging.Logger;
import org.retroinfer.gpu.cuda.CudaAvailability;
import org.retroinfer.gpu.cuda.CudaContext;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackend;
import org.retroinfer.wave.attention.AttentionBackends;

/**
 * Attention methods by name, GPU ones included: "wave-gpu" and "full-gpu" run on device 0 when a
 * CUDA GPU can be used, and otherwise fall back to wave-core's CPU backends ("wave", "full") with
 * one log line saying why. Every other name is wave-core's ({@link AttentionBackends#create}).
 */
public final class GpuBackends {
  private static final Logger LOG = Logger.getLogger(GpuBackends.class.getName());
  /** The GPU names accepted besides wave-core's. */
  public static final List<String> GPU_NAMES = List.of("wave-gpu", "full-gpu");
  private static volatile CudaContext shared;
  private static volatile boolean warned;

  private GpuBackends() {}

  public static AttentionBackend create(String name, WaveConfig config) {
    if (!GPU_NAMES.contains(name)) {
      return AttentionBackends.create(name, config);
    }
    String cpuName = name.substring(0, name.indexOf('-'));
    CudaAvailability a = CudaAvailability.get();
    if (!a.available()) {
      if (!warned) {
        warned = true;
        LOG.warning("attention '" + name + "' runs on the CPU ('" + cpuName + "'): " + a.reason());
      }
      return AttentionBackends.create(cpuName, config);
    }
    CudaContext cx = context();
    return name.equals("wave-gpu") ? new GpuWaveAttention(config, cx)
        : new GpuFullAttention(config.kvType(), cx);
  }

  /** The process-wide context of device 0 (opened on first use, closed at exit). */
  public static CudaContext context() {
    CudaContext c = shared;
    if (c == null) {
      synchronized (GpuBackends.class) {
        if (shared == null) {
          shared = CudaContext.open();
        }
        c = shared;
      }
    }
    c.makeCurrent();
    return c;
  }
}
