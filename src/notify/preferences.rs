//! Changing preferences: one partial-update shape and one set of rules for
//! REST (`PUT /api/preferences`) and the chat (`set_preferences` tool).
//! The whole update is checked before anything changes; a new address is
//! unverified until its link is opened. Pure: no I/O.

use super::email::parse_address;
use super::{Channels, Preferences, QuietHours};
use crate::scheduler::triggers::{Frequency, Recurrence};
use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursBody {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestBody {
    pub frequency: Frequency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<String>,
    /// `HH:MM`; absent: keep the current time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// A partial update: absent fields stay as they are; `null` clears
/// `email` and `quiet_hours`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub quiet_hours: Option<Option<QuietHoursBody>>,
    pub digest: Option<DigestBody>,
    pub channels: Option<Channels>,
}

/// Tells a field set to `null` (Some(None)) from an absent one (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn hhmm(text: &str, field: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| format!("{field} must be a time like 08:00 (24-hour)"))
}

/// Applies `update` to a copy of `prefs`. Returns the new preferences and,
/// if the address changed, the address that needs a verification email.
pub fn apply(prefs: &Preferences, update: Update) -> Result<(Preferences, Option<String>), String> {
    let mut next = prefs.clone();
    if let Some(zone) = update.time_zone {
        zone.parse::<chrono_tz::Tz>()
            .map_err(|_| format!("time_zone `{zone}` is not an IANA time zone (e.g. Europe/Berlin)"))?;
        next.time_zone = Some(zone);
    }
    let mut verify = None;
    match update.email {
        Some(Some(email)) => {
            let address = parse_address(&email).map_err(|e| e.to_string())?.to_string();
            if next.email.as_deref() != Some(address.as_str()) {
                next.email = Some(address.clone());
                next.email_verified = false;
                verify = Some(address);
            } else if !next.email_verified {
                // The same, still unverified address: send the link again.
                verify = Some(address);
            }
        }
        Some(None) => {
            next.email = None;
            next.email_verified = false;
        }
        None => {}
    }
    match update.quiet_hours {
        Some(Some(q)) => {
            next.quiet_hours = Some(QuietHours {
                start: hhmm(&q.start, "quiet_hours.start")?,
                end: hhmm(&q.end, "quiet_hours.end")?,
            })
        }
        Some(None) => next.quiet_hours = None,
        None => {}
    }
    if let Some(d) = update.digest {
        let weekday = match (&d.frequency, &d.weekday) {
            (Frequency::Weekly, Some(w)) => Some(
                w.parse::<Weekday>()
                    .map_err(|_| "digest.weekday must be a day like mon or monday".to_string())?,
            ),
            (Frequency::Weekly, None) => Some(prefs.digest.weekday.unwrap_or(Weekday::Mon)),
            (Frequency::Daily | Frequency::Off, _) => None,
        };
        let time = match &d.time {
            Some(t) => hhmm(t, "digest.time")?,
            None => prefs.digest.time,
        };
        next.digest = Recurrence {
            frequency: d.frequency,
            weekday,
            time,
        };
    }
    if let Some(c) = update.channels {
        next.channels = c;
    }
    Ok((next, verify))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_field_refuses_the_whole_update_and_a_new_address_needs_verifying() {
        let prefs = Preferences {
            email: Some("old@example.com".into()),
            email_verified: true,
            ..Preferences::default()
        };
        let bad: Update = serde_json::from_str(
            r#"{"time_zone": "Asia/Kolkata", "digest": {"frequency": "weekly", "weekday": "someday"}}"#,
        )
        .unwrap();
        assert_eq!(
            apply(&prefs, bad).unwrap_err(),
            "digest.weekday must be a day like mon or monday"
        );
        let ok: Update = serde_json::from_str(
            r#"{"email": "new@example.com", "digest": {"frequency": "weekly", "weekday": "fri", "time": "07:30"}, "quiet_hours": null}"#,
        )
        .unwrap();
        let (next, verify) = apply(&prefs, ok).unwrap();
        assert_eq!(verify.as_deref(), Some("new@example.com"));
        assert!(!next.email_verified);
        assert_eq!(next.digest.weekday, Some(Weekday::Fri));
        assert_eq!(next.digest.time, NaiveTime::from_hms_opt(7, 30, 0).unwrap());
        // The same address again: a new link while unverified, else nothing.
        let same: Update = serde_json::from_str(r#"{"email": "new@example.com"}"#).unwrap();
        assert_eq!(
            apply(&next, same.clone()).unwrap().1.as_deref(),
            Some("new@example.com")
        );
        let verified = Preferences {
            email_verified: true,
            ..next
        };
        assert_eq!(apply(&verified, same).unwrap().1, None);
    }
}
