//! The errors of the CLI's commands that are not the storage engine's own.

use std::path::PathBuf;

/// Why `list` or `analyze` failed: the engine's error, or one about what was asked of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the data directory failed.
    #[error(transparent)]
    Storage(#[from] annals::Error),
    /// No block with this ULID is in the directory.
    #[error("block {id} not found in {}", dir.display())]
    BlockNotFound {
        /// The ULID asked for.
        id: String,
        /// The data directory.
        dir: PathBuf,
    },
    /// The directory holds no block.
    #[error("no blocks found in {}", dir.display())]
    NoBlocks {
        /// The data directory.
        dir: PathBuf,
    },
}

/// Result of the CLI's library functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
