package org.retroinfer.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.lucene.codecs.Codec;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.AttentionShape;
import org.retroinfer.wave.kv.KvDType;

/**
 * The codec and format are found through SPI, and an index written here reopens (and passes
 * CheckIndex) in a fresh JVM whose class path holds only this module's classes and its runtime
 * dependencies: no test code, nothing registered by hand.
 */
class NewJvmTest {
  @TempDir
  Path dir;

  @Test
  void spiFindsTheCodecAndTheFormat() {
    assertEquals(WaveCodec.class, Codec.forName(WaveCodec.NAME).getClass());
    assertEquals(WaveVectorsFormat.class, KnnVectorsFormat.forName(WaveVectorsFormat.NAME).getClass());
  }

  @Test
  void indexReopensInAFreshJvm() throws Exception {
    WaveConfig config = TestContexts.smallConfig(KvDType.BFLOAT16);
    TestContexts.Built built = TestContexts.build(new AttentionShape(2, 4, 2, 32), config, 700, 0, 9);
    try (Directory d = FSDirectory.open(dir); IndexWriter w = TestContexts.writer(d)) {
      new ContextWriter(w).write("fresh", built.tokens(), built.context());
      w.commit();
    } finally {
      built.context().close();
    }
    // Runtime class path: this module's and wave-core's main classes (a directory in a reactor
    // build, a jar otherwise), lucene-core and RoaringBitmap; no test code, no test-scope modules.
    String classes = "target" + File.separator + "classes";
    List<String> cp = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
        .filter(e -> (e.endsWith(classes) && (e.contains("lucene-codec") || e.contains("wave-core")))
            || (e.endsWith(".jar") && (e.contains("lucene-core") || e.contains("RoaringBitmap")
                || (e.contains("wave-core") && !e.contains("tests")))))
        .collect(Collectors.toList());
    assertEquals(4, cp.size(), "expected classes, lucene-core, RoaringBitmap, wave-core in " + cp);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = new ArrayList<>(List.of(java, "--add-modules=jdk.incubator.vector",
        "--enable-native-access=ALL-UNNAMED", "-cp", String.join(File.pathSeparator, cp),
        WaveIndexInspector.class.getName(), dir.toString(), "--check"));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "inspector did not finish");
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("(" + WaveCodec.NAME + ")"), out);
    assertTrue(out.contains("context 'fresh': 700 tokens, 2 layers x 2 KV heads x head dim 32"), out);
    assertTrue(out.contains("kv.k.1.1") && out.contains("values in kv.v.1.1"), out);
    assertTrue(out.contains("CheckIndex: clean"), out);
  }
}
