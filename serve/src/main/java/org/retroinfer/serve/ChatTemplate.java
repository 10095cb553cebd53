package org.retroinfer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Set;

/**
 * The chat template of the shipped byte-level model, which has none of its own: the document-start
 * token, then each message as a header line {@code ### ROLE} and its content on the following
 * lines, then {@code ### assistant} for the reply:
 *
 * <pre>
 * \x02### system
 * You are terse.
 * ### user
 * Write a loop.
 * ### assistant
 * </pre>
 *
 * Roles: {@code system} (and {@code developer}, written as system), {@code user}, {@code assistant}.
 * A content is a string or a list of {@code {"type": "text", "text": ...}} parts. The reply ends at
 * {@link #END_OF_TURN} (the start of a next header), at a stop sequence or at max_tokens. Messages
 * that share their beginning render to prompts that share their beginning, so a long system prompt
 * is a prefix that the store reuses.
 */
final class ChatTemplate {
  /** What the model writes when it starts a new turn: the reply ends there. */
  static final String END_OF_TURN = "\n### ";
  private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

  private ChatTemplate() {}

  /** The prompt text (without the document-start token) of a {@code messages} array. */
  static String render(JsonNode messages) {
    if (messages == null || !messages.isArray() || messages.isEmpty()) {
      throw ApiError.invalid("messages", "'messages' must be a non-empty array of {role, content}");
    }
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < messages.size(); i++) {
      JsonNode m = messages.get(i);
      String role = m.path("role").asText("");
      if (!ROLES.contains(role)) {
        throw ApiError.invalid("messages[" + i + "].role", "messages[" + i + "] has role '" + role
            + "'; this server takes system, developer, user and assistant");
      }
      b.append("### ").append(role.equals("developer") ? "system" : role).append('\n')
          .append(content(m.get("content"), i)).append('\n');
    }
    return b.append("### assistant\n").toString();
  }

  private static String content(JsonNode c, int i) {
    if (c == null || c.isNull()) {
      return "";
    }
    if (c.isTextual()) {
      return c.asText();
    }
    if (c.isArray()) {
      StringBuilder b = new StringBuilder();
      for (JsonNode part : c) {
        if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
          throw ApiError.invalid("messages[" + i + "].content", "messages[" + i + "] has a"
              + " content part that is not {\"type\": \"text\", \"text\": ...}; this model reads"
              + " text only");
        }
        b.append(part.get("text").asText());
      }
      return b.toString();
    }
    throw ApiError.invalid("messages[" + i + "].content", "messages[" + i + "].content must be a"
        + " string or a list of text parts");
  }
}
