package org.retroinfer.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.concurrent.Callable;
import java.util.logging.LogManager;
import org.retroinfer.model.safetensors.CheckpointException;
import org.retroinfer.store.StoreDamagedException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code retroinfer} command. Each subcommand is one class; a new one is added to the
 * {@code subcommands} list below.
 *
 * <p>Exit codes: 0 done; 1 an error the message explains (a missing or corrupt model, an unreadable
 * file), printed as one line {@code retroinfer: <what was wrong and what to do>} (set
 * {@code RETROINFER_DEBUG=1} for the stack trace; an unexpected error says it is a bug); 2 invalid
 * or missing arguments, found before anything is loaded, with a pointer to the command's
 * {@code --help}; 3 (demo only) a method answered wrong; {@value #EXIT_DAMAGED} the context store
 * is damaged ({@link StoreDamagedException}), also one line.
 */
@Command(
    name = "retroinfer",
    mixinStandardHelpOptions = true,
    versionProvider = RetroInfer.Version.class,
    description = {
        "RetroInfer for the JVM: the KV cache of long-context LLM inference as a vector store.",
        "Start with: retroinfer demo"},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
        "0:done",
        "1:an error the message explains (e.g. a missing model or file)",
        "2:invalid or missing arguments (nothing was loaded)",
        "3:demo: full or wave attention answered wrong",
        "4:the context store is damaged (store, inspect, explain)"},
    subcommands = {
        DemoCommand.class,
        GenerateCommand.class,
        EvalCommand.class,
        BenchCommand.class,
        org.retroinfer.app.cli.StoreCommand.class,
        org.retroinfer.app.cli.InspectCommand.class,
        org.retroinfer.app.cli.ExplainCommand.class,
        org.retroinfer.serve.ServeCommand.class,
        CommandLine.HelpCommand.class})
public final class RetroInfer implements Callable<Integer> {
  /** Exit code of invalid or missing arguments (picocli's usage code). */
  public static final int USAGE = CommandLine.ExitCode.USAGE;

  @Spec CommandSpec spec;

  /** Without a command: the usage, on standard error, and a usage error (like git). */
  @Override
  public Integer call() {
    return usage(spec);
  }

  /** Prints a command's usage on standard error and returns {@link #USAGE}: for commands called without a subcommand. */
  static int usage(CommandSpec spec) {
    spec.commandLine().usage(spec.commandLine().getErr());
    spec.commandLine().getErr().flush();
    return USAGE;
  }

  /** Exit code when the context store is damaged ({@link StoreDamagedException}). */
  public static final int EXIT_DAMAGED = 4;

  /** The command line with this project's error handling. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new RetroInfer());
    cl.setCaseInsensitiveEnumValuesAllowed(true); // --kv-type bfloat16
    cl.setParameterExceptionHandler((e, args) -> {
      CommandLine cmd = e.getCommandLine();
      cmd.getErr().println("retroinfer: " + e.getMessage());
      cmd.getErr().println("(see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
      cmd.getErr().flush();
      return USAGE;
    });
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      Throwable cause = e instanceof UncheckedIOException u ? u.getCause() : e;
      if (System.getenv("RETROINFER_DEBUG") != null) {
        cause.printStackTrace(cmd.getErr());
      }
      cmd.getErr().println("retroinfer: " + message(cause));
      cmd.getErr().flush();
      return cause instanceof StoreDamagedException ? EXIT_DAMAGED : 1;
    });
    return cl;
  }

  /** The one line that tells the user what went wrong. */
  static String message(Throwable cause) {
    String m = cause.getMessage();
    if (cause instanceof StoreDamagedException) {
      return m;
    }
    if (cause instanceof AccessDeniedException a) {
      return "permission denied: " + a.getFile() + "; make it accessible to this user or choose"
          + " another path";
    }
    if (cause instanceof NoSuchFileException n) {
      return "no such file: " + n.getFile();
    }
    if (cause instanceof NotDirectoryException n) {
      return n.getFile() + " is not a directory";
    }
    if (cause instanceof FileAlreadyExistsException f) {
      return f.getFile() + " is in the way: a file exists where a directory or a new file is needed";
    }
    boolean userError = cause instanceof IllegalArgumentException
        || cause instanceof IllegalStateException || cause instanceof IOException
        || cause instanceof CheckpointException;
    if (userError && m != null && !m.isBlank()) {
      return m;
    }
    return "unexpected error" + (m == null || m.isBlank() ? "" : ": " + m) + " ("
        + cause.getClass().getSimpleName() + "); this is a bug: rerun with RETROINFER_DEBUG=1 for"
        + " the stack trace and report it";
  }

  public static void main(String[] args) {
    // The store commands load Chronicle Map, which would otherwise send usage analytics at start-up;
    // the flag must be set before its first class loads (the launcher passes it too).
    System.setProperty("chronicle.analytics.disable", "true");
    configureLogging();
    System.exit(commandLine().execute(args));
  }

  /**
   * Libraries log through java.util.logging (Lucene, the JDK) or SLF4J bound to it (Chronicle):
   * this process shows their warnings and errors only, one line each (logging.properties), unless
   * the user configured logging with {@code -Djava.util.logging.config.file} or {@code .class}.
   */
  static void configureLogging() {
    if (System.getProperty("java.util.logging.config.file") != null
        || System.getProperty("java.util.logging.config.class") != null) {
      return;
    }
    try (InputStream in = RetroInfer.class.getResourceAsStream("logging.properties")) {
      if (in != null) {
        LogManager.getLogManager().readConfiguration(in);
      }
    } catch (IOException e) {
      // the JDK's default configuration stays: INFO lines, but nothing lost
    }
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
