package org.retroinfer.lucene;

import java.io.IOException;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.util.Bits;

/**
 * Documents by key: the live documents that hold one of some terms and a filter term, straight
 * from the terms dictionary and the postings (one seek per term and leaf). A store's lookups (a
 * record by context id, prefix keys by hash) are exact-match filters that need no scoring, so they
 * skip a searcher's query, weight and collector machinery, which a short-lived process would
 * otherwise load and run cold on its way to the first token.
 */
public final class KeyLookup {
  private KeyLookup() {}

  /** The live documents holding {@code key} and {@code filter}: global doc ids, ascending. */
  public static int[] liveDocs(IndexReader reader, Term filter, Term key) throws IOException {
    return liveDocs(reader, filter, List.of(key));
  }

  /**
   * The live documents holding at least one of {@code anyOf} and {@code filter}: global doc ids,
   * ascending, each once.
   */
  public static int[] liveDocs(IndexReader reader, Term filter, Collection<Term> anyOf)
      throws IOException {
    int[] out = new int[0];
    int n = 0;
    for (LeafReaderContext leaf : reader.leaves()) {
      LeafReader r = leaf.reader();
      int[] found = new int[0];
      int m = 0;
      for (Term t : anyOf) {
        PostingsEnum p = r.postings(t, PostingsEnum.NONE);
        if (p == null) {
          continue;
        }
        for (int d = p.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = p.nextDoc()) {
          if (m == found.length) {
            found = Arrays.copyOf(found, Math.max(8, 2 * m));
          }
          found[m++] = d;
        }
      }
      if (m == 0) {
        continue;
      }
      Arrays.sort(found, 0, m);
      PostingsEnum f = r.postings(filter, PostingsEnum.NONE);
      if (f == null) {
        continue;
      }
      Bits live = r.getLiveDocs();
      int prev = -1;
      for (int i = 0; i < m; i++) {
        int d = found[i];
        if (d == prev) {
          continue;
        }
        prev = d;
        if (f.docID() < d) {
          f.advance(d);
        }
        if (f.docID() == d && (live == null || live.get(d))) {
          if (n == out.length) {
            out = Arrays.copyOf(out, Math.max(8, 2 * n));
          }
          out[n++] = leaf.docBase + d;
        }
      }
    }
    return Arrays.copyOf(out, n);
  }
}
