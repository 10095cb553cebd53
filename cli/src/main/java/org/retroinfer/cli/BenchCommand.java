package org.retroinfer.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** Speed measurements; one subcommand per benchmark. */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Speed measurements of the model with each attention method.",
    subcommands = {DecodeBenchCommand.class})
public final class BenchCommand implements Runnable {
  @Spec CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
