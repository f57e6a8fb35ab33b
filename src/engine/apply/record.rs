//! Recording: from what the providers answered to the state and its journal.
//!
//! Every change the apply makes to the state goes through a [`Recorder`],
//! which turns it into journal entries and hands them to the backend in the
//! batches the walk forms, so the rules of the journal live in one place:
//! a run's first append starts with its `Begin` entry; a create is appended
//! as pending before it starts; a batch of results is appended before
//! anything that depends on them starts; the final state is written once, at
//! the end. Whether an append is forced to disk is the caller's to say (what
//! concerns objects outside berth is; see [`Backend::append_local`]).

use crate::addr::Mode;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::engine::order::deps_of;
use crate::plan::{Action, Plan, ResourceChange};
use crate::state::{Backend, Drain, JournalEntry, OutputState, ResourceState, State};
use crate::value::Value;
use std::collections::BTreeMap;

/// The state of an apply as it goes, and the journal it keeps.
pub(super) struct Recorder<'a> {
    pub state: State,
    backend: &'a dyn Backend,
    begin: JournalEntry,
    begun: bool,
}

/// The key a create-before-destroy replacement keeps the old object under
/// while it is deposed.
pub(super) fn deposed_key(c: &ResourceChange) -> String {
    format!("g{}", c.generation)
}

