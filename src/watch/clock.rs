//! Time, injectable: the loop and its guards read the time through
//! [`Clock`], so tests move it by hand (a grace period, a budget window, a
//! reminder, a quarantine "within an hour") instead of sleeping.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(t: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(t))
    }

    /// `rfc3339`, which must be valid (a test's constant).
    pub fn at_str(rfc3339: &str) -> ManualClock {
        ManualClock::at(DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 time").to_utc())
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += chrono::TimeDelta::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `t + d`, saturating.
pub fn plus(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
pub fn minus(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d).ok().and_then(|d| t.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// RFC 3339 in UTC to the second, as events carry it.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
