package org.retroinfer.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.apache.lucene.index.CorruptIndexException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.retroinfer.wave.attention.ContextCache;
import org.retroinfer.wave.kv.KvDType;

/** A context packed into one byte string: unpacked, it loads and attends bit for bit; damage is caught. */
class ContextPackTest {
  @TempDir Path dir;

  @Test
  void aPackedContextLoadsBitForBitAndDescribesItself() throws Exception {
    long seed = Synthetic.seed();
    SplittableRandom r = new SplittableRandom(seed);
    int n = 150 + r.nextInt(200);
    int[] tokens = Synthetic.tokens(r, n);
    float[][][] kv = Synthetic.kv(r, n);
    ModelFingerprint model = Synthetic.fingerprint(r);
    float[] q = Synthetic.queries(r);
    float[] expected = new float[Synthetic.SHAPE.queryWidth()];
    String id;
    Path source = dir.resolve("source");
    try (ContextStore store = ContextStore.open(source, Synthetic.CHUNK);
        ContextCache c = Synthetic.cache(kv, n)) {
      id = store.scope(model, "acme", KvDType.BFLOAT16).put("doc", "prompt", tokens, c, null, null)
          .id();
      c.attend(1, q, expected);
    }
    byte[] pack = ContextPack.pack(source);
    ContextPack.Description d = ContextPack.describe(pack);
    assertEquals(id, d.info().id());
    assertEquals(n, d.info().tokens());
    assertEquals(ContextStore.tenantHash("acme"), d.info().tenant());
    assertEquals(n / Synthetic.CHUNK, d.prefixKeys().size(), "one prefix key per whole chunk");
    assertArrayEquals(tokens, d.tokenIds());
    assertEquals(null, d.logits());
    String[] chain = new PrefixHasher(model, "acme", KvDType.BFLOAT16, Synthetic.CHUNK)
        .chain(tokens);
    for (int i = 0; i < chain.length; i++) {
      assertEquals(chain[i], d.prefixKeys().get(i).hash());
      assertEquals((i + 1) * Synthetic.CHUNK, d.prefixKeys().get(i).tokens());
    }
    assertEquals(Synthetic.SHAPE.layers() * Synthetic.SHAPE.kvHeads(), d.fields().size());
    for (ContextPack.FieldStats f : d.fields()) {
      assertEquals(n, f.vectors(), f.field());
      assertTrue(f.clusters() > 1 && f.minClusterSize() >= 1, f.field());
    }

    Path host = dir.resolve("host");
    ContextPack.unpack(pack, host);
    try (ContextStore store = ContextStore.openReadOnly(host);
        ReusedContext reused = store.scope(model, "acme", KvDType.BFLOAT16)
            .load(id, tokens, n, false)) {
      float[] out = new float[expected.length];
      reused.cache().attend(1, q, out);
      assertArrayEquals(expected, out, "seed " + seed);
    }

    // built back from its parts (record, keys, the loaded K/V) in the assigned layout, as a server
    // that keeps the K/V as vector fields serves it: the same context, clusters and attention
    Path unpacked = dir.resolve("unpacked");
    ContextPack.unpack(pack, unpacked);
    byte[] built;
    try (var fs = org.apache.lucene.store.FSDirectory.open(unpacked.resolve("index"));
        var reader = org.apache.lucene.index.DirectoryReader.open(fs);
        var loaded = org.retroinfer.lucene.ContextReader.load(reader, id)) {
      built = ContextPack.build(d.info(), d.chunkTokens(), d.prefixKeys(), tokens, null, loaded);
    }
    ContextPack.Description b = ContextPack.describe(built);
    assertEquals(d.info(), b.info());
    assertEquals(d.chunkTokens(), b.chunkTokens());
    assertEquals(d.prefixKeys(), b.prefixKeys());
    for (int i = 0; i < d.fields().size(); i++) {
      ContextPack.FieldStats x = d.fields().get(i);
      ContextPack.FieldStats y = b.fields().get(i);
      assertEquals(x.field(), y.field());
      assertEquals(x.vectors(), y.vectors());
      assertEquals(x.dim(), y.dim());
      assertEquals(x.waveSegments(), y.waveSegments());
      assertEquals(x.clusters(), y.clusters(), x.field());
      assertEquals(x.minClusterSize(), y.minClusterSize());
      assertEquals(x.maxClusterSize(), y.maxClusterSize());
    }
    Path rebuilt = dir.resolve("rebuilt");
    ContextPack.unpack(built, rebuilt);
    try (ContextStore store = ContextStore.openReadOnly(rebuilt)) {
      ContextStore.Scope scope = store.scope(model, "acme", KvDType.BFLOAT16);
      assertEquals(id, scope.find(tokens).orElseThrow().context().id());
      try (ReusedContext reused = scope.load(id, tokens, n, false)) {
        float[] out = new float[expected.length];
        reused.cache().attend(1, q, out);
        assertArrayEquals(expected, out, "seed " + seed);
      }
    }

    // damage anywhere is refused before anything is written
    assertThrows(CorruptIndexException.class,
        () -> ContextPack.describe(Arrays.copyOf(pack, pack.length - 1 - r.nextInt(1000))));
    byte[] flipped = pack.clone();
    flipped[8 + r.nextInt(pack.length - 16)] ^= (byte) (1 << r.nextInt(8));
    assertThrows(CorruptIndexException.class, () -> ContextPack.describe(flipped));
    assertThrows(CorruptIndexException.class,
        () -> ContextPack.unpack(flipped, dir.resolve("never")));
    assertThrows(CorruptIndexException.class, () -> ContextPack.describe(new byte[40]));
  }
}
