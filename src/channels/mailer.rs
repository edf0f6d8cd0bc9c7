//! The mail transport: SMTP through lettre (STARTTLS, TLS or plain on
//! loopback, with auth) or, when no SMTP server is configured, `.eml` files
//! in an outbox directory so the default works offline. Every send runs
//! under a timeout (lettre's own covers only the connect).

use super::email::message;
use crate::notification::Email;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// How a failed delivery attempt ends, for every channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    /// Try again later (SMTP 4xx, connection failures, timeouts, 429, 5xx
    /// from HTTP peers), not before `retry_after` if the peer said so.
    #[error("temporary failure: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Never retried (SMTP 5xx, HTTP 4xx, a message that cannot be built).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The push subscription no longer exists (404/410): remove it.
    #[error("the subscription is gone")]
    Gone,
}

impl SendError {
    pub(crate) fn transient(message: impl Into<String>) -> SendError {
        SendError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Why the mail transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("email.smtp_url: {0}")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("creating the mail outbox {dir}: {source}")]
    Outbox {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Writes `<uuid>.eml` files into the directory.
    Files(PathBuf),
}

impl Mailer {
    /// `smtp_url` like `smtps://user:pass@host:465` or
    /// `smtp://host:587?tls=required`; none: `.eml` files in `outbox_dir`.
    pub fn new(smtp_url: Option<&str>, outbox_dir: PathBuf, timeout: Duration) -> Result<Mailer, MailerError> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailerError::SmtpUrl)?
                    .timeout(Some(timeout))
                    .build();
                Ok(Mailer::Smtp(transport))
            }
            None => {
                std::fs::create_dir_all(&outbox_dir).map_err(|source| MailerError::Outbox {
                    dir: outbox_dir.display().to_string(),
                    source,
                })?;
                Ok(Mailer::Files(outbox_dir))
            }
        }
    }

    /// Plain SMTP to a loopback port (tests, local relays).
    pub fn loopback(port: u16, timeout: Duration) -> Mailer {
        Mailer::Smtp(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(port)
                .timeout(Some(timeout))
                .build(),
        )
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(_) => "smtp".into(),
            Mailer::Files(dir) => format!("files in {}", dir.display()),
        }
    }

    pub(crate) async fn send(&self, email: &Email, from: &str, timeout: Duration) -> Result<(), SendError> {
        let msg = message(email, from).map_err(|e| SendError::Permanent(e.to_string()))?;
        match self {
            Mailer::Smtp(t) => match tokio::time::timeout(timeout, t.send(msg)).await {
                Err(_) => Err(SendError::transient("the SMTP server did not answer in time")),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                // 4xx, and connection or TLS failures, which are neither.
                Ok(Err(e)) => Err(SendError::transient(e.to_string())),
            },
            Mailer::Files(dir) => {
                let t = AsyncFileTransport::<Tokio1Executor>::new(dir);
                t.send(msg)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::transient(e.to_string()))
            }
        }
    }
}
