//! The `watch { ... }` block of the root module, as [`WatchSettings`]: what
//! a watcher does (observe or heal), how often, and the guards a healer
//! runs under. Every value is a constant checked here, each problem
//! reported at its place in the file; command-line flags are laid over the
//! result by the command.
//!
//! ```hcl
//! watch {
//!   mode             = "heal"          # or "observe" (the default)
//!   interval         = "5m"            # ±10% jitter
//!   retry_interval   = "30s"           # after an error, doubling up to `interval`
//!   listen           = "127.0.0.1:9469"
//!   heal             = ["dns_record", "instance_missing", "instance_impaired", "instance_retiring"]
//!   unhealthy_after  = 3               # cycles of failed status checks
//!   grace            = "15m"           # after a host is first seen
//!   max_replacements = "1/60m"
//!   max_unhealthy    = 1               # more dead hosts at once: heal nothing, alert
//!   reminder         = "6h"
//!   approve          = "auto"          # or "manual": save a plan, send the command
//!   deny_window { cron = "0 9 * * 1-5", duration = "8h", time_zone = "Europe/Berlin" }
//! }
//! ```

use super::event::DriftClass;
use crate::config::{AttrDecl, BlockDecl};
use crate::diag::{Diagnostic, Diagnostics, suggest};
use crate::value::Value;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Blocks of the sinks (notifiers, hooks): top-level blocks of their own,
/// refused inside `watch` with a pointer to where they go.
pub const SINK_BLOCKS: &[&str] = &["notify", "hook"];

const ATTRS: &[&str] = &[
    "mode",
    "interval",
    "retry_interval",
    "listen",
    "heal",
    "unhealthy_after",
    "grace",
    "max_replacements",
    "max_unhealthy",
    "quarantine_after",
    "reminder",
    "approve",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Detect and notify; change nothing.
    Observe,
    /// Heal the classes in [`WatchSettings::heal`], within the guards.
    Heal,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Heal => "heal",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "observe" => Ok(Mode::Observe),
            "heal" => Ok(Mode::Heal),
            _ => Err(format!("`mode` must be \"observe\" or \"heal\", not `{s}`")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approve {
    /// Heal at once.
    Auto,
    /// Save the heal's plan and send the command that applies it.
    Manual,
}

/// A stretch of time when nothing is healed: from each time `cron` matches
/// (in `time_zone`), for `duration`.
#[derive(Clone, Debug)]
pub struct DenyWindow {
    pub cron: croner::Cron,
    pub pattern: String,
    pub duration: Duration,
    pub time_zone: chrono_tz::Tz,
}

impl DenyWindow {
    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone);
        match self.cron.find_previous_occurrence(&local, true) {
            Ok(start) => {
                let end = start + chrono::TimeDelta::from_std(self.duration).unwrap_or(chrono::TimeDelta::MAX);
                local < end
            }
            Err(_) => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchSettings {
    pub mode: Mode,
    pub interval: Duration,
    /// The share of `interval` each wait varies by, either way.
    pub jitter: f64,
    pub retry_interval: Duration,
    pub listen: SocketAddr,
    /// The classes healed in heal mode; the rest are only reported.
    pub heal: Vec<DriftClass>,
    pub unhealthy_after: u32,
    pub grace: Duration,
    /// At most this many replacements per `replacement_window`.
    pub max_replacements: u32,
    pub replacement_window: Duration,
    pub max_unhealthy: usize,
    /// Failed heals of one object within `quarantine_window` that
    /// quarantine it.
    pub quarantine_after: u32,
    pub quarantine_window: Duration,
    pub reminder: Duration,
    /// How often pauses still in force are announced again.
    pub pause_reminder: Duration,
    pub approve: Approve,
    pub deny: Vec<DenyWindow>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            mode: Mode::Observe,
            interval: Duration::from_secs(300),
            jitter: 0.1,
            retry_interval: Duration::from_secs(30),
            listen: SocketAddr::from(([127, 0, 0, 1], 9469)),
            heal: vec![
                DriftClass::DnsRecord,
                DriftClass::InstanceMissing,
                DriftClass::InstanceImpaired,
                DriftClass::InstanceRetiring,
            ],
            unhealthy_after: 3,
            grace: Duration::from_secs(15 * 60),
            max_replacements: 1,
            replacement_window: Duration::from_secs(3600),
            max_unhealthy: 1,
            quarantine_after: 3,
            quarantine_window: Duration::from_secs(3600),
            reminder: Duration::from_secs(6 * 3600),
            pause_reminder: Duration::from_secs(24 * 3600),
            approve: Approve::Auto,
            deny: Vec::new(),
        }
    }
}

/// The classes a watcher can heal; the others are never healed.
pub const HEALABLE: &[DriftClass] =
    &[DriftClass::DnsRecord, DriftClass::InstanceMissing, DriftClass::InstanceImpaired, DriftClass::InstanceRetiring];

/// `"1/60m"`: a count and a window.
pub fn parse_budget(s: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`max_replacements` is written COUNT/WINDOW, such as \"1/60m\", not `{s}`");
    let (n, w) = s.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let w = humantime::parse_duration(w.trim()).map_err(|_| bad())?;
    if w.is_zero() {
        return Err(bad());
    }
    Ok((n, w))
}

