//! Logs again the late samples of a commit a crash cut short between its WAL and WBL
//! writes (see `head/ooo_recover.rs`).

use super::Db;
use crate::error::{Error, Result};

impl Db {
    /// Commits the late samples the WAL replay dropped and the WBL may lack: the appender
    /// stores (and logs in the WBL) only those the head does not hold. A sample the appender
    /// refuses (another value at its time, outside the window) is left out, as the replay
    /// left it out.
    pub(super) fn log_wal_late(&self) -> Result<()> {
        let late = self.inner.head.take_wal_late();
        if late.is_empty() {
            return Ok(());
        }
        let mut app = self.appender();
        for (labels, t, v) in &late {
            match app.append(None, labels, *t, *v) {
                Ok(_)
                | Err(
                    Error::DuplicateSample { .. }
                    | Error::OutOfBounds { .. }
                    | Error::OutOfOrderSample { .. },
                ) => {}
                Err(e) => return Err(e),
            }
        }
        let recovered = app.pending();
        app.commit()?;
        if recovered > 0 {
            tracing::warn!(
                samples = recovered,
                "late samples in the WAL but not in the WBL (a commit cut short) logged again"
            );
        }
        Ok(())
    }
}
