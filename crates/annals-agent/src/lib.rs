//! placeholder
pub mod relabel;
pub mod textparse;