pub fn parse_class(s: &str) -> Option<DriftClass> {
    DriftClass::ALL.into_iter().find(|c| c.as_str() == s)
}

impl WatchSettings {
    /// The settings of a `watch` block (the defaults without one).
    pub fn from_block(block: Option<&BlockDecl>) -> Result<WatchSettings, Diagnostics> {
        let mut s = WatchSettings::default();
        let Some(block) = block else { return Ok(s) };
        let mut diags = Diagnostics::new();
        for a in block.body.attrs.values() {
            if !ATTRS.contains(&a.name.as_str()) {
                let mut d = Diagnostic::error(format!("unsupported argument `{}` in the `watch` block", a.name)).at(a.key_span.clone());
                if let Some(h) = suggest(&a.name, ATTRS.iter().copied()) {
                    d = d.hint(format!("did you mean `{h}`?"));
                }
                diags.push(d);
                continue;
            }
            if let Err(d) = s.set(a) {
                diags.push(d);
            }
        }
        for b in &block.body.blocks {
            match b.kind.as_str() {
                "deny_window" => match deny_window(b) {
                    Ok(w) => s.deny.push(w),
                    Err(d) => diags.extend(d),
                },
                k if SINK_BLOCKS.contains(&k) => diags.push(
                    Diagnostic::error(format!("a `{k}` block goes at the top level of the configuration, beside `watch`, not inside it"))
                        .at(b.span.clone()),
                ),
                other => {
                    let known = ["deny_window"].into_iter();
                    let mut d = Diagnostic::error(format!("unsupported block `{other}` in the `watch` block")).at(b.span.clone());
                    if let Some(h) = suggest(other, known) {
                        d = d.hint(format!("did you mean `{h}`?"));
                    }
                    diags.push(d);
                }
            }
        }
        if diags.has_errors() { Err(diags) } else { Ok(s) }
    }

    fn set(&mut self, a: &AttrDecl) -> Result<(), Diagnostic> {
        let at = || a.expr.span();
        let value = crate::config::eval::constant(&a.expr)?;
        let text = |what: &str| match &value {
            Value::String(t) => Ok(t.clone()),
            v => Err(Diagnostic::error(format!("`{}` must be {what}, not {}", a.name, v.type_name())).at(at())),
        };
        let duration = || {
            let t = text("a duration such as \"5m\"")?;
            humantime::parse_duration(&t)
                .map_err(|e| Diagnostic::error(format!("`{}`: `{t}` is not a duration ({e})", a.name)).at(at()))
        };
        let count = || match &value {
            Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n <= u32::MAX as f64 => Ok(*n as u32),
            Value::Number(n) => Err(Diagnostic::error(format!("`{}` must be a whole number of at least 0, not {n}", a.name)).at(at())),
            v => Err(Diagnostic::error(format!("`{}` must be a whole number, not {}", a.name, v.type_name())).at(at())),
        };
        match a.name.as_str() {
            "mode" => self.mode = text("\"observe\" or \"heal\"")?.parse().map_err(|e: String| Diagnostic::error(e).at(at()))?,
            "interval" => {
                self.interval = duration()?;
                if self.interval < Duration::from_secs(1) {
                    return Err(Diagnostic::error("`interval` must be at least 1s").at(at()));
                }
            }
            "retry_interval" => {
                self.retry_interval = duration()?;
                if self.retry_interval.is_zero() {
                    return Err(Diagnostic::error("`retry_interval` must be more than 0s").at(at()));
                }
            }
            "listen" => {
                let t = text("an address such as \"127.0.0.1:9469\"")?;
                self.listen = t.parse().map_err(|_| {
                    Diagnostic::error(format!("`listen`: `{t}` is not an address with a port, such as \"127.0.0.1:9469\"")).at(at())
                })?;
            }
            "heal" => {
                let items = match &value {
                    Value::List(l) | Value::Set(l) => l.clone(),
                    v => return Err(Diagnostic::error(format!("`heal` must be a list of classes, not {}", v.type_name())).at(at())),
                };
                let mut classes = Vec::new();
                for item in items {
                    let Value::String(name) = &item else {
                        return Err(Diagnostic::error("`heal` must list class names as strings").at(at()));
                    };
                    match parse_class(name) {
                        Some(c) if HEALABLE.contains(&c) => classes.push(c),
                        Some(c) => {
                            return Err(Diagnostic::error(format!("`{}` is never healed: berth only reports it", c.as_str())).at(at()));
                        }
                        None => {
                            let mut d = Diagnostic::error(format!("`heal`: no drift class `{name}`")).at(at());
                            if let Some(h) = suggest(name, HEALABLE.iter().map(|c| c.as_str())) {
                                d = d.hint(format!("did you mean `{h}`?"));
                            }
                            return Err(d);
                        }
                    }
                }
                self.heal = classes;
            }
            "unhealthy_after" => {
                self.unhealthy_after = count()?;
                if self.unhealthy_after == 0 {
                    return Err(Diagnostic::error("`unhealthy_after` must be at least 1").at(at()));
                }
            }
            "grace" => self.grace = duration()?,
            "max_replacements" => {
                let t = text("COUNT/WINDOW, such as \"1/60m\"")?;
                (self.max_replacements, self.replacement_window) = parse_budget(&t).map_err(|e| Diagnostic::error(e).at(at()))?;
            }
            "max_unhealthy" => self.max_unhealthy = count()? as usize,
            "quarantine_after" => {
                self.quarantine_after = count()?;
                if self.quarantine_after == 0 {
                    return Err(Diagnostic::error("`quarantine_after` must be at least 1").at(at()));
                }
            }
            "reminder" => {
                self.reminder = duration()?;
                if self.reminder.is_zero() {
                    return Err(Diagnostic::error("`reminder` must be more than 0s").at(at()));
                }
            }
            "approve" => {
                self.approve = match text("\"auto\" or \"manual\"")?.as_str() {
                    "auto" => Approve::Auto,
                    "manual" => Approve::Manual,
                    other => {
                        return Err(Diagnostic::error(format!("`approve` must be \"auto\" or \"manual\", not `{other}`")).at(at()));
                    }
                }
            }
            _ => unreachable!("checked against ATTRS"),
        }
        Ok(())
    }

