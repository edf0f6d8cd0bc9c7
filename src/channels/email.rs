//! Email content: templates from `templates/email/` (minijinja; `.html`
//! templates are auto-escaped), rendered once when a mail is decided and
//! stored in the outbox, so a retry sends the identical message with the
//! same deterministic Message-ID. Header text is sanitised and the only
//! recipient is the one validated address: nothing from titles, names or
//! model text can add a header or a recipient.

use crate::notification::{Email, Notification};
use crate::preferences::email_address;
use crate::templating;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use minijinja::{Environment, context};
use serde::Serialize;
use std::path::Path;

/// The content of a digest email, rendered by `templates/email/digest.*` (the notifier decides what it shows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Digest {
    pub(crate) user: String,
    pub(crate) period: String,
    pub(crate) plans: Vec<DigestPlan>,
    pub(crate) missed: Vec<String>,
    pub(crate) widget_url: String,
    pub(crate) unsubscribe_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DigestPlan {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) done: usize,
    pub(crate) total: usize,
    pub(crate) percent: usize,
    pub(crate) due_this_week: Vec<DigestStep>,
    pub(crate) waiting_on_you: Vec<DigestStep>,
    pub(crate) next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DigestStep {
    pub(crate) title: String,
    pub(crate) due: Option<String>,
    pub(crate) overdue: bool,
    pub(crate) status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email template {file}: {reason}")]
    Template { file: String, reason: String },
    #[error("email address `{0}` is not valid")]
    Address(String),
    #[error("building the message: {0}")]
    Build(String),
}

/// The templates a deployment may override, with the built-in copies.
const TEMPLATES: [(&str, &str); 6] = [
    ("digest.txt", include_str!("../../templates/email/digest.txt")),
    ("digest.html", include_str!("../../templates/email/digest.html")),
    (
        "notification.txt",
        include_str!("../../templates/email/notification.txt"),
    ),
    (
        "notification.html",
        include_str!("../../templates/email/notification.html"),
    ),
    ("verify.txt", include_str!("../../templates/email/verify.txt")),
    ("verify.html", include_str!("../../templates/email/verify.html")),
];

/// Renders emails; built once at start-up (template errors name the file).
pub(crate) struct Mail {
    env: Environment<'static>,
    /// The From mailbox, e.g. `steward <steward@localhost>`.
    pub(crate) from: String,
    /// Right-hand side of Message-IDs.
    pub(crate) domain: String,
}

/// Header text as one safe line: control characters (CR, LF, NUL, tabs)
/// become spaces, runs of spaces collapse, and it is cut to 150 characters.
pub(crate) fn header_text(text: &str) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    // "=?" would start an RFC 2047 encoded word that mail clients decode
    // (possibly into a line break): break the syntax.
    let mut line = cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("=?", "= ?");
    if line.chars().count() > 150 {
        line = line.chars().take(149).collect::<String>() + "…";
    }
    line
}

