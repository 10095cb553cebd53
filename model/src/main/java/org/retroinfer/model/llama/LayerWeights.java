package org.retroinfer.model.llama;

import org.retroinfer.model.tensor.WeightMatrix;

/**
 * The weights of one decoder layer. Matrices stay in the mapped checkpoint; the two RMSNorm weight
 * vectors (a few KB) are widened to float once.
 */
public record LayerWeights(
    float[] attentionNorm,
    WeightMatrix wq,
    WeightMatrix wk,
    WeightMatrix wv,
    WeightMatrix wo,
    float[] mlpNorm,
    WeightMatrix gate,
    WeightMatrix up,
    WeightMatrix down) {}
