package org.retroinfer.app;

import java.io.PrintWriter;
import org.retroinfer.gpu.GpuBackends;
import org.retroinfer.gpu.GpuWaveAttention;
import org.retroinfer.gpu.cuda.CudaAvailability;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionBackends;

/**
 * Where attention runs, as the {@code --device} option of the commands chooses: {@code cpu}
 * (wave-core's methods), {@code gpu} (the GPU backends of gpu-attention for "wave" and "full" when a
 * CUDA device can be used; without one, one line on standard error and the CPU), {@code auto} (the
 * GPU when there is one, else the CPU, said in one line too). Other methods (quest, streaming,
 * oracle) always run on the CPU.
 */
public final class Devices {
  /** The choices of {@code --device}. */
  public enum Device {
    CPU,
    GPU,
    AUTO
  }

  private Devices() {}

  /**
   * Places "wave" and "full" on the GPU when {@code device} asks for it and CUDA can be used, for
   * the rest of the process; returns whether it did. Says why not in one line on {@code err}.
   */
  public static boolean apply(Device device, PrintWriter err) {
    if (device == Device.CPU) {
      AttentionBackends.place(null);
      return false;
    }
    CudaAvailability a = CudaAvailability.get();
    if (!a.available()) {
      err.println("retroinfer: --device " + device.name().toLowerCase() + ": no usable CUDA"
          + " device (" + a.reason() + "); attention runs on the CPU");
      err.flush();
      AttentionBackends.place(null);
      return false;
    }
    AttentionBackends.place((name, config) -> switch (name) {
      case "wave", "full" -> GpuBackends.create(name + "-gpu", config);
      default -> null;
    });
    return true;
  }

  /** The GPU wave method, when {@link #apply} placed attention on the GPU; else null. */
  public static GpuWaveAttention gpuWave(WaveConfig config) {
    return AttentionBackends.create("wave", config) instanceof GpuWaveAttention g ? g : null;
  }
}
