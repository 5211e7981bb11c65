//! A PromQL engine over annals databases, answering as Prometheus 2.42 does.
#![deny(missing_docs)]

pub mod functions;
pub mod parser;
pub mod value;
