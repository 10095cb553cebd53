package org.retroinfer.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** Evaluations of attention methods on the model; one subcommand per evaluation. */
@Command(name = "eval", mixinStandardHelpOptions = true,
    description = "Evaluate attention methods on the model.",
    subcommands = {NiahCommand.class, MultiKeyCommand.class})
public final class EvalCommand implements java.util.concurrent.Callable<Integer> {
  @Spec CommandSpec spec;

  /** Without a subcommand: the usage, on standard error, and a usage error. */
  @Override
  public Integer call() {
    return RetroInfer.usage(spec);
  }
}