impl Mail {
    /// Loads templates from `dir` (a missing file falls back to the
    /// built-in copy) and checks that each one parses.
    pub(crate) fn load(dir: &Path, from: &str) -> Result<Mail, MailError> {
        let mailbox: Mailbox = from.parse().map_err(|_| MailError::Address(from.to_owned()))?;
        let domain = mailbox.email.domain().to_owned();
        let env = templating::load(dir, &TEMPLATES)
            .map_err(|templating::FileError { file, reason }| MailError::Template { file, reason })?;
        Ok(Mail {
            env,
            from: mailbox.to_string(),
            domain,
        })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, MailError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| MailError::Template {
                file: name.to_owned(),
                reason: e.to_string(),
            })
    }

    pub(crate) fn digest(&self, digest: &Digest, to: &str, message_id: String) -> Result<Email, MailError> {
        let ctx = context! { digest => minijinja::value::Serde(digest) };
        let open: usize = digest.plans.iter().map(|p| p.due_this_week.len()).sum();
        Ok(Email {
            to: to.to_owned(),
            subject: header_text(&format!(
                "Your plans for {}: {} active, {} due this week",
                digest.period,
                digest.plans.len(),
                open
            )),
            text: self.render("digest.txt", ctx.clone())?,
            html: self.render("digest.html", ctx)?,
            message_id,
            unsubscribe: Some(digest.unsubscribe_url.clone()),
        })
    }

    /// A notification as an email, with its one-click `actions` (each
    /// `{name, title, url}`) when it is about a step.
    pub(crate) fn notification(
        &self,
        n: &Notification,
        to: &str,
        (widget_url, unsubscribe_url): (&str, &str),
        actions: &[impl serde::Serialize],
    ) -> Result<Email, MailError> {
        let ctx = context! {
            text => n.text.clone(),
            kind => minijinja::value::Serde(n.kind),
            widget_url => widget_url,
            unsubscribe_url => unsubscribe_url,
            actions => minijinja::value::Serde(actions),
        };
        Ok(Email {
            to: to.to_owned(),
            subject: header_text(&n.text),
            text: self.render("notification.txt", ctx.clone())?,
            html: self.render("notification.html", ctx)?,
            message_id: format!("<notification.{}@{}>", n.id, self.domain),
            unsubscribe: Some(unsubscribe_url.to_owned()),
        })
    }

    /// An email a tool step sends the user: their subject, their text, in
    /// the notification layout (with the links every email carries).
    pub(crate) fn step_email(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        key: &str,
        links: (&str, &str),
    ) -> Result<Email, MailError> {
        let (widget_url, unsubscribe_url) = links;
        let ctx = context! {
            text => body,
            kind => "step",
            widget_url => widget_url,
            unsubscribe_url => unsubscribe_url,
            actions => Vec::<String>::new(),
        };
        Ok(Email {
            to: to.to_owned(),
            subject: header_text(subject),
            text: self.render("notification.txt", ctx.clone())?,
            html: self.render("notification.html", ctx)?,
            message_id: format!("<step.{key}@{}>", self.domain),
            unsubscribe: Some(unsubscribe_url.to_owned()),
        })
    }

    pub(crate) fn verification(&self, to: &str, link: &str, message_id: String) -> Result<Email, MailError> {
        let ctx = context! { link => link, email => to };
        Ok(Email {
            to: to.to_owned(),
            subject: "Confirm your email address for steward".into(),
            text: self.render("verify.txt", ctx.clone())?,
            html: self.render("verify.html", ctx)?,
            message_id,
            unsubscribe: None,
        })
    }
}

/// The lettre message for `email`, From `from`, to exactly `email.to`.
pub(crate) fn message(email: &Email, from: &str) -> Result<Message, MailError> {
    let to = email_address(&email.to).map_err(|e| MailError::Address(e.0))?;
    let from: Mailbox = from.parse().map_err(|_| MailError::Address(from.to_owned()))?;
    let mut builder = Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(header_text(&email.subject))
        .message_id(Some(header_text(&email.message_id)));
    if let Some(url) = &email.unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{}>", header_text(url)),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_one_line_whatever_it_is_given() {
        assert_eq!(
            header_text("Order laptop\r\nBcc: evil@x.org"),
            "Order laptop Bcc: evil@x.org"
        );
        assert_eq!(header_text("a\0b\tc"), "a b c");
        assert_eq!(
            header_text("x =?utf-8?q?=0D=0ABcc:_e@x.org?="),
            "x = ?utf-8?q?=0D=0ABcc:_e@x.org?="
        );
        assert_eq!(header_text(&"x".repeat(400)).chars().count(), 150);
    }

    #[test]
    fn only_a_single_plain_address_is_accepted() {
        assert!(email_address("ana@example.com").is_ok());
        for bad in [
            "ana@example.com, bob@example.com",
            "ana@example.com\r\nBcc: bob@example.com",
            "Ana <ana@example.com>",
            "not an address",
            "",
        ] {
            assert!(email_address(bad).is_err(), "{bad:?}");
        }
    }
}
