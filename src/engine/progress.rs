//! The engine's hooks: what a run reports as it goes, typed.
//!
//! The engine never prints. It hands [`Event`]s to a [`Progress`] sink, and
//! a view decides how they look (the CLI writes one line each to stderr).
//! Events and reports name what they are about by [`StepRef`] — the typed
//! address, the plan's action and which half of the change — so a view, or
//! a test, never parses strings to learn what happened.

use crate::addr::InstanceAddr;
use crate::plan::Action;
use std::fmt;
use std::time::Duration;

/// What a step does to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Read,
    Destroy,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Read => "read",
            Verb::Destroy => "destroy",
        }
    }
}

/// One step of an apply, as events and reports name it: a change of the
/// plan, or one half of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRef {
    pub addr: InstanceAddr,
    /// The plan's action for the change the step belongs to.
    pub action: Action,
    /// The destroy half: a delete, or the old object of a replacement.
    pub destroy: bool,
    /// The deposed object the change destroys, when it is one.
    pub deposed: Option<String>,
}

impl StepRef {
    pub fn verb(&self) -> Verb {
        match (self.destroy, self.action) {
            (true, _) => Verb::Destroy,
            (false, Action::Update) => Verb::Update,
            (false, Action::Read) => Verb::Read,
            (false, _) => Verb::Create,
        }
    }
}

/// The address, and which object of it when that is not the current one:
/// `aws_instance.web (deposed g1)`, `aws_instance.web (old object)`.
impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.destroy, &self.deposed, self.action) {
            (true, Some(d), _) => write!(f, "{} (deposed {d})", self.addr),
            (true, None, Action::CreateThenDelete) => write!(f, "{} (old object)", self.addr),
            _ => write!(f, "{}", self.addr),
        }
    }
}

/// What a failure is about: a step, or an inventory file (by name, when the
/// inventory block got far enough to have one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Step(StepRef),
    Inventory(Option<String>),
    /// A `hook "EVENT"` run for the object at `addr`.
    Hook { event: String, addr: String },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Step(s) => s.fmt(f),
            Subject::Inventory(Some(name)) => write!(f, "inventory `{name}`"),
            Subject::Inventory(None) => f.write_str("inventory"),
            Subject::Hook { event, addr } => write!(f, "hook `{event}` for `{addr}`"),
        }
    }
}

/// Something a run did or saw, the moment it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan is about to read `objects` objects through their providers.
    Refreshing { objects: usize },
    /// A step was handed to its provider.
    Started(&'a StepRef),
    /// A step finished; `id` is the object's id when it has one to show.
    Finished { step: &'a StepRef, id: Option<&'a str>, elapsed: Duration },
    Failed { step: &'a StepRef, error: &'a str },
    /// A step succeeded with a caveat.
    Warning { step: &'a StepRef, warning: &'a str },
    /// A created object's health gate started polling.
    HealthWaiting { step: &'a StepRef, url: &'a str, expect_status: u16 },
    Healthy(&'a StepRef),
    /// The old object a destroy removes is kept `ms` milliseconds more
    /// first: clients may still use the addresses the records served.
    Draining { step: &'a StepRef, ms: u64 },
    /// An inventory file was rewritten (its content changed).
    InventoryWritten { name: &'a str, path: &'a str },
    /// The run was cancelled; `in_flight` operations are still awaited.
    Interrupted { in_flight: usize },
    /// A `known_hosts` file lost its `removed` lines for a replaced host.
    KnownHostsUpdated { path: &'a str, removed: usize },
    /// A `hook "EVENT"` started for the replaced object at `addr`.
    HookStarted { event: &'a str, addr: &'a str },
    /// It succeeded (a failure is in the report).
    HookFinished { event: &'a str, addr: &'a str, elapsed: Duration },
}

/// Where a run reports its [`Event`]s.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// A progress sink that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event<'_>) {}
}
