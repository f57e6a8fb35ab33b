//! How a running apply looks on stderr: never silent for long.
//!
//! A CI log that shows nothing for two minutes while a host boots looks
//! hung, and people cancel jobs that were fine. So every operation still in
//! flight gets a "Still creating... [30s elapsed]" line at a fixed interval
//! when stderr is not a terminal (10 s by default, as Terraform does;
//! `BERTH_PROGRESS_INTERVAL` sets it in seconds, which tests use to see the
//! lines against a host that boots in a few seconds). On a terminal the same
//! operations are a live display instead (indicatif): one spinner per
//! operation in flight with its elapsed time, and the finished lines
//! scrolling above them.
//!
//! This is a view: the engine reports typed [`Event`]s through its
//! [`Progress`](crate::engine::Progress) hook and never prints; this turns
//! them into lines (the plain form is what CI logs show).

use crate::engine::{Event, Verb};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variable that sets the interval of "Still ..." lines, in seconds.
pub const INTERVAL_ENV: &str = "BERTH_PROGRESS_INTERVAL";
/// Terraform's interval, which CI users know.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The interval from [`INTERVAL_ENV`]: a positive number of seconds
/// (fractions allowed), else the default.
pub fn interval_from_env() -> Duration {
    std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_INTERVAL)
}

/// `Creating...` and friends.
fn gerund(verb: Verb) -> &'static str {
    match verb {
        Verb::Create => "Creating...",
        Verb::Update => "Modifying...",
        Verb::Destroy => "Destroying...",
        Verb::Read => "Reading...",
    }
}

fn still(verb: Verb) -> &'static str {
    match verb {
        Verb::Create => "Still creating...",
        Verb::Update => "Still modifying...",
        Verb::Destroy => "Still destroying...",
        Verb::Read => "Still reading...",
    }
}

fn done(verb: Verb) -> &'static str {
    match verb {
        Verb::Create => "Creation complete",
        Verb::Update => "Modifications complete",
        Verb::Destroy => "Destruction complete",
        Verb::Read => "Read complete",
    }
}

/// `45s`, `2m5s`: whole seconds, as Terraform prints elapsed time.
pub fn elapsed_text(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

/// One operation in flight.
struct Op {
    start: Instant,
    /// When its last line was printed (plain mode).
    noted: Instant,
    bar: Option<ProgressBar>,
}

enum Out {
    /// Lines on stderr, "Still ..." lines from the ticker thread.
    Plain(Mutex<std::io::Stderr>),
    /// The live display on a terminal.
    Live(MultiProgress),
}

struct Inner {
    ops: Mutex<BTreeMap<String, (Verb, Op)>>,
    out: Out,
    interval: Duration,
}

impl Inner {
    fn line(&self, s: &str) {
        match &self.out {
            Out::Plain(e) => {
                let mut e = e.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(e, "{s}");
                let _ = e.flush();
            }
            Out::Live(mp) => {
                let _ = mp.println(s);
            }
        }
    }

    /// Prints a "Still ..." line for every operation whose last line is an
    /// interval old.
    fn tick(&self) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
            for (step, (verb, op)) in ops.iter_mut() {
                if now.duration_since(op.noted) >= self.interval {
                    op.noted = now;
                    due.push(format!("{step}: {} [{} elapsed]", still(*verb), elapsed_text(now - op.start)));
                }
            }
        }
        for l in due {
            self.line(&l);
        }
    }
}

