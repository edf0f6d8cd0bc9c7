//! A user's notification preferences (time zone, email, quiet hours,
//! digest schedule, channels) and the one set of rules for changing them,
//! shared by REST (`PUT /api/preferences`) and the chat (`set_preferences`).
//! The whole update is checked before anything changes; a new address is
//! unverified until its link is opened. Pure: no I/O.

use crate::triggers::{self, Frequency, Recurrence, Trigger, local_instant};
use crate::user::UserId;
use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Local hours during which non-urgent notifications wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// If `at` falls in quiet hours, the instant they end.
    pub(crate) fn ends_after(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&tz);
        let t = local.time();
        let day = local.date_naive();
        let (inside, end_day) = if self.start <= self.end {
            (t >= self.start && t < self.end, day)
        } else if t >= self.start {
            (true, day.succ_opt()?)
        } else {
            (t < self.end, day)
        };
        if !inside {
            return None;
        }
        let wall = end_day.and_time(self.end);
        let end = local_instant(tz, wall);
        if end > at {
            return Some(end);
        }
        // The end falls in a repeated (fall-back) hour whose earlier
        // instance has passed: quiet hours end at the later one.
        tz.from_local_datetime(&wall)
            .latest()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > at)
    }
}

/// Which channels the user accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    pub push: bool,
    pub email: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            push: true,
            email: true,
        }
    }
}

/// A user's notification preferences, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// IANA zone; `None`: the server's configured zone.
    pub time_zone: Option<String>,
    pub email: Option<String>,
    /// Only a verified address ever receives anything but the verification.
    pub email_verified: bool,
    pub quiet_hours: Option<QuietHours>,
    pub digest: Recurrence,
    pub channels: Channels,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            time_zone: None,
            email: None,
            email_verified: false,
            quiet_hours: None,
            digest: Recurrence {
                frequency: Frequency::Daily,
                weekday: None,
                time: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            },
            channels: Channels::default(),
        }
    }
}

impl Preferences {
    pub(crate) fn tz(&self, fallback: Tz) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(fallback)
    }

    /// The address mail may go to: set, verified, and the channel on.
    pub fn deliverable_email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .filter(|_| self.email_verified && self.channels.email)
    }

    /// Whether a digest trigger should be armed.
    pub(crate) fn wants_digest(&self) -> bool {
        self.deliverable_email().is_some() && self.digest.frequency != Frequency::Off
    }

    /// The digest trigger these preferences ask for, next due after `after`.
    pub fn digest_trigger(&self, user: &UserId, tz: Tz, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<Trigger> {
        if !self.wants_digest() {
            return None;
        }
        triggers::digest(user, &self.digest, tz, after, now)
    }

    /// The digest trigger after a change of preferences, given when the
    /// armed one fires. Counted from just before the armed one if that is
    /// already due, so a digest that came due but was not sent yet (say,
    /// right after a restart) is not cancelled by an unrelated change;
    /// otherwise from now.
    pub fn rearmed_digest(
        &self,
        user: &UserId,
        tz: Tz,
        armed: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Trigger> {
        let after = match armed {
            Some(at) if at <= now => at - chrono::Duration::milliseconds(1),
            Some(_) | None => now,
        };
        self.digest_trigger(user, tz, after, now)
    }
}

/// Why an address a user typed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email address `{0}` is not valid")]
pub struct InvalidAddress(pub String);

/// Checks an address a user typed: one plain mailbox address, no display
/// name, no list, no control characters. The error shows it on one line.
pub(crate) fn email_address(text: &str) -> Result<lettre::Address, InvalidAddress> {
    let t = text.trim();
    let shown = || InvalidAddress(t.chars().filter(|c| !c.is_control()).take(100).collect());
    if t.len() > 254
        || t.chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>'))
    {
        return Err(shown());
    }
    t.parse().map_err(|_| shown())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuietHoursBody {
    /// Local HH:MM
    pub start: String,
    /// Local HH:MM
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DigestBody {
    pub frequency: Frequency,
    /// For weekly: monday … sunday
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<String>,
    /// Local HH:MM
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// A partial update: absent fields stay as they are; `null` clears
/// `email` and `quiet_hours`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Update {
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

/// Why an update was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    #[error("time_zone `{0}` is not an IANA time zone (e.g. Europe/Berlin)")]
    TimeZone(String),
    #[error(transparent)]
    Email(#[from] InvalidAddress),
    #[error("{0} must be a time like 08:00 (24-hour)")]
    Time(&'static str),
    #[error("digest.weekday must be a day like mon or monday")]
    Weekday,
}

fn hhmm(text: &str, field: &'static str) -> Result<NaiveTime, PreferencesError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| PreferencesError::Time(field))
}

/// Applies `update` to a copy of `prefs`. Returns the new preferences and,
/// if the address changed, the address that needs a verification email.
pub(crate) fn apply(prefs: &Preferences, update: Update) -> Result<(Preferences, Option<String>), PreferencesError> {
    let mut next = prefs.clone();
    if let Some(zone) = update.time_zone {
        zone.parse::<Tz>()
            .map_err(|_| PreferencesError::TimeZone(zone.clone()))?;
        next.time_zone = Some(zone);
    }
    let mut verify = None;
    match update.email {
        Some(Some(email)) => {
            let address = email_address(&email)?.to_string();
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
            (Frequency::Weekly, Some(w)) => Some(w.parse::<Weekday>().map_err(|_| PreferencesError::Weekday)?),
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
    use crate::plan::fixtures::at;

    fn hours(start: u32, end: u32) -> QuietHours {
        QuietHours {
            start: NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(end, 30, 0).unwrap(),
        }
    }

    #[test]
    fn quiet_hours_end_at_the_next_local_end_even_across_midnight_and_fall_back() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let london: Tz = "Europe/London".parse().unwrap();
        let night = hours(22, 7); // 22:00 → 07:30
        let cases = [
            (night, berlin, "2026-11-23T22:30:00Z", Some("2026-11-24T06:30:00Z")), // 23:30 local
            (night, berlin, "2026-11-24T05:00:00Z", Some("2026-11-24T06:30:00Z")), // 06:00 local
            (night, berlin, "2026-11-24T12:00:00Z", None),                         // midday
            // 00:00 → 01:30 in London on the fall-back night (2026-10-25):
            // at 01:15 GMT (01:15Z, the second pass through 01:xx) the first
            // 01:30 (BST, 00:30Z) has passed; the end is 01:30 GMT.
            (
                hours(0, 1),
                london,
                "2026-10-25T01:15:00Z",
                Some("2026-10-25T01:30:00Z"),
            ),
            // 01:45 BST (00:45Z) is after 01:30: not quiet.
            (hours(0, 1), london, "2026-10-25T00:45:00Z", None),
        ];
        for (q, tz, now, want) in cases {
            assert_eq!(q.ends_after(at(now), tz), want.map(at), "{tz} {now}");
        }
    }

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
            apply(&prefs, bad).unwrap_err().to_string(),
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
