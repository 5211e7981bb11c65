//! A one-line progress display on stderr, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws one status line on stderr at most ten times a second; does nothing when stderr is
/// not a terminal (logs, pipes, tests), so output stays clean there.
#[derive(Debug)]
pub struct ProgressLine {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl ProgressLine {
    /// A progress line, enabled if stderr is a terminal.
    pub fn stderr() -> ProgressLine {
        ProgressLine::new(std::io::stderr().is_terminal())
    }

    /// A progress line that draws only if `enabled`.
    pub fn new(enabled: bool) -> ProgressLine {
        ProgressLine {
            enabled,
            last: None,
            drawn: false,
        }
    }

    /// Whether anything is drawn.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Shows `msg` unless the line was redrawn less than 100 ms ago (`force` redraws anyway).
    pub fn update(&mut self, force: bool, msg: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let mut e = std::io::stderr().lock();
        // Carriage return and "erase line": the status stays on one line.
        let _ = write!(e, "\r\x1b[2K{}", msg());
        let _ = e.flush();
        self.drawn = true;
    }

    /// Erases the line.
    pub fn clear(&mut self) {
        if self.enabled && self.drawn {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The `tracing` target of the engine's progress events (see [`ProgressSubscriber`]).
pub const PROGRESS_TARGET: &str = "annals::progress";

/// A `tracing` subscriber that draws the engine's progress events (target
/// [`PROGRESS_TARGET`]: WAL replay, compaction) on a [`ProgressLine`], and ignores every other
/// event. The `annals` commands install it (when stderr is a terminal, or with `--progress`);
/// an embedding program would instead enable `annals::progress=debug` in its own subscriber.
#[derive(Debug)]
pub struct ProgressSubscriber {
    line: std::sync::Mutex<ProgressLine>,
}

impl ProgressSubscriber {
    /// A subscriber drawing on `line`.
    pub fn new(line: ProgressLine) -> ProgressSubscriber {
        ProgressSubscriber {
            line: std::sync::Mutex::new(line),
        }
    }

    /// Erases the line (before printing results).
    pub fn clear(&self) {
        if let Ok(mut l) = self.line.lock() {
            l.clear();
        }
    }
}

/// The fields of one progress event.
#[derive(Debug, Default)]
struct Fields {
    op: String,
    unit: String,
    done: u64,
    total: u64,
    samples: u64,
    elapsed_ms: u64,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
        match f.name() {
            "done" => self.done = v,
            "total" => self.total = v,
            "samples" => self.samples = v,
            "elapsed_ms" => self.elapsed_ms = v,
            _ => {}
        }
    }

    fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
        self.record_u64(f, u64::try_from(v).unwrap_or(0));
    }

    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        match f.name() {
            "op" => self.op = v.to_owned(),
            "unit" => self.unit = v.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl Fields {
    /// `replaying the WAL: 3/10 segments, 1200000 samples, 2.5s`.
    fn render(&self) -> String {
        let what = match self.op.as_str() {
            "replay" => "replaying the WAL",
            "compaction" => "compacting",
            "import" => "importing",
            other => other,
        };
        let of = match self.total {
            0 => format!("{} {}", self.done, self.unit),
            t => format!("{}/{t} {}", self.done, self.unit),
        };
        format!(
            "{what}: {of}, {} samples, {:.1}s",
            self.samples,
            self.elapsed_ms as f64 / 1000.0
        )
    }
}

impl tracing::Subscriber for ProgressSubscriber {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        match self.enabled(meta) {
            true => tracing::subscriber::Interest::always(),
            false => tracing::subscriber::Interest::never(),
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.target() == PROGRESS_TARGET && meta.is_event()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.op == "import" {
            return; // `annals import` draws its own progress, with the input's percentage.
        }
        if let Ok(mut line) = self.line.lock() {
            line.update(true, || f.render());
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_engine_progress_fields() {
        let f = Fields {
            op: "replay".into(),
            unit: "segments".into(),
            done: 3,
            total: 10,
            samples: 1200,
            elapsed_ms: 2500,
        };
        assert_eq!(
            f.render(),
            "replaying the WAL: 3/10 segments, 1200 samples, 2.5s"
        );
    }
}
