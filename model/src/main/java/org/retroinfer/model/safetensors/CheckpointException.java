package org.retroinfer.model.safetensors;

/**
 * A model checkpoint that cannot be used: a malformed or truncated file, a missing tensor, a tensor
 * of the wrong shape, a checksum mismatch, or a configuration that contradicts the weights. The
 * message says what was found, what was expected, and what to do.
 */
public class CheckpointException extends RuntimeException {
  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
