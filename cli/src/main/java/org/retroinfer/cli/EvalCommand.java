package org.retroinfer.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** Evaluations of attention methods on the model; one subcommand per evaluation. */
@Command(name = "eval", mixinStandardHelpOptions = true,
    description = "Evaluate attention methods on the model.",
    subcommands = {NiahCommand.class})
public final class EvalCommand implements Runnable {
  @Spec CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
