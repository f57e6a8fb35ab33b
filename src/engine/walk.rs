//! A generic, bounded, cancellable walk of a dependency graph.
//!
//! The apply needs three things of its walk that have nothing to do with
//! resources: a node starts only once every node it depends on is done; a
//! failed node skips everything downstream of it while the rest of the graph
//! completes; and a cancellation lets the work in flight finish but starts
//! nothing new. This module owns exactly that, so the rules live once and can
//! be tested on a bare graph. It knows nothing of what a node is: the caller
//! supplies a [`Visitor`], which starts the nodes that became ready (in one
//! call, so it can batch them) and hears the results of the work it spawned
//! (in one call per burst of results, so it can record them together before
//! their dependents start).
//!
//! Work runs on tokio tasks. [`Work::spawn_bounded`] holds one permit of a
//! semaphore of `parallelism` permits while its task runs; [`Work::spawn`]
//! and [`Work::send`] are not bounded (a health check waiting on a host does
//! not load the provider). Every task promises a number of messages, and the
//! walk waits until every promised message has arrived.

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::graph::{DiGraph, NodeIndex};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// What became of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its dependents may start.
    Done,
    /// Everything downstream of it is skipped.
    Failed,
}

/// The caller's side of a walk.
pub trait Visitor {
    /// What the work spawned for nodes reports back.
    type Msg: Send + 'static;
    type Error;

    /// Starts the nodes that became ready together (never called once the
    /// walk is cancelled). Nodes it settles at once are returned with their
    /// outcome; the others must be settled by a later [`finish`](Visitor::finish).
    fn start(
        &mut self,
        ready: Vec<NodeIndex>,
        work: &mut Work<Self::Msg>,
    ) -> impl Future<Output = Result<Vec<(NodeIndex, Outcome)>, Self::Error>>;

    /// Hears the messages that arrived together; returns the nodes they settle.
    fn finish(
        &mut self,
        msgs: Vec<Self::Msg>,
        work: &mut Work<Self::Msg>,
    ) -> impl Future<Output = Result<Vec<(NodeIndex, Outcome)>, Self::Error>>;

    /// The walk was cancelled: nothing new starts, and `in_flight` promised
    /// messages are still awaited.
    fn cancelled(&mut self, in_flight: usize);
}

/// Where a visitor starts work. Each task promises how many messages it will
/// send; the walk ends only when every promised message has arrived.
pub struct Work<M> {
    tx: mpsc::UnboundedSender<M>,
    sem: Arc<Semaphore>,
    in_flight: usize,
}

impl<M: Send + 'static> Work<M> {
    /// Runs a task under the walk's parallelism bound.
    pub fn spawn_bounded<Fut>(&mut self, messages: usize, task: impl FnOnce(mpsc::UnboundedSender<M>) -> Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.in_flight += messages;
        let fut = task(self.tx.clone());
        let sem = self.sem.clone();
        tokio::spawn(async move {
            // The semaphore is never closed, so this cannot fail.
            let _permit = sem.acquire_owned().await;
            fut.await;
        });
    }

    /// Runs a task outside the parallelism bound.
    pub fn spawn<Fut>(&mut self, messages: usize, task: impl FnOnce(mpsc::UnboundedSender<M>) -> Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.in_flight += messages;
        tokio::spawn(task(self.tx.clone()));
    }

    /// Delivers a message to the next [`Visitor::finish`] without any task.
    pub fn send(&mut self, msg: M) {
        self.in_flight += 1;
        // The walk holds the receiver for as long as this exists.
        let _ = self.tx.send(msg);
    }

    /// Promised messages not yet handed to the visitor.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// How a walk ended.
#[derive(Debug, Default)]
pub struct Walked {
    /// Nodes the visitor reported failed, in that order.
    pub failed: Vec<NodeIndex>,
    /// Nodes never started: downstream of a failure, or (after a
    /// cancellation) not started before it.
    pub skipped: Vec<NodeIndex>,
    pub cancelled: bool,
}

struct Ledger<'g, N> {
    g: &'g DiGraph<N, ()>,
    indeg: Vec<usize>,
    ready: Vec<NodeIndex>,
    blocked: Vec<bool>,
    walked: Walked,
}

