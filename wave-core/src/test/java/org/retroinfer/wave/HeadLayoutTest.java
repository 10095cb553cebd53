package org.retroinfer.wave;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.retroinfer.wave.attention.FullAttention;
import org.retroinfer.wave.attention.HeadCache;
import org.retroinfer.wave.index.ClusteredSegment;
import org.retroinfer.wave.index.WaveIndex;
import org.retroinfer.wave.kv.KvDType;
import org.retroinfer.wave.kv.VectorStore;

/**
 * {@link HeadLayout} on every path that used to be written by hand outside wave-core (reading rows by
 * position, slicing a prefix, composing documents, restoring from stored parts), each checked
 * against wave-core's own attention on a cache that never went through the layout, or against the
 * float64 reference over the same stored rows.
 */
class HeadLayoutTest {
  static final int D = 64;
  static final int G = 2;
  static final WaveConfig CONFIG = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16).build();
  /**
   * Every cluster retrieved: wave attention is then exact attention over every stored row, so any
   * row that a layout operation put at the wrong position, or lost, shows against the reference.
   */
  static final WaveConfig EXACT = WaveConfig.fixed().toBuilder().kvType(KvDType.BFLOAT16)
      .budget(WaveConfig.ZoneBudget.FIXED).retrievalFraction(1.0).retrievalMaxFraction(1.0)
      .estimationFraction(0.0).build();

  static WaveHeadCache cache(SyntheticKv kv, int from, int to, boolean endPrefill) {
    return cache(CONFIG, kv, from, to, endPrefill);
  }

  static WaveHeadCache cache(WaveConfig config, SyntheticKv kv, int from, int to,
      boolean endPrefill) {
    WaveHeadCache c = new WaveHeadCache(config, D, G);
    for (int p = from; p < to; p++) {
      c.append(kv.keys, p * D, kv.values, p * D);
    }
    if (endPrefill) {
      c.endPrefill();
    }
    return c;
  }

  /** The stored (rounded) rows of positions [0, n) as read through the layout. */
  static float[][] rows(HeadLayout layout) {
    int n = layout.size();
    float[] k = new float[n * D];
    float[] v = new float[n * D];
    layout.read(0, n, k, v, 0, D);
    return new float[][] {k, v};
  }

  @Test
  void readsEveryPositionAsItWasAppended() {
    SyntheticKv kv = new SyntheticKv(11, 12_000, D, 3, 16);
    try (WaveHeadCache c = cache(kv, 0, kv.n, true)) {
      HeadLayout layout = HeadLayout.of(c);
      assertTrue(layout.index().segmentCount() >= 1);
      assertEquals(kv.n, layout.size());
      assertEquals(layout.sinks() + layout.index().tokenCount(), layout.tailStart());
      float[][] rows = rows(layout);
      for (int i = 0; i < kv.n * D; i++) {
        assertEquals(KvDType.BFLOAT16.round(kv.keys[i]), rows[0][i], "key component " + i);
        assertEquals(KvDType.BFLOAT16.round(kv.values[i]), rows[1][i], "value component " + i);
      }
      // indexRow agrees with the index's own position of every row
      for (int r = 0; r < layout.index().tokenCount(); r += 37) {
        assertEquals(r, layout.indexRow(layout.index().position(r)));
      }
      assertThrows(IndexOutOfBoundsException.class, () -> layout.indexRow(0));
      assertThrows(IllegalArgumentException.class,
          () -> HeadLayout.of(new FullAttention(KvDType.BFLOAT16).newHead(D, G)));
    }
  }

  @Test
  void restoringFromStoredPartsAttendsBitForBitLikeTheOriginal() {
    SyntheticKv kv = new SyntheticKv(12, 21_000, D, 4, 16);
    try (WaveHeadCache original = cache(kv, 0, kv.n, true);
        HeadCache restored = restore(HeadLayout.of(original))) {
      assertTrue(original.index().segmentCount() >= 2, "several segments");
      for (int i = 0; i < 5; i++) {
        float[] q = kv.query(G);
        float[] a = new float[G * D];
        float[] b = new float[G * D];
        original.attend(q, 0, a, 0);
        restored.attend(q, 0, b, 0);
        assertArrayEquals(a, b, "query " + i);
      }
      // decoding on after the restore clusters the same new segment as the original does
      SyntheticKv more = new SyntheticKv(13, CONFIG.updateTokens() + 10, D, 1, 16);
      for (int p = 0; p < more.n; p++) {
        original.append(more.keys, p * D, more.values, p * D);
        restored.append(more.keys, p * D, more.values, p * D);
      }
      assertEquals(original.index().segmentCount(), HeadLayout.of(restored).index().segmentCount());
      float[] q = kv.query(G);
      float[] a = new float[G * D];
      float[] b = new float[G * D];
      original.attend(q, 0, a, 0);
      restored.attend(q, 0, b, 0);
      assertArrayEquals(a, b, "after a decode-time segment");
    }
  }

  @Test
  void restoringInPlaceReadsTheStoredBlocksWithoutCopyingThem() {
    SyntheticKv kv = new SyntheticKv(19, 21_000, D, 4, 16);
    List<VectorStore> blocks = new java.util.ArrayList<>();
    try (WaveHeadCache original = cache(kv, 0, kv.n, true)) {
      HeadLayout layout = HeadLayout.of(original);
      WaveIndex index = layout.index();
      HeadCache restored;
      try (HeadLayout.Restorer r = HeadLayout.restoring(CONFIG, G, D)) {
        r.keyCentre(layout.keyCentre());
        r.sinks(layout.sinkKeys(), layout.sinkValues(), 0, layout.sinks());
        for (int s = 0; s < index.segmentCount(); s++) {
          ClusteredSegment seg = index.segment(s);
          int row0 = index.clusterStart(index.segmentFirstCluster(s));
          // stand-ins for a mapped file's blocks: memory the cache does not own
          VectorStore k = VectorStore.allocate(D, layout.kvType(), seg.tokens());
          VectorStore v = VectorStore.allocate(D, layout.kvType(), seg.tokens());
          blocks.add(k);
          blocks.add(v);
          k.appendFrom(index.keys(), row0, row0 + seg.tokens());
          v.appendFrom(index.values(), row0, row0 + seg.tokens());
          r.segmentInPlace(seg, VectorStore.wrap(k.memory(), D, layout.kvType(), seg.tokens()),
              VectorStore.wrap(v.memory(), D, layout.kvType(), seg.tokens()));
        }
        r.tail(layout.tailKeys(), layout.tailValues(), 0, layout.tailKeys().size());
        restored = r.build(true);
      }
      try (restored) {
        HeadLayout in = HeadLayout.of(restored);
        assertTrue(in.index().keys().hasExternalRows());
        assertEquals(blocks.get(0).rows(0, 5).address(), in.index().keys().rows(0, 5).address(),
            "the first segment's keys are read where they are");
        // the layout's memory excludes the blocks it reads in place
        assertTrue(restored.memoryBytes() < original.memoryBytes() / 2,
            restored.memoryBytes() + " vs " + original.memoryBytes());
        float[][] a = rows(layout);
        float[][] b = rows(in);
        assertArrayEquals(a[0], b[0]);
        assertArrayEquals(a[1], b[1]);
        SyntheticKv more = new SyntheticKv(20, CONFIG.updateTokens() + 10, D, 1, 16);
        for (int round = 0; round < 2; round++) {
          for (int i = 0; i < 4; i++) {
            float[] q = kv.query(G);
            float[] x = new float[G * D];
            float[] y = new float[G * D];
            original.attend(q, 0, x, 0);
            restored.attend(q, 0, y, 0);
            assertArrayEquals(x, y, "round " + round + ", query " + i);
          }
          // a decode-time segment: appended after the blocks, in memory the index owns
          for (int p = 0; p < more.n; p++) {
            original.append(more.keys, p * D, more.values, p * D);
            restored.append(more.keys, p * D, more.values, p * D);
          }
        }
        assertEquals(original.index().segmentCount(), in.index().segmentCount());
      }
    } finally {
      blocks.forEach(VectorStore::close);
    }
  }

  /** What the codec does: sinks, each segment's clusters with its cluster-contiguous rows, tail. */
  static HeadCache restore(HeadLayout layout) {
    WaveIndex index = layout.index();
    try (HeadLayout.Restorer r = HeadLayout.restoring(layout.config(), layout.groupSize(),
        layout.dim())) {
      r.keyCentre(layout.keyCentre());
      r.sinks(layout.sinkKeys(), layout.sinkValues(), 0, layout.sinks());
      for (int s = 0; s < index.segmentCount(); s++) {
        ClusteredSegment seg = index.segment(s);
        int row0 = index.clusterStart(index.segmentFirstCluster(s));
        try (VectorStore k = VectorStore.allocate(D, layout.kvType(), seg.tokens());
            VectorStore v = VectorStore.allocate(D, layout.kvType(), seg.tokens())) {
          k.appendFrom(index.keys(), row0, row0 + seg.tokens());
          v.appendFrom(index.values(), row0, row0 + seg.tokens());
          r.segment(seg, k, v);
        }
      }
      r.tail(layout.tailKeys(), layout.tailValues(), 0, layout.tailKeys().size());
      return r.build(layout.prefillDone());
    }
  }

  @Test
  void restoringRefusesPartsThatDoNotFormACache() {
    SyntheticKv kv = new SyntheticKv(14, 20_000, D, 2, 16);
    try (WaveHeadCache original = cache(kv, 0, kv.n, true)) {
      HeadLayout layout = HeadLayout.of(original);
      try (HeadLayout.Restorer r = HeadLayout.restoring(CONFIG, G, D)) {
        // the sinks, then the second segment without the first one before it
        r.sinks(layout.sinkKeys(), layout.sinkValues(), 0, layout.sinks());
        WaveIndex index = layout.index();
        ClusteredSegment seg = index.segment(1);
        int row0 = index.clusterStart(index.segmentFirstCluster(1));
        try (VectorStore k = VectorStore.allocate(D, layout.kvType(), seg.tokens());
            VectorStore v = VectorStore.allocate(D, layout.kvType(), seg.tokens())) {
          k.appendFrom(index.keys(), row0, row0 + seg.tokens());
          v.appendFrom(index.values(), row0, row0 + seg.tokens());
          r.segment(seg, k, v);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> r.build(true));
        assertTrue(e.getMessage().contains("segment 0 starts at position "
            + index.segmentFirstPosition(1)), e.getMessage());
      }
    }
  }

  @Test
  void theWholePrefixAttendsLikeTheOriginal() {
    SyntheticKv kv = new SyntheticKv(15, 20_000, D, 4, 16);
    try (WaveHeadCache original = cache(kv, 0, kv.n, true);
        HeadCache cut = HeadLayout.of(original).prefix(kv.n)) {
      cut.endPrefill(); // the tail is shorter than W + U: nothing is re-clustered
      for (int i = 0; i < 4; i++) {
        float[] q = kv.query(G);
        float[] a = new float[G * D];
        float[] b = new float[G * D];
        original.attend(q, 0, a, 0);
        cut.attend(q, 0, b, 0);
        assertArrayEquals(a, b, "query " + i);
      }
    }
  }

  @Test
  void aPrefixKeepsWholeSegmentsAndRebuildsTheCutOne() {
    SyntheticKv kv = new SyntheticKv(16, 26_000, D, 5, 16);
    try (WaveHeadCache original = cache(EXACT, kv, 0, kv.n, true)) {
      HeadLayout whole = HeadLayout.of(original);
      WaveIndex index = whole.index();
      assertTrue(index.segmentCount() >= 3, "three segments, got " + index.segmentCount());
      // cut in the middle of the second segment
      int m = index.segmentFirstPosition(1) + index.segmentTokens(1) / 2;
      float[][] rows = rows(whole);
      try (HeadCache cut = whole.prefix(m)) {
        HeadLayout c = HeadLayout.of(cut);
        assertEquals(m, c.size());
        assertEquals(1, c.index().segmentCount(), "only the first segment lies inside");
        assertArrayEquals(index.positions(3), c.index().positions(3), "kept clusters");
        assertArrayEquals(index.centroids().row(3), c.index().centroids().row(3));
        float[][] cutRows = rows(c);
        assertEquals(-1, java.util.Arrays.mismatch(cutRows[0], 0, m * D, rows[0], 0, m * D));
        // the rest of the prompt (the stored rows), then the index build: attention over all
        // n tokens, compared with the float64 reference over the same stored rows
        for (int p = m; p < kv.n; p++) {
          cut.append(rows[0], p * D, rows[1], p * D);
        }
        cut.endPrefill();
        assertEquals(kv.n, cut.size());
        assertTrue(c.index().segmentCount() >= 2);
        float[] q = kv.query(G);
        float[] out = new float[G * D];
        cut.attend(q, 0, out, 0);
        float[] ref = new float[G * D];
        for (int h = 0; h < G; h++) {
          double[] r = Reference.attention(q, h * D, rows[0], rows[1], D, kv.n);
          for (int t = 0; t < D; t++) {
            ref[h * D + t] = (float) r[t];
          }
        }
        double err = Reference.relativeError(ref, out);
        assertTrue(err < 1e-4, "relative error " + err + " vs full attention");
      }
    }
  }

  @Test
  void composingDocumentsKeepsTheirClustersAtTheirNewPositions() {
    int[] lengths = {9_000, 10_000};
    SyntheticKv[] docs = {new SyntheticKv(17, lengths[0], D, 2, 16),
        new SyntheticKv(18, lengths[1], D, 2, 16)};
    // a shift that is a rotation, like RoPE's: pairs (t, t + D/2) by angle shift * 1e-3
    HeadLayout.KeyShift shift = (key, off, by) -> {
      double a = by * 1e-3;
      for (int t = 0; t < D / 2; t++) {
        float x = key[off + t];
        float y = key[off + t + D / 2];
        key[off + t] = (float) (x * Math.cos(a) - y * Math.sin(a));
        key[off + t + D / 2] = (float) (x * Math.sin(a) + y * Math.cos(a));
      }
    };
    try (WaveHeadCache a = cache(EXACT, docs[0], 0, lengths[0], true);
        WaveHeadCache b = cache(EXACT, docs[1], 0, lengths[1], true);
        HeadCache composed = HeadLayout.compose(List.of(HeadLayout.of(a), HeadLayout.of(b)),
            shift, EXACT)) {
      HeadLayout c = HeadLayout.of(composed);
      int total = lengths[0] + lengths[1];
      assertEquals(total, c.size());
      float[][] rows = rows(c);
      float[][] second = rows(HeadLayout.of(b));
      // the second document's keys, shifted by the first one's length, rounded to bf16
      float[] k = new float[D];
      for (int p = 0; p < lengths[1]; p += 101) {
        System.arraycopy(second[0], p * D, k, 0, D);
        shift.shift(k, 0, lengths[0]);
        for (int t = 0; t < D; t++) {
          assertEquals(KvDType.BFLOAT16.round(k[t]), rows[0][(lengths[0] + p) * D + t], 1e-6f);
          assertEquals(second[1][p * D + t], rows[1][(lengths[0] + p) * D + t]);
        }
      }
      // the second document's first segment is in the composition, its members moved
      WaveIndex bi = HeadLayout.of(b).index();
      int first = lengths[0] + bi.segmentFirstPosition(0);
      int s = 0;
      while (c.index().segmentFirstPosition(s) != first) {
        s++;
      }
      int c0 = c.index().segmentFirstCluster(s);
      int[] moved = bi.positions(0).clone();
      for (int i = 0; i < moved.length; i++) {
        moved[i] += lengths[0];
      }
      assertArrayEquals(moved, c.index().positions(c0));
      // attention after the question (its prefill closed), against the float64 reference
      composed.endPrefill();
      float[] q = docs[1].query(G);
      float[] out = new float[G * D];
      composed.attend(q, 0, out, 0);
      float[] ref = new float[G * D];
      for (int h = 0; h < G; h++) {
        double[] r = Reference.attention(q, h * D, rows[0], rows[1], D, total);
        for (int t = 0; t < D; t++) {
          ref[h * D + t] = (float) r[t];
        }
      }
      double err = Reference.relativeError(ref, out);
      assertTrue(err < 1e-4, "relative error " + err + " vs full attention");
    }
  }
}
