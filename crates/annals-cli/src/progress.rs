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