impl<N> Ledger<'_, N> {
    fn settle(&mut self, outcomes: Vec<(NodeIndex, Outcome)>) {
        for (n, outcome) in outcomes {
            match outcome {
                Outcome::Done => {
                    for m in self.g.neighbors_directed(n, Outgoing) {
                        let d = &mut self.indeg[m.index()];
                        *d = d.saturating_sub(1);
                        if *d == 0 && !self.blocked[m.index()] {
                            self.ready.push(m);
                        }
                    }
                }
                Outcome::Failed => {
                    self.walked.failed.push(n);
                    self.blocked[n.index()] = true;
                    let mut stack: Vec<NodeIndex> = self.g.neighbors_directed(n, Outgoing).collect();
                    while let Some(m) = stack.pop() {
                        if self.blocked[m.index()] {
                            continue;
                        }
                        self.blocked[m.index()] = true;
                        self.walked.skipped.push(m);
                        stack.extend(self.g.neighbors_directed(m, Outgoing));
                    }
                }
            }
        }
    }
}

/// Walks `g` (edges point from a node to what depends on it) with at most
/// `parallelism` bounded tasks at once, until every node is settled or
/// skipped, or `cancel` fires and the work in flight has reported. A
/// visitor's error ends the walk at once (tasks in flight are left to finish
/// on their own).
pub async fn walk<N, V: Visitor>(
    g: &DiGraph<N, ()>,
    parallelism: usize,
    cancel: &CancellationToken,
    visitor: &mut V,
) -> Result<Walked, V::Error> {
    let indeg: Vec<usize> = g.node_indices().map(|n| g.neighbors_directed(n, Incoming).count()).collect();
    let ready = g.node_indices().filter(|n| indeg[n.index()] == 0).collect();
    let mut ledger = Ledger { g, indeg, ready, blocked: vec![false; g.node_count()], walked: Walked::default() };
    let mut visited = vec![false; g.node_count()];
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut work = Work { tx, sem: Arc::new(Semaphore::new(parallelism.max(1))), in_flight: 0 };
    let mut cancelled = false;
    loop {
        if !cancelled && cancel.is_cancelled() {
            cancelled = true;
            visitor.cancelled(work.in_flight);
        }
        if !cancelled && !ledger.ready.is_empty() {
            let batch = std::mem::take(&mut ledger.ready);
            for n in &batch {
                visited[n.index()] = true;
            }
            let settled = visitor.start(batch, &mut work).await?;
            ledger.settle(settled);
        }
        if work.in_flight == 0 && (ledger.ready.is_empty() || cancelled) {
            break;
        }
        if work.in_flight == 0 {
            continue;
        }
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                visitor.cancelled(work.in_flight);
                continue;
            }
        };
        // `work` holds a sender, so the channel never closes under the walk.
        let Some(first) = first else { break };
        let mut msgs = vec![first];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        work.in_flight = work.in_flight.saturating_sub(msgs.len());
        let settled = visitor.finish(msgs, &mut work).await?;
        ledger.settle(settled);
    }
    let mut walked = ledger.walked;
    if cancelled {
        walked.cancelled = true;
        walked.skipped.extend(g.node_indices().filter(|n| !ledger.blocked[n.index()] && !visited[n.index()]));
    }
    Ok(walked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// Each node sleeps its weight in milliseconds, then succeeds unless it is in `fail`.
    struct Sleeper<'g> {
        g: &'g DiGraph<u64, ()>,
        fail: BTreeSet<usize>,
        order: Vec<usize>,
        running: Arc<std::sync::atomic::AtomicUsize>,
        peak: Arc<std::sync::atomic::AtomicUsize>,
        cancel_after: Option<(usize, CancellationToken)>,
        cancels: Vec<usize>,
    }

    impl Visitor for Sleeper<'_> {
        type Msg = (NodeIndex, bool);
        type Error = String;

        async fn start(&mut self, ready: Vec<NodeIndex>, work: &mut Work<Self::Msg>) -> Result<Vec<(NodeIndex, Outcome)>, String> {
            for n in ready {
                self.order.push(n.index());
                let ms = self.g[n];
                let ok = !self.fail.contains(&n.index());
                let (running, peak) = (self.running.clone(), self.peak.clone());
                work.spawn_bounded(1, move |tx| async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    running.fetch_sub(1, SeqCst);
                    let _ = tx.send((n, ok));
                });
            }
            Ok(Vec::new())
        }

        async fn finish(&mut self, msgs: Vec<Self::Msg>, _: &mut Work<Self::Msg>) -> Result<Vec<(NodeIndex, Outcome)>, String> {
            if let Some((after, token)) = &self.cancel_after
                && self.order.len() >= *after
            {
                token.cancel();
            }
            Ok(msgs.into_iter().map(|(n, ok)| (n, if ok { Outcome::Done } else { Outcome::Failed })).collect())
        }

        fn cancelled(&mut self, in_flight: usize) {
            self.cancels.push(in_flight);
        }
    }

    fn sleeper(g: &DiGraph<u64, ()>) -> Sleeper<'_> {
        Sleeper {
            g,
            fail: BTreeSet::new(),
            order: Vec::new(),
            running: Default::default(),
            peak: Default::default(),
            cancel_after: None,
            cancels: Vec::new(),
        }
    }

    /// a → b → c, a → d; e alone.
    fn graph() -> DiGraph<u64, ()> {
        let mut g = DiGraph::new();
        let [a, b, c, d, e] = [5, 5, 5, 5, 5].map(|w| g.add_node(w));
        g.extend_with_edges([(a, b), (b, c), (a, d)]);
        let _ = e;
        g
    }

    #[tokio::test]
    async fn dependencies_first_and_every_node_once() {
        let g = graph();
        let mut v = sleeper(&g);
        let walked = walk(&g, 10, &CancellationToken::new(), &mut v).await.unwrap();
        assert!(walked.failed.is_empty() && walked.skipped.is_empty() && !walked.cancelled);
        let pos = |n: usize| v.order.iter().position(|&x| x == n).unwrap();
        assert_eq!(v.order.len(), 5);
        assert!(pos(0) < pos(1) && pos(1) < pos(2) && pos(0) < pos(3));
    }

    #[tokio::test]
    async fn a_failure_skips_only_its_descendants() {
        let g = graph();
        let mut v = sleeper(&g);
        v.fail.insert(1);
        let walked = walk(&g, 10, &CancellationToken::new(), &mut v).await.unwrap();
        assert_eq!(walked.failed, vec![NodeIndex::new(1)]);
        assert_eq!(walked.skipped, vec![NodeIndex::new(2)]);
        let started: BTreeSet<usize> = v.order.iter().copied().collect();
        assert_eq!(started, BTreeSet::from([0, 1, 3, 4]), "the rest of the graph completes");
    }

    #[tokio::test]
    async fn parallelism_bounds_the_tasks_in_flight() {
        let mut g = DiGraph::new();
        for _ in 0..12 {
            g.add_node(20u64);
        }
        let mut v = sleeper(&g);
        walk(&g, 3, &CancellationToken::new(), &mut v).await.unwrap();
        assert_eq!(v.order.len(), 12);
        assert_eq!(v.peak.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn cancellation_lets_work_in_flight_finish_and_starts_nothing_new() {
        // A chain 0 → 1 → 2 → 3 beside a slow lone node 4: cancelled once two nodes have started.
        let mut g = DiGraph::new();
        let n: Vec<NodeIndex> = [5, 5, 5, 5, 200].into_iter().map(|w| g.add_node(w)).collect();
        g.extend_with_edges([(n[0], n[1]), (n[1], n[2]), (n[2], n[3])]);
        let token = CancellationToken::new();
        let mut v = sleeper(&g);
        v.cancel_after = Some((2, token.clone()));
        let walked = walk(&g, 10, &token, &mut v).await.unwrap();
        assert!(walked.cancelled);
        assert_eq!(v.cancels, vec![1], "noticed once, with the slow node still in flight");
        let mut skipped: Vec<usize> = walked.skipped.iter().map(|n| n.index()).collect();
        skipped.sort();
        assert_eq!(skipped, vec![1, 2, 3]);
        assert_eq!(v.order, vec![0, 4], "the node in flight finished; nothing else started");
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_walk_starts_nothing() {
        let g = graph();
        let token = CancellationToken::new();
        token.cancel();
        let mut v = sleeper(&g);
        let walked = walk(&g, 10, &token, &mut v).await.unwrap();
        assert!(v.order.is_empty());
        assert_eq!(walked.skipped.len(), 5);
        assert_eq!(v.cancels, vec![0]);
    }
}
