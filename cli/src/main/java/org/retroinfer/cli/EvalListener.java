package org.retroinfer.cli;

import java.io.PrintWriter;
import java.util.List;
import org.retroinfer.model.eval.MethodOutcome;
import org.retroinfer.model.eval.NeedleEvaluation;
import org.retroinfer.app.cli.Progress;

/**
 * The progress of an evaluation, one unit per prefilled token (a 16K prompt weighs eight times a
 * 2K one), and a line per finished prompt: prefill time, each method's answers and speed.
 */
final class EvalListener implements NeedleEvaluation.Listener {
  private final PrintWriter err;
  private final Progress progress;
  private double prefill;
  private int done;
  private int total;
  private long finished;

  EvalListener(PrintWriter err, Progress progress) {
    this.err = err;
    this.progress = progress;
  }

  @Override
  public void prefillProgress(int tokensDone, int tokensTotal) {
    progress.stepTo(finished + tokensDone);
  }

  @Override
  public void prefillDone(int context, int done, int total, double seconds) {
    this.prefill = seconds;
    this.done = done;
    this.total = total;
  }

  @Override
  public void trialDone(int context, double depth, int trial, List<MethodOutcome> outcomes) {
    finished += context;
    progress.stepTo(finished);
    StringBuilder sb = new StringBuilder(String.format("[%d/%d] %,d tokens, %strial %d: prefill"
        + " %.1f s |", done, total, context,
        Double.isNaN(depth) ? "" : String.format("depth %.0f%%, ", depth * 100), trial + 1,
        prefill));
    for (MethodOutcome o : outcomes) {
      sb.append(String.format(" %s %s %s %.1f tok/s |", o.method(), o.answer(),
          o.correct() ? "ok" : o.recalls().size() == 1 ? "MISS"
              : "MISS " + (o.recalls().size() - o.recalled()) + "/" + o.recalls().size(),
          o.decodeSteps() / (o.decodeNanos() / 1e9)));
    }
    progress.println(err, sb.toString());
  }
}