    /// The wait before the next cycle: `interval` ±`jitter`, or after
    /// `errors` failed cycles in a row, `retry_interval` doubled per
    /// further error, never longer than `interval`. `unit` is a number in
    /// [0, 1) (random in the loop, fixed in tests).
    pub fn next_wait(&self, errors: u32, unit: f64) -> Duration {
        if errors > 0 {
            let factor = 2f64.powi(errors.saturating_sub(1).min(30) as i32);
            return self.retry_interval.mul_f64(factor).min(self.interval);
        }
        let spread = self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        self.interval.mul_f64(1.0 + spread)
    }
}

fn deny_window(b: &BlockDecl) -> Result<DenyWindow, Diagnostics> {
    let mut diags = Diagnostics::new();
    for a in b.body.attrs.values() {
        if !["cron", "duration", "time_zone"].contains(&a.name.as_str()) {
            diags.push(Diagnostic::error(format!("unsupported argument `{}` in a `deny_window` block", a.name)).at(a.key_span.clone()));
        }
    }
    let text = |name: &str| -> Result<Option<(String, &AttrDecl)>, Diagnostic> {
        let Some(a) = b.body.attrs.get(name) else { return Ok(None) };
        match crate::config::eval::constant(&a.expr)? {
            Value::String(s) => Ok(Some((s, a))),
            v => Err(Diagnostic::error(format!("`{name}` must be a string, not {}", v.type_name())).at(a.expr.span())),
        }
    };
    let mut get = |name: &str| match text(name) {
        Ok(v) => v,
        Err(d) => {
            diags.push(d);
            None
        }
    };
    let cron = get("cron");
    let duration = get("duration");
    let tz = get("time_zone");
    if cron.is_none() || duration.is_none() {
        diags.push(Diagnostic::error("a `deny_window` needs `cron` and `duration`").at(b.span.clone()));
    }
    let mut window = None;
    if let (Some((pattern, ca)), Some((d, da))) = (cron, duration) {
        let parsed = croner::Cron::from_str(&pattern)
            .map_err(|e| Diagnostic::error(format!("`cron`: `{pattern}` is not a cron pattern ({e})")).at(ca.expr.span()));
        let dur = humantime::parse_duration(&d)
            .map_err(|e| Diagnostic::error(format!("`duration`: `{d}` is not a duration ({e})")).at(da.expr.span()));
        let zone = match &tz {
            None => Ok(chrono_tz::UTC),
            Some((z, za)) => z
                .parse::<chrono_tz::Tz>()
                .map_err(|_| Diagnostic::error(format!("`time_zone`: `{z}` is not a time zone such as \"Europe/Berlin\"")).at(za.expr.span())),
        };
        match (parsed, dur, zone) {
            (Ok(cron), Ok(duration), Ok(time_zone)) => window = Some(DenyWindow { cron, pattern, duration, time_zone }),
            (c, d, z) => {
                for e in [c.err(), d.err(), z.err()].into_iter().flatten() {
                    diags.push(e);
                }
            }
        }
    }
    match window {
        Some(w) if !diags.has_errors() => Ok(w),
        _ => Err(diags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hcl: &str) -> Result<WatchSettings, Diagnostics> {
        let config = crate::config::load_str("main.hcl", &format!("{hcl}\nvariable \"x\" {{ default = 1 }}\n")).expect("loads");
        WatchSettings::from_block(config.root().watch.as_ref())
    }

    #[test]
    fn defaults_without_a_block() {
        let s = settings("").unwrap();
        assert_eq!(s.mode, Mode::Observe);
        assert_eq!(s.interval, Duration::from_secs(300));
        assert_eq!(s.listen.to_string(), "127.0.0.1:9469");
        assert_eq!((s.unhealthy_after, s.max_replacements, s.max_unhealthy), (3, 1, 1));
    }

    #[test]
    fn a_sink_block_inside_watch_is_pointed_to_the_top_level() {
        let e = settings("watch {\n  notify \"slack\" {}\n}").unwrap_err().to_string();
        assert!(e.contains("a `notify` block goes at the top level"), "{e}");
        assert!(e.contains("main.hcl:2"), "{e}");
    }

    #[test]
    fn a_block_sets_everything() {
        let s = settings(
            r#"watch {
  mode = "heal"
  interval = "1m"
  max_replacements = "2/30m"
  heal = ["dns_record"]
  approve = "manual"
  deny_window {
    cron = "0 9 * * 1-5"
    duration = "8h"
    time_zone = "Europe/Berlin"
  }
}"#,
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Heal);
        assert_eq!(s.interval, Duration::from_secs(60));
        assert_eq!((s.max_replacements, s.replacement_window), (2, Duration::from_secs(1800)));
        assert_eq!(s.heal, vec![DriftClass::DnsRecord]);
        assert_eq!(s.approve, Approve::Manual);
        let w = &s.deny[0];
        // Monday 2026-11-30 10:00 in Berlin is 09:00 UTC: inside; 18:00 UTC is outside.
        let t = |h| chrono::DateTime::parse_from_rfc3339(&format!("2026-11-30T{h:02}:00:00Z")).unwrap().to_utc();
        assert!(w.contains(t(9)));
        assert!(!w.contains(t(17)));
        assert!(!w.contains(t(7)));
    }

    #[test]
    fn bad_values_point_at_their_place() {
        let e = settings("watch {\n  mode = \"fix\"\n}").unwrap_err().to_string();
        assert!(e.contains("`mode` must be") && e.contains("main.hcl:2:"), "{e}");
        let e = settings("watch {\n  intervall = \"1m\"\n}").unwrap_err().to_string();
        assert!(e.contains("did you mean `interval`"), "{e}");
        let e = settings("watch {\n  max_replacements = \"lots\"\n}").unwrap_err().to_string();
        assert!(e.contains("COUNT/WINDOW"), "{e}");
        let e = settings("watch {\n  heal = [\"attr_drift\"]\n}").unwrap_err().to_string();
        assert!(e.contains("never healed"), "{e}");
        let e = settings("watch {\n  deny_window {\n    cron = \"not cron\"\n    duration = \"1h\"\n  }\n}").unwrap_err().to_string();
        assert!(e.contains("not a cron pattern") && e.contains("main.hcl:3:"), "{e}");
        let e = settings("watch {\n  listen = \"localhost\"\n}").unwrap_err().to_string();
        assert!(e.contains("not an address"), "{e}");
    }

    #[test]
    fn waits_jitter_and_back_off() {
        let s = WatchSettings { interval: Duration::from_secs(100), retry_interval: Duration::from_secs(10), ..Default::default() };
        assert_eq!(s.next_wait(0, 0.0), Duration::from_secs(90));
        assert_eq!(s.next_wait(0, 0.5), Duration::from_secs(100));
        assert!(s.next_wait(0, 0.999) <= Duration::from_secs(110));
        assert_eq!(s.next_wait(1, 0.3), Duration::from_secs(10));
        assert_eq!(s.next_wait(3, 0.3), Duration::from_secs(40));
        assert_eq!(s.next_wait(9, 0.3), Duration::from_secs(100), "capped at the interval");
    }
}
