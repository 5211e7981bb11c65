//! Progress of long operations (WAL replay, compaction) as `tracing` events.
//!
//! Every [`INTERVAL`] while such an operation runs, it emits one `DEBUG` event with target
//! [`TARGET`] (`"annals::progress"`) and the fields `op` (`"replay"`, `"compaction"`),
//! `done` and `total` (in `unit`s; `total` 0 when unknown), `unit`, `samples` (so far) and
//! `elapsed_ms`; an operation shorter than the interval emits none. The library installs no
//! subscriber: an embedding program sees these events through its own, for example with
//! `tracing_subscriber`'s filter `annals::progress=debug` (the `annals` CLI draws them as a
//! status line on a terminal).

use std::time::{Duration, Instant};

/// The `tracing` target of progress events.
pub(crate) const TARGET: &str = "annals::progress";

/// How often a running operation reports.
pub(crate) const INTERVAL: Duration = Duration::from_millis(500);

/// The progress of one operation: says when the next report is due.
#[derive(Debug)]
pub(crate) struct Progress {
    op: &'static str,
    unit: &'static str,
    started: Instant,
    next: Instant,
}

impl Progress {
    pub(crate) fn new(op: &'static str, unit: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            op,
            unit,
            started: now,
            next: now + INTERVAL,
        }
    }

    /// Reports `done` of `total` (0: unknown) if the interval has passed since the last
    /// report. Cheap enough to call per series or per record batch (one clock read).
    pub(crate) fn tick(&mut self, done: u64, total: u64, samples: u64) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + INTERVAL;
        tracing::debug!(
            target: TARGET,
            op = self.op,
            done,
            total,
            unit = self.unit,
            samples,
            elapsed_ms = now.duration_since(self.started).as_millis() as u64,
            "progress"
        );
    }
}
