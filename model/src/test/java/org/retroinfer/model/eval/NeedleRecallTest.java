package org.retroinfer.model.eval;

import org.retroinfer.wave.attention.MethodSpec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.retroinfer.model.TestModel;
import org.retroinfer.wave.WaveConfig;

/**
 * Needle recall on the real model at a short context (3K tokens, where the wave index is built:
 * 188 clusters per head): wave attention answers like full attention, reads far fewer tokens
 * exactly, and its next-token predictions and bits per byte track full attention's.
 */
class NeedleRecallTest {

  @Test
  void waveRecallsLikeFullAttention() {
    NeedleEvaluation.Options options = new NeedleEvaluation.Options(List.of(3072),
        List.of(0.15, 0.5, 0.85), 1, List.of(MethodSpec.parse("full"), MethodSpec.parse("wave")),
        WaveConfig.defaults(), PythonCorpus.stdlib(), 128, new java.util.Random().nextLong());
    EvaluationReport report = new NeedleEvaluation(TestModel.get(), options).run(null);
    EvaluationReport.Row full = report.rows().get(0);
    EvaluationReport.Row wave = report.rows().get(1);
    assertEquals("full", full.method());
    assertEquals("wave", wave.method());
    assertEquals(3, full.correct(), () -> "full attention should recall every needle:\n"
        + report.toJson());
    for (EvaluationReport.Trial t : report.trials()) {
      assertEquals(t.outcomes().get(0).answer(), t.outcomes().get(1).answer(),
          () -> "wave answered differently from full attention at depth " + t.depth());
    }
    assertTrue(wave.agreement() >= 0.95, "top-1 agreement " + wave.agreement());
    assertTrue(Math.abs(wave.bitsPerByte() - full.bitsPerByte()) <= 0.02 * full.bitsPerByte(),
        "bits per byte " + wave.bitsPerByte() + " vs full " + full.bitsPerByte());
    assertTrue(wave.exactTokensPerHead() < 0.6 * full.exactTokensPerHead(),
        "wave read " + wave.exactTokensPerHead() + " tokens exactly per head, full "
            + full.exactTokensPerHead());
  }
}
