package org.retroinfer.app.cli;

import java.io.PrintWriter;
import org.retroinfer.app.Devices;
import picocli.CommandLine.Option;

/** {@code --device cpu|gpu|auto}, shared by the commands that run attention. */
public final class DeviceOption {
  @Option(names = "--device", paramLabel = "cpu|gpu|auto", defaultValue = "cpu",
      converter = DeviceOption.Parse.class,
      description = "Where attention runs: cpu (default), gpu (the CUDA backends for wave and full"
          + " attention: K/V in the GPU wave buffer; without a usable CUDA device one line says why"
          + " and the CPU runs), auto (the GPU when there is one).")
  public Devices.Device device;

  /** {@code cpu}, {@code gpu} or {@code auto}, in any case. */
  static final class Parse implements picocli.CommandLine.ITypeConverter<Devices.Device> {
    @Override
    public Devices.Device convert(String v) {
      try {
        return Devices.Device.valueOf(v.trim().toUpperCase(java.util.Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new picocli.CommandLine.TypeConversionException("expected cpu, gpu or auto, got '"
            + v + "'");
      }
    }
  }

  /** Applies the choice (see {@link Devices#apply}); true when attention runs on the GPU. */
  public boolean apply(PrintWriter err) {
    return Devices.apply(device, err);
  }
}
