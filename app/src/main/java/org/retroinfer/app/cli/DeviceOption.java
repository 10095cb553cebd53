package org.retroinfer.app.cli;

import java.io.PrintWriter;
import org.retroinfer.app.Devices;
import picocli.CommandLine.Option;

/** {@code --device cpu|gpu|auto}, shared by the commands that run attention. */
public final class DeviceOption {
  @Option(names = "--device", paramLabel = "cpu|gpu|auto", defaultValue = "cpu",
      description = "Where attention runs: cpu (default), gpu (the CUDA backends for wave and full"
          + " attention: K/V in the GPU wave buffer; without a usable CUDA device one line says why"
          + " and the CPU runs), auto (the GPU when there is one).")
  public Devices.Device device;

  /** Applies the choice (see {@link Devices#apply}); true when attention runs on the GPU. */
  public boolean apply(PrintWriter err) {
    return Devices.apply(device, err);
  }
}
