//! `set_preferences`: the person's digest schedule, quiet hours, time zone
//! and channels, from the chat ("send me a weekly digest on Mondays at 8").
//! The email address is changed in the widget's settings (it needs the
//! verification link), not here.

use super::{Tool, ToolContext, ToolError};
use crate::preferences::{Channels, DigestBody, QuietHoursBody, Update};
use crate::service::SavedPreferences;
use crate::triggers::Frequency;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct SetPreferences;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// IANA zone
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) time_zone: Option<String>,
    /// Non-urgent notices wait until the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) quiet_hours: Option<QuietHoursBody>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) clear_quiet_hours: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<DigestBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) channels: Option<Channels>,
}

/// The saved preferences, as the model reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved(pub SavedPreferences);

impl Serialize for Saved {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Digest {
            frequency: Frequency,
            weekday: Option<String>,
            time: String,
            next_at: Option<String>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            ok: bool,
            digest: Digest,
            email: Option<&'a str>,
            email_verified: bool,
            time_zone: &'a str,
        }
        let SavedPreferences { prefs, tz, digest } = &self.0;
        Body {
            ok: true,
            digest: Digest {
                frequency: prefs.digest.frequency,
                weekday: prefs.digest.weekday.map(|w| w.to_string()),
                time: prefs.digest.time.format("%H:%M").to_string(),
                next_at: digest.as_ref().map(|t| t.fire_at.with_timezone(tz).to_rfc3339()),
            },
            email: prefs.email.as_deref(),
            email_verified: prefs.email_verified,
            time_zone: tz.name(),
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for SetPreferences {
    const NAME: &'static str = "set_preferences";
    const DESCRIPTION: &'static str = "Digest email, quiet hours, time zone, channels (not the address).";
    const HINT: &'static str = "digest, quiet hours, zone, channels";
    type Args = Args;
    type Output = Saved;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<Saved, ToolError> {
        let update = Update {
            time_zone: args.time_zone,
            email: None,
            quiet_hours: match (args.quiet_hours, args.clear_quiet_hours) {
                (Some(q), _) => Some(Some(q)),
                (None, true) => Some(None),
                (None, false) => None,
            },
            digest: args.digest,
            channels: args.channels,
        };
        Ok(Saved(ctx.service.update_preferences(ctx.session, update).await?))
    }
}
