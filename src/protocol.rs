//! The `/ws` wire contract: JSON text frames in both directions. Fields may
//! be added, never renamed. Client frames are parsed by hand so every kind of
//! bad input gets its own precise error code.

use crate::notification::NotificationView;
use crate::plan::Plan;
use crate::proposal::ProposalView;
use serde::Serialize;
use serde_json::Value;

/// Longest client-chosen message id.
const MAX_ID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientFrame {
    Message { id: String, text: String },
    Confirm { proposal_id: String, accept: bool },
    Ping,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    Ready {
        user: String,
        plans: Vec<Plan>,
        /// Notifications that arrived while no socket was open.
        notifications: Vec<NotificationView>,
    },
    /// A message the user sent (from any of their sockets), as received.
    Message {
        id: String,
        text: String,
    },
    Delta {
        reply_to: String,
        text: String,
    },
    Reply {
        reply_to: String,
        text: String,
    },
    Plan {
        plan: Plan,
        /// The user asked to see this plan (`show_plan`), as opposed to a
        /// change: a widget shows the card again at the end of the thread.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        shown: bool,
    },
    Proposal {
        proposal: ProposalView,
    },
    Notification {
        notification: NotificationView,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    Pong,
}

impl ServerFrame {
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>, reply_to: Option<String>) -> ServerFrame {
        ServerFrame::Error {
            code,
            message: message.into(),
            reply_to,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        // Serializing our own frame types cannot fail: every field is a
        // string, number, bool or a derived Serialize of the same.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"code\":\"internal\",\"message\":\"{e}\"}}"))
    }
}

/// Machine-readable error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    InvalidJson,
    MissingField,
    InvalidField,
    UnknownType,
    BinaryNotSupported,
    MessageTooLong,
    EmptyMessage,
    RateLimited,
    Busy,
    ProposalNotFound,
    ProposalStale,
    /// A `message` with an id the server already received (a resend after a
    /// dropped connection); it is not run again.
    DuplicateMessage,
    ModelUnavailable,
    /// The user's model tokens for the day are used up.
    QuotaExceeded,
    ToolRoundsExhausted,
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrameError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) reply_to: Option<String>,
}

impl FrameError {
    pub(crate) fn into_frame(self) -> ServerFrame {
        ServerFrame::error(self.code, self.message, self.reply_to)
    }
}

fn fail(code: ErrorCode, message: impl Into<String>, reply_to: Option<String>) -> FrameError {
    FrameError {
        code,
        message: message.into(),
        reply_to,
    }
}

fn string_field(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    kind: &str,
    reply_to: &Option<String>,
) -> Result<String, FrameError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(fail(
            ErrorCode::MissingField,
            format!("`{kind}` frames need a `{field}` field"),
            reply_to.clone(),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(fail(
            ErrorCode::InvalidField,
            format!("`{field}` must be a string"),
            reply_to.clone(),
        )),
    }
}

