//! A sink that keeps what it is given, for tests and for `berth watch
//! --once`, which prints a cycle's events when it ends.

use super::event::{CycleSummary, EventKind, Sink, WatchEvent};
use std::sync::Mutex;

#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<WatchEvent>>,
    cycles: Mutex<Vec<CycleSummary>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<WatchEvent> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The events of one kind.
    pub fn of(&self, kind: EventKind) -> Vec<WatchEvent> {
        self.events().into_iter().filter(|e| e.event == kind).collect()
    }

    pub fn cycles(&self) -> Vec<CycleSummary> {
        self.cycles.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets what it kept.
    pub fn clear(&self) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.cycles.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Sink for Recorder {
    fn event(&self, ev: &WatchEvent) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(ev.clone());
    }

    fn cycle(&self, summary: &CycleSummary) {
        self.cycles.lock().unwrap_or_else(|p| p.into_inner()).push(summary.clone());
    }
}