/// The stderr view of an apply: plain lines with periodic "Still ..."
/// lines off a terminal, a live display on one.
pub struct Display {
    inner: Arc<Inner>,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Display {
    /// The display for this process's stderr: live on a terminal, plain
    /// lines otherwise, "Still ..." lines every [`interval_from_env`].
    pub fn stderr() -> Display {
        let live = std::io::stderr().is_terminal();
        Display::new(live, interval_from_env())
    }

    /// Plain lines with "Still ..." lines every `interval`.
    pub fn plain(interval: Duration) -> Display {
        Display::new(false, interval)
    }

    fn new(live: bool, interval: Duration) -> Display {
        let out = if live {
            Out::Live(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Out::Plain(Mutex::new(std::io::stderr()))
        };
        let inner = Arc::new(Inner { ops: Mutex::new(BTreeMap::new()), out, interval });
        let (stop, ticker) = if live {
            // indicatif redraws the elapsed time itself.
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel::<()>();
            let inner2 = inner.clone();
            // Wakes often enough that each operation's lines come at its
            // own multiples of the interval, not the thread's.
            let step = (interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
            let handle = std::thread::Builder::new()
                .name("berth-progress".into())
                .spawn(move || {
                    loop {
                        match rx.recv_timeout(step) {
                            Err(RecvTimeoutError::Timeout) => inner2.tick(),
                            _ => return,
                        }
                    }
                })
                .ok();
            (Some(tx), handle)
        };
        Display { inner, stop, ticker }
    }

    /// A step was handed to its provider. `step` is how lines name it
    /// (`aws_instance.web`, `aws_instance.web (old object)`).
    fn started(&self, step: String, verb: Verb) {
        let now = Instant::now();
        let bar = match &self.inner.out {
            Out::Live(mp) => {
                let b = mp.add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                b.set_style(style);
                b.set_message(format!("{step}: {}", gerund(verb)));
                b.enable_steady_tick(Duration::from_millis(120));
                Some(b)
            }
            Out::Plain(_) => None,
        };
        if matches!(self.inner.out, Out::Plain(_)) {
            self.inner.line(&format!("{step}: {}", gerund(verb)));
        }
        self.inner
            .ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(step, (verb, Op { start: now, noted: now, bar }));
    }

    /// A step is over: it gets no more "Still ..." lines.
    fn end(&self, step: &str) {
        let op = self.inner.ops.lock().unwrap_or_else(|p| p.into_inner()).remove(step);
        if let Some(b) = op.and_then(|(_, o)| o.bar) {
            b.finish_and_clear();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Out::Live(mp) = &self.inner.out {
            let _ = mp.clear();
        }
    }
}

impl crate::engine::Progress for Display {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Refreshing { objects } => format!("Refreshing {objects} object(s)..."),
            Event::Started(step) => return self.started(step.to_string(), step.verb()),
            Event::Finished { step, id, elapsed } => {
                self.end(&step.to_string());
                let secs = elapsed.as_secs_f64();
                let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
                format!("{step}: {} after {secs:.1}s{id}", done(step.verb()))
            }
            Event::Failed { step, error } => {
                self.end(&step.to_string());
                format!("{step}: {} failed: {error}", step.verb().as_str())
            }
            Event::Warning { step, warning } => format!("{step}: warning: {warning}"),
            Event::HealthWaiting { step, url, expect_status } => {
                format!("{step}: waiting for GET {url} to answer {expect_status}")
            }
            Event::Healthy(step) => format!("{step}: healthy"),
            Event::Draining { step, ms } => {
                format!("{step}: draining for {} before it is destroyed", crate::plan::drain_text(ms))
            }
            Event::InventoryWritten { name, path } => format!("inventory `{name}`: wrote `{path}`"),
            Event::KnownHostsUpdated { path, removed } => format!("`{path}`: removed {removed} line(s) of the replaced host"),
            Event::HookStarted { event, addr } => format!("hook `{event}` for `{addr}`: running..."),
            Event::HookFinished { event, addr, elapsed } => {
                format!("hook `{event}` for `{addr}`: finished after {}", elapsed_text(elapsed))
            }
            Event::Interrupted { in_flight: 0 } => "Interrupt received: nothing new will start.".to_string(),
            Event::Interrupted { in_flight } => format!(
                "Interrupt received: waiting for {in_flight} operation(s) in flight to finish; nothing new will start."
            ),
        };
        self.inner.line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_like_terraform() {
        assert_eq!(elapsed_text(Duration::from_millis(30_900)), "30s");
        assert_eq!(elapsed_text(Duration::from_secs(125)), "2m5s");
    }

    #[test]
    fn a_slow_operation_gets_still_lines_and_a_finished_one_none() {
        let d = Display::plain(Duration::from_millis(200));
        d.started("aws_instance.web".into(), Verb::Create);
        let noted = |d: &Display| d.inner.ops.lock().unwrap()["aws_instance.web"].1.noted;
        let first = noted(&d);
        std::thread::sleep(Duration::from_millis(450));
        assert!(noted(&d) > first, "the ticker noted the operation again");
        d.end("aws_instance.web");
        assert!(d.inner.ops.lock().unwrap().is_empty());
    }
}
