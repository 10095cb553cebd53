package org.retroinfer.model.eval;

/**
 * One answer a method gave.
 *
 * @param group the recall's group ({@link RecallPrompt.Recall#group()})
 * @param answer the digits decoded
 * @param correct whether they are the key's value
 */
public record RecallOutcome(String group, String answer, boolean correct) {}
