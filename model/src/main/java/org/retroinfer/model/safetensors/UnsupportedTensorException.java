package org.retroinfer.model.safetensors;

/**
 * A checkpoint that is well formed but holds something this runtime does not support: a tensor
 * dtype other than F32/F16/BF16, or a model architecture other than Llama.
 */
public final class UnsupportedTensorException extends CheckpointException {
  public UnsupportedTensorException(String message) {
    super(message);
  }
}
