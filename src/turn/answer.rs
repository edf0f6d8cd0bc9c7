//! What is kept of a model's answer: its text within a limit, and tool
//! calls whose arguments are too large replaced by a note, so neither is
//! replayed to the model whole on every later turn.

use crate::conversation::ToolCall;

/// A model's answer text within `limit` characters: the rest is cut with a
/// note saying so.
pub(super) fn bounded(text: String, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!(
            "{}… [the rest of this answer, {} more characters, was cut]",
            &text[..cut],
            text[cut..].chars().count()
        ),
        None => text,
    }
}

/// A tool call as the transcript keeps it: arguments too large to run are
/// kept as a note (the call is refused), so they are never replayed.
pub(super) fn recorded(call: &ToolCall) -> ToolCall {
    match call.arguments.len() > crate::tools::MAX_ARGUMENT_BYTES {
        true => ToolCall {
            arguments: format!(
                "{{\"note\":\"{} bytes of arguments, over the {} allowed: not run and not kept\"}}",
                call.arguments.len(),
                crate::tools::MAX_ARGUMENT_BYTES
            ),
            ..call.clone()
        },
        false => call.clone(),
    }
}
