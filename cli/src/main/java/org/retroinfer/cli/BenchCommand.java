package org.retroinfer.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** Speed measurements; one subcommand per benchmark. */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Speed measurements of the model with each attention method.",
    subcommands = {DecodeBenchCommand.class})
public final class BenchCommand implements java.util.concurrent.Callable<Integer> {
  @Spec CommandSpec spec;

  /** Without a subcommand: the usage, on standard error, and a usage error. */
  @Override
  public Integer call() {
    return RetroInfer.usage(spec);
  }
}