impl<'a> Recorder<'a> {
    /// Starts recording the apply of `plan` onto `state` (the state the plan
    /// was made from): records the data sources as the plan read them, and
    /// drops those no longer in the configuration.
    pub async fn start(
        plan: &Plan,
        config: &Config,
        mut state: State,
        state_exists: bool,
        backend: &'a dyn Backend,
    ) -> Result<Recorder<'a>, Diagnostic> {
        let mut entries = Vec::new();
        for d in plan.data.iter().filter(|_| !plan.destroy) {
            let Some(v) = &d.value else { continue };
            let (bare, _) = v.clone().into_unmarked();
            let rs = ResourceState {
                addr: d.addr.clone(),
                deposed: None,
                provider: d.provider.clone(),
                attributes: bare,
                sensitive: v.sensitive_paths(),
                dependencies: deps_of(plan, &d.addr.resource).cloned().collect(),
                tainted: false,
                create_before_destroy: false,
                generation: 0,
                imported: false,
                drain: None,
            };
            if state.get(&d.addr) != Some(&rs) {
                entries.push(JournalEntry::Put(Box::new(rs.clone())));
                state.put(rs);
            }
        }
        // Objects the plan imports come into the state first, marked
        // imported: their changes (taking berth's marks) work on them.
        for c in plan.changes.iter().filter(|c| c.import.is_some() && c.deposed.is_none()) {
            let Some(before) = &c.before else { continue };
            if state.get(&c.addr).is_some() {
                continue;
            }
            let rs = ResourceState {
                addr: c.addr.clone(),
                deposed: None,
                provider: c.provider.clone(),
                attributes: before.clone().into_unmarked().0,
                sensitive: before.sensitive_paths(),
                dependencies: deps_of(plan, &c.addr.resource).cloned().collect(),
                tainted: false,
                create_before_destroy: c.create_before_destroy,
                generation: c.generation,
                imported: true,
                drain: None,
            };
            entries.push(JournalEntry::Put(Box::new(rs.clone())));
            state.put(rs);
        }
        let stale_data: Vec<_> = state
            .resources
            .keys()
            .filter(|(a, _)| a.resource.mode == Mode::Data && (plan.destroy || config.resource(&a.resource).is_none()))
            .cloned()
            .collect();
        for k in stale_data {
            state.remove(&k);
            entries.push(JournalEntry::Remove { addr: k.0, deposed: None });
        }
        if !state_exists {
            state.lineage = plan.lineage.clone();
        }
        let begin = JournalEntry::Begin { lineage: state.lineage.clone(), serial: state.serial };
        let mut rec = Recorder { state, backend, begin, begun: false };
        if !entries.is_empty() {
            rec.append(entries, true).await?;
        }
        Ok(rec)
    }

    /// Appends a batch, forced to disk when `durable`. The run's first
    /// append starts with its `Begin` entry, even when the batch is empty.
    pub async fn append(&mut self, mut entries: Vec<JournalEntry>, durable: bool) -> Result<(), Diagnostic> {
        if !self.begun {
            entries.insert(0, self.begin.clone());
            self.begun = true;
        }
        let appended = if durable { self.backend.append(&entries).await } else { self.backend.append_local(&entries).await };
        appended.map_err(Diagnostic::from)
    }

    /// Notes the creates of a batch about to start as pending (write-ahead:
    /// the caller appends `entries` before the creates start).
    pub fn pending(&mut self, entries: &[JournalEntry]) {
        for e in entries {
            if let JournalEntry::Pending(p) = e {
                self.state.pending.insert(p.addr.clone(), p.clone());
            }
        }
    }

    /// A destroy went through: the object leaves the state.
    pub fn destroyed(&mut self, c: &ResourceChange, out: &mut Vec<JournalEntry>) {
        let deposed = if c.action == Action::CreateThenDelete { Some(deposed_key(c)) } else { c.deposed.clone() };
        self.state.remove(&(c.addr.clone(), deposed.clone()));
        out.push(JournalEntry::Remove { addr: c.addr.clone(), deposed });
    }

    /// A create or update answered with the object's state, `marked` with
    /// its sensitive paths: also when it failed half-way (`failed`).
    pub fn object(&mut self, plan: &Plan, c: &ResourceChange, marked: &Value, failed: bool, out: &mut Vec<JournalEntry>) {
        if c.action == Action::CreateThenDelete
            && let Some(mut old) = self.state.get(&c.addr).cloned()
        {
            // The old object stays, deposed, until its dependents have
            // switched and its drain is over.
            old.deposed = Some(deposed_key(c));
            old.drain = c.drain_ms.map(|ms| Drain { ms, until: None });
            out.push(JournalEntry::Put(Box::new(old.clone())));
            self.state.put(old);
        }
        let (bare, _) = marked.clone().into_unmarked();
        let rs = ResourceState {
            addr: c.addr.clone(),
            deposed: None,
            provider: c.provider.clone(),
            attributes: bare,
            sensitive: marked.sensitive_paths(),
            dependencies: deps_of(plan, &c.addr.resource).cloned().collect(),
            // Only a create that failed half-way taints: a failed
            // update leaves the object as it is, to be updated again.
            tainted: failed && c.action.creates(),
            create_before_destroy: c.create_before_destroy,
            generation: if c.action.creates() { c.generation + 1 } else { c.generation },
            // An update that went through wrote berth's ownership marks on
            // an imported object (the provider did, before the update).
            imported: failed && self.state.get(&c.addr).is_some_and(|r| r.imported) && !c.action.creates(),
            drain: None,
        };
        out.push(JournalEntry::Put(Box::new(rs.clone())));
        self.state.put(rs);
    }

    /// A create made nothing: it is no longer pending.
    pub fn nothing_created(&mut self, c: &ResourceChange, out: &mut Vec<JournalEntry>) {
        self.state.pending.remove(&c.addr);
        if self.state.get(&c.addr).is_none() {
            out.push(JournalEntry::Remove { addr: c.addr.clone(), deposed: None });
        }
    }

    /// Before the destroy of an old object: the rest of its drain, in
    /// milliseconds at `now` (since the Unix epoch), when some is left.
    /// A drain that starts now gets its end recorded (in `out`, which the
    /// caller appends before waiting), so a killed run resumes it.
    pub fn start_drain(&mut self, c: &ResourceChange, now: u64, out: &mut Vec<JournalEntry>) -> Option<u64> {
        let deposed = match c.action {
            Action::CreateThenDelete => deposed_key(c),
            _ => c.deposed.clone()?,
        };
        let old = self.state.resources.get_mut(&(c.addr.clone(), Some(deposed)))?;
        let drain = old.drain.or_else(|| c.drain_ms.map(|ms| Drain { ms, until: None }))?;
        let left = drain.remaining(now);
        if left == 0 {
            return None;
        }
        if drain.until.is_none() {
            old.drain = Some(Drain { ms: drain.ms, until: Some(now.saturating_add(drain.ms)) });
            out.push(JournalEntry::Put(Box::new(old.clone())));
        }
        Some(left)
    }

    /// A created object failed its health gate: it stays, tainted.
    pub fn taint(&mut self, c: &ResourceChange, out: &mut Vec<JournalEntry>) {
        if let Some(mut r) = self.state.get(&c.addr).cloned() {
            r.tainted = true;
            out.push(JournalEntry::Put(Box::new(r.clone())));
            self.state.put(r);
        }
    }

    /// Ends the run: journals the outputs (when the run journaled anything),
    /// then writes the whole state once.
    pub async fn finish(mut self, outputs: BTreeMap<String, OutputState>) -> Result<State, Diagnostic> {
        self.state.outputs = outputs;
        if self.begun {
            let entries = vec![JournalEntry::Outputs { outputs: self.state.outputs.clone() }];
            self.backend.append(&entries).await.map_err(Diagnostic::from)?;
        }
        self.state.serial += 1;
        self.backend.write(&self.state).await.map_err(Diagnostic::from)?;
        Ok(self.state)
    }
}
