package org.retroinfer.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.retroinfer.wave.SyntheticKv;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.SegmentedKMeans;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * Index build: one segment of 8192 tokens of one KV head clustered with the defaults (512
 * clusters, 10 iterations), single-threaded. Tokens per second per KV head = 8192 / time.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class IndexBuildBenchmark {

  @Param({"64", "128"})
  public int headDim;

  private VectorStore keys;
  private VectorStore values;
  private WaveConfig config;

  @Setup
  public void setUp() {
    config = WaveConfig.defaults();
    int n = config.segmentTokens();
    SyntheticKv kv = new SyntheticKv(3, n, headDim, 4, 16);
    keys = VectorStore.allocate(headDim, KvDType.BFLOAT16, n);
    values = VectorStore.allocate(headDim, KvDType.BFLOAT16, n);
    keys.appendAll(kv.keys, 0, n);
    values.appendAll(kv.values, 0, n);
  }

  @Benchmark
  public ClusteredSegment clusterSegment() {
    int n = keys.size();
    return SegmentedKMeans.cluster(keys, values, 0, n, 0, config.clustersFor(n),
        config.kmeansIterations());
  }
}
