package org.retroinfer.gpu.layout;

/**
 * The zones chosen for every item of a batch, as the {@code select_top} kernel writes them:
 * item {@code i} retrieves clusters {@code retIds[i * rStride .. + r_i)} (local ids, ascending),
 * placed at rows {@code retDst[..]} of its execution buffer (steady rows first, then the clusters in
 * id order), estimates {@code estIds[i * eStride .. + e_i)} (ascending), and reads
 * {@code execLen[i]} rows exactly.
 */
public record Selection(int rStride, int eStride, int[] retIds, int[] retDst, int[] estIds,
    int[] execLen) {

  public static Selection allocate(BatchTables t) {
    int rs = Math.max(1, t.maxRetrieve());
    int es = Math.max(1, t.maxEstimate());
    return new Selection(rs, es, new int[t.items * rs], new int[t.items * rs], new int[t.items * es],
        new int[t.items]);
  }
}
