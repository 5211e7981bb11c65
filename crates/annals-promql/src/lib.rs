//! A PromQL engine over annals databases that answers as Prometheus 2.42 does.
//!
//! ```
//! use annals::{Db, Labels, Options};
//! use annals_promql::{Engine, Value};
//!
//! # fn main() -> anyhow::Result<()> {
//! let db = Db::open_in_memory(Options::default())?;
//! let mut app = db.appender();
//! for i in 0..10 {
//!     let l = Labels::new([("__name__", "requests_total"), ("job", "api")])?;
//!     app.append(None, &l, i * 15_000, (i * 10) as f64)?;
//! }
//! app.commit()?;
//!
//! let engine = Engine::default();
//! let r = engine.instant(&db, "rate(requests_total[1m])", 135_000)?;
//! let Value::Vector(v) = r.value else { unreachable!() };
//! assert_eq!(v[0].labels.to_string(), r#"{job="api"}"#);
//! assert!((v[0].v - 10.0 / 15.0).abs() < 1e-9);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod engine;
mod error;
mod eval;
pub mod functions;
mod gosort;
pub mod parser;
pub mod script;
mod value;

pub use engine::{
    CancelToken, Engine, EngineOptions, QueryOptions, QueryResult, Queryable, Stats,
    MAX_POINTS_PER_SERIES,
};
pub use error::{Error, Result};
pub use value::{is_stale_nan, Point, Sample, Series, Value, STALE_NAN_BITS};
