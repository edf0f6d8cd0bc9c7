//! The outside channels steward reaches people through, and what they
//! need: email (rendering from `templates/email/` and the SMTP or file
//! transport), web push, signed webhooks, the calendar feed, signed links,
//! and the HTTP client that calls public addresses only. Each is a seam
//! with a loopback peer in the tests; deciding *when* to use one is the
//! notifier's job.

pub(crate) mod calendar;
pub(crate) mod egress;
pub(crate) mod email;
pub(crate) mod links;
pub mod mailer;
pub(crate) mod push;
pub mod webhook;

/// Longest Retry-After from a peer (SMTP server, push service, webhook
/// receiver) that is honoured.
pub(crate) const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
