package org.retroinfer.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.retroinfer.wave.WaveConfig;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/**
 * One layer of decode attention, Llama-3-8B shape (32 query heads, 8 KV heads, head dim 128),
 * bfloat16 K/V: full attention, wave attention and Quest at wave's exactly-read budget, and the
 * streaming read of full attention's K/V bytes (the bandwidth yardstick).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class DecodeAttentionBenchmark {

  @Param({"16384", "32768", "131072"})
  public int context;

  @Param({"full", "wave", "quest", "stream"})
  public String method;

  private LayerFixture fixture;
  private ContextCache cache;
  private java.util.List<java.lang.foreign.MemorySegment> kvBytes;
  private float[][] queries;
  private float[] out;
  private int next;

  @Setup(Level.Trial)
  public void setUp() {
    fixture = new LayerFixture(LayerFixture.LLAMA3_8B_LAYER, context, 42);
    WaveConfig config = WaveConfig.builder().kvType(KvDType.BFLOAT16).build();
    cache = fixture.load(method.equals("stream") ? "full" : method, config);
    kvBytes = method.equals("stream") ? LayerFixture.kvMemory(cache) : null;
    queries = new float[16][];
    for (int i = 0; i < queries.length; i++) {
      queries[i] = fixture.query();
    }
    out = new float[LayerFixture.LLAMA3_8B_LAYER.queryWidth()];
  }

  @Benchmark
  public Object attend() {
    if (kvBytes != null) {
      return StreamingRead.readAll(kvBytes);
    }
    cache.attend(0, queries[next++ & 15], out);
    return out;
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    fixture.close();
  }
}
