package org.retroinfer.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code retroinfer} command. Each subcommand is one class; a new one is added to the
 * {@code subcommands} list below.
 *
 * <p>Errors that a user can fix (a missing or corrupt model, a bad option value) are printed as one
 * line, {@code retroinfer: <what was wrong and what to do>}, with exit code 1; set
 * {@code RETROINFER_DEBUG=1} for the stack trace.
 */
@Command(
    name = "retroinfer",
    mixinStandardHelpOptions = true,
    versionProvider = RetroInfer.Version.class,
    description = {
        "RetroInfer for the JVM: the KV cache of long-context LLM inference as a vector store.",
        "Start with: retroinfer demo"},
    subcommands = {
        DemoCommand.class,
        GenerateCommand.class,
        EvalCommand.class,
        BenchCommand.class,
        org.retroinfer.store.cli.StoreCommand.class,
        org.retroinfer.store.cli.InspectCommand.class,
        org.retroinfer.store.cli.ExplainCommand.class,
        CommandLine.HelpCommand.class})
public final class RetroInfer implements Runnable {
  @Spec CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** The command line with this project's error handling. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new RetroInfer());
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      Throwable cause = e instanceof UncheckedIOException u ? u.getCause() : e;
      boolean userError = cause instanceof IllegalArgumentException
          || cause instanceof IllegalStateException || cause instanceof IOException
          || cause instanceof org.retroinfer.model.safetensors.CheckpointException;
      if (!userError || System.getenv("RETROINFER_DEBUG") != null) {
        cause.printStackTrace(cmd.getErr());
      }
      String what = cause instanceof java.nio.file.NoSuchFileException ? "no such file: " : "";
      cmd.getErr().println("retroinfer: " + what + cause.getMessage());
      cmd.getErr().flush();
      return 1;
    });
    return cl;
  }

  public static void main(String[] args) {
    // The store commands load Chronicle Map, which would otherwise send usage analytics at start-up;
    // the flag must be set before its first class loads (the launcher passes it too).
    System.setProperty("chronicle.analytics.disable", "true");
    System.exit(commandLine().execute(args));
  }

  /** The version from the jar manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = RetroInfer.class.getPackage().getImplementationVersion();
      return new String[] {"retroinfer " + (v == null ? "(development build)" : v),
          "Java " + Runtime.version() + ", " + System.getProperty("java.vm.name"),
          "Vector API lanes: " + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length()
              + " floats"};
    }
  }
}