/// Parses one client text frame.
pub(crate) fn parse_client_frame(text: &str, max_message_chars: usize) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| fail(ErrorCode::InvalidJson, format!("frames must be JSON: {e}"), None))?;
    let Value::Object(obj) = value else {
        return Err(fail(ErrorCode::InvalidJson, "frames must be JSON objects", None));
    };
    let reply_to = obj
        .get("id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(MAX_ID_CHARS).collect());
    let kind = match obj.get("type") {
        None => return Err(fail(ErrorCode::MissingField, "frames need a `type` field", reply_to)),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(fail(ErrorCode::InvalidField, "`type` must be a string", reply_to)),
    };
    match kind {
        "message" => {
            let id = string_field(&obj, "id", kind, &None)?;
            if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
                return Err(fail(
                    ErrorCode::InvalidField,
                    format!("`id` must be 1-{MAX_ID_CHARS} characters"),
                    None,
                ));
            }
            let reply_to = Some(id.clone());
            let text = string_field(&obj, "text", kind, &reply_to)?;
            // Zero-width and other invisible characters say nothing either.
            let invisible = |c: char| {
                c.is_whitespace()
                    || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}' | '\u{034f}' | '\u{180e}')
            };
            if text.chars().all(invisible) {
                return Err(fail(ErrorCode::EmptyMessage, "the message is empty", reply_to));
            }
            let chars = text.chars().count();
            if chars > max_message_chars {
                return Err(fail(
                    ErrorCode::MessageTooLong,
                    format!("the message has {chars} characters; the limit is {max_message_chars}"),
                    reply_to,
                ));
            }
            Ok(ClientFrame::Message { id, text })
        }
        "confirm" => {
            let proposal_id = string_field(&obj, "proposal_id", kind, &None)?;
            let accept = match obj.get("accept") {
                None | Some(Value::Null) => {
                    return Err(fail(
                        ErrorCode::MissingField,
                        "`confirm` frames need an `accept` field",
                        None,
                    ));
                }
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(fail(ErrorCode::InvalidField, "`accept` must be true or false", None)),
            };
            Ok(ClientFrame::Confirm { proposal_id, accept })
        }
        "ping" => Ok(ClientFrame::Ping),
        other => Err(fail(
            ErrorCode::UnknownType,
            format!(
                "unknown frame type `{}`; expected message, confirm or ping",
                other.chars().take(40).collect::<String>()
            ),
            reply_to,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_frames_parse() {
        assert_eq!(
            parse_client_frame(r#"{"type":"message","id":"c1","text":"hi","extra":1}"#, 100),
            Ok(ClientFrame::Message {
                id: "c1".into(),
                text: "hi".into()
            })
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"confirm","proposal_id":"p1","accept":false}"#, 100),
            Ok(ClientFrame::Confirm {
                proposal_id: "p1".into(),
                accept: false
            })
        );
        assert_eq!(parse_client_frame(r#"{"type":"ping"}"#, 100), Ok(ClientFrame::Ping));
    }

    #[test]
    fn bad_frames_get_precise_codes() {
        let cases = [
            ("not json", ErrorCode::InvalidJson, None),
            ("[1,2]", ErrorCode::InvalidJson, None),
            (r#"{"text":"hi"}"#, ErrorCode::MissingField, None),
            (r#"{"type":7}"#, ErrorCode::InvalidField, None),
            (r#"{"type":"dance","id":"c9"}"#, ErrorCode::UnknownType, Some("c9")),
            (r#"{"type":"message","text":"hi"}"#, ErrorCode::MissingField, None),
            (r#"{"type":"message","id":"c2"}"#, ErrorCode::MissingField, Some("c2")),
            (
                r#"{"type":"message","id":"c3","text":5}"#,
                ErrorCode::InvalidField,
                Some("c3"),
            ),
            (
                r#"{"type":"message","id":"c4","text":"   "}"#,
                ErrorCode::EmptyMessage,
                Some("c4"),
            ),
            (
                "{\"type\":\"message\",\"id\":\"c4z\",\"text\":\"\u{200b}\u{feff} \u{2060}\"}",
                ErrorCode::EmptyMessage,
                Some("c4z"),
            ),
            (
                r#"{"type":"message","id":"c5","text":"0123456789x"}"#,
                ErrorCode::MessageTooLong,
                Some("c5"),
            ),
            (
                r#"{"type":"confirm","proposal_id":"p1"}"#,
                ErrorCode::MissingField,
                None,
            ),
            (
                r#"{"type":"confirm","proposal_id":"p1","accept":"yes"}"#,
                ErrorCode::InvalidField,
                None,
            ),
        ];
        for (input, code, reply_to) in cases {
            let err = parse_client_frame(input, 10).unwrap_err();
            assert_eq!((err.code, err.reply_to.as_deref()), (code, reply_to), "input: {input}");
        }
    }

    #[test]
    fn server_frames_serialize_to_the_wire_contract() {
        let frame = ServerFrame::error(ErrorCode::RateLimited, "slow down", Some("c1".into()));
        assert_eq!(
            frame.to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down","reply_to":"c1"}"#
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerFrame::Delta {
                reply_to: "c1".into(),
                text: "Hel".into()
            }
            .to_json(),
            r#"{"type":"delta","reply_to":"c1","text":"Hel"}"#
        );
    }
}

/// Property tests over arbitrary frames (`PROPTEST_CASES` for long runs).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// JSON values that look like frames: the known keys with values of
    /// every shape, and some others.
    fn frame() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,40}".prop_map(Value::from),
            prop::sample::select(vec!["message", "confirm", "ping", "resync", "", "MESSAGE"]).prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let keys = prop::sample::select(vec!["type", "id", "text", "proposal_id", "accept", "since", "x"]);
        prop::collection::btree_map(keys, value, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    proptest! {
        #![proptest_config(crate::config::proptest_config(512))]

        #[test]
        fn any_text_is_a_frame_or_a_typed_error(text in ".{0,200}") {
            let _ = parse_client_frame(&text, 8000);
        }

        #[test]
        fn a_frame_shaped_value_is_parsed_or_refused_with_a_reply_to_within_limits(value in frame()) {
            match parse_client_frame(&value.to_string(), 50) {
                Ok(ClientFrame::Message { id, text }) => {
                    prop_assert!(!id.is_empty() && id.chars().count() <= MAX_ID_CHARS);
                    prop_assert!(text.chars().count() <= 50);
                    prop_assert_eq!(value["type"].as_str(), Some("message"));
                }
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.reply_to.is_none_or(|r| r.chars().count() <= MAX_ID_CHARS));
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }
}
