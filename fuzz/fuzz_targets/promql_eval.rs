//! The evaluator on arbitrary queries over a small database: never panics, limits (max
//! samples, timeout) end a query with a typed error, and the database keeps serving.
//!
//! Input starting with byte 0 drives a generator of well-typed PromQL (selectors, range
//! functions, aggregations, binary operators with matching, subqueries, offset and @), so
//! that most runs reach the evaluator; other input is read as query text.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use annals::{Db, Labels, Options};
use annals_promql::{Engine, EngineOptions, Value};
use libfuzzer_sys::fuzz_target;

const STALE: u64 = 0x7ff0_0000_0000_0002;
const METRICS: &[&str] = &["up", "req_total", "lat_bucket", "temp", "flappy"];
const LABELS: &[&str] = &["job", "instance", "le", "code"];
const VALUES: &[&str] = &["a", "b", "0.5", "+Inf", "200", ".*", "a|b", ""];

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let db = Db::open_in_memory(Options::default()).expect("in-memory database");
        let mut app = db.appender();
        for k in 0..120i64 {
            let t = k * 15_000;
            for (i, inst) in ["a", "b", "c"].iter().enumerate() {
                let add = |app: &mut annals::Appender, l: &[(&str, &str)], v: f64| {
                    let labels = Labels::new(l.iter().copied()).expect("labels");
                    app.append(None, &labels, t, v).expect("append");
                };
                add(
                    &mut app,
                    &[("__name__", "up"), ("job", "a"), ("instance", inst)],
                    1.0,
                );
                let c = ((k % (30 + i as i64 * 7)) * (i as i64 + 1)) as f64;
                add(
                    &mut app,
                    &[
                        ("__name__", "req_total"),
                        ("job", "b"),
                        ("instance", inst),
                        ("code", "200"),
                    ],
                    c,
                );
                for (le, f) in [("0.5", 0.5), ("1", 0.8), ("+Inf", 1.0)] {
                    add(
                        &mut app,
                        &[
                            ("__name__", "lat_bucket"),
                            ("job", "a"),
                            ("instance", inst),
                            ("le", le),
                        ],
                        (k as f64 * f).floor(),
                    );
                }
                let special = match k % 9 {
                    2 => f64::NAN,
                    4 => f64::INFINITY,
                    6 => -1e308,
                    _ => (k as f64).sin(),
                };
                add(
                    &mut app,
                    &[("__name__", "temp"), ("job", "a"), ("instance", inst)],
                    special,
                );
                if (k + 10 * i as i64) % 40 < 25 {
                    add(
                        &mut app,
                        &[("__name__", "flappy"), ("instance", inst)],
                        k as f64,
                    );
                } else if (k + 10 * i as i64) % 40 == 25 {
                    add(
                        &mut app,
                        &[("__name__", "flappy"), ("instance", inst)],
                        f64::from_bits(STALE),
                    );
                }
            }
        }
        app.commit().expect("commit");
        db
    })
}

/// A tiny generator of well-typed PromQL, reading its choices from the input.
struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn pick<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.byte() as usize % xs.len()]
    }
    fn duration(&mut self) -> &'static str {
        self.pick(&["15s", "1m", "90s", "5m", "10m", "30m"])
    }
    fn modifiers(&mut self) -> String {
        match self.byte() % 8 {
            0 => format!(" offset {}", self.duration()),
            1 => format!(" offset -{}", self.duration()),
            2 => format!(" @ {}", self.byte() as u32 * 10),
            3 => " @ start()".into(),
            4 => " @ end()".into(),
            _ => String::new(),
        }
    }
    fn selector(&mut self) -> String {
        let name = self.pick(METRICS);
        let mut s = name.to_owned();
        if self.byte().is_multiple_of(2) {
            let op = self.pick(&["=", "!=", "=~", "!~"]);
            s = format!(
                "{name}{{{}{op}\"{}\"}}",
                self.pick(LABELS),
                self.pick(VALUES)
            );
        }
        s
    }
    fn grouping(&mut self) -> String {
        match self.byte() % 4 {
            0 => format!(" by ({})", self.pick(LABELS)),
            1 => format!(" without ({})", self.pick(LABELS)),
            2 => " by (__name__, job)".into(),
            _ => String::new(),
        }
    }
    fn scalar(&mut self, depth: u32) -> String {
        match self.byte() % 6 {
            0 if depth > 0 => format!("scalar({})", self.vector(depth - 1)),
            1 => "time()".into(),
            2 => self
                .pick(&["NaN", "Inf", "-Inf", "0", "-1.5", "1e300"])
                .into(),
            3 if depth > 0 => format!(
                "({} {} {})",
                self.scalar(depth - 1),
                self.pick(&["+", "-", "*", "/", "%", "^", "atan2"]),
                self.scalar(depth - 1)
            ),
            _ => format!("{}", self.byte() as f64 / 8.0),
        }
    }
    fn matrix(&mut self, depth: u32) -> String {
        if depth > 0 && self.byte().is_multiple_of(4) {
            let step = if self.byte().is_multiple_of(2) {
                self.duration()
            } else {
                ""
            };
            return format!(
                "({})[{}:{step}]{}",
                self.vector(depth - 1),
                self.duration(),
                self.modifiers()
            );
        }
        format!(
            "{}[{}]{}",
            self.selector(),
            self.duration(),
            self.modifiers()
        )
    }
    fn vector(&mut self, depth: u32) -> String {
        if depth == 0 {
            return format!("{}{}", self.selector(), self.modifiers());
        }
        let d = depth - 1;
        match self.byte() % 12 {
            0 => format!("{}{}", self.selector(), self.modifiers()),
            1 => {
                let f = self.pick(&[
                    "rate",
                    "irate",
                    "increase",
                    "delta",
                    "idelta",
                    "deriv",
                    "changes",
                    "resets",
                    "avg_over_time",
                    "min_over_time",
                    "max_over_time",
                    "sum_over_time",
                    "count_over_time",
                    "last_over_time",
                    "stddev_over_time",
                    "stdvar_over_time",
                    "present_over_time",
                    "absent_over_time",
                ]);
                format!("{f}({})", self.matrix(d))
            }
            2 => {
                let op = self.pick(&[
                    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
                ]);
                format!("{op}{} ({})", self.grouping(), self.vector(d))
            }
            3 => {
                let op = self.pick(&["topk", "bottomk", "quantile"]);
                format!(
                    "{op}{} ({}, {})",
                    self.grouping(),
                    self.scalar(d),
                    self.vector(d)
                )
            }
            4 => {
                let op = self.pick(&[
                    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or",
                    "unless", "atan2",
                ]);
                let m = match self.byte() % 6 {
                    0 => format!(" on({})", self.pick(LABELS)),
                    1 => format!(" ignoring({})", self.pick(LABELS)),
                    2 => format!(" on({}) group_left", self.pick(LABELS)),
                    3 => format!(
                        " ignoring({}) group_right({})",
                        self.pick(LABELS),
                        self.pick(LABELS)
                    ),
                    _ => String::new(),
                };
                let m = if matches!(op, "and" | "or" | "unless") && m.contains("group") {
                    String::new()
                } else {
                    m
                };
                let b = if ["==", "!=", ">", "<", ">=", "<="].contains(&op)
                    && self.byte().is_multiple_of(2)
                {
                    " bool"
                } else {
                    ""
                };
                format!("({} {op}{b}{m} {})", self.vector(d), self.vector(d))
            }
            5 => {
                let op = self.pick(&["+", "*", ">", "<", "/", "^"]);
                format!("({} {op} {})", self.vector(d), self.scalar(d))
            }
            6 => {
                let f = self.pick(&[
                    "abs",
                    "ceil",
                    "floor",
                    "exp",
                    "ln",
                    "log2",
                    "sqrt",
                    "sgn",
                    "timestamp",
                    "sort",
                    "sort_desc",
                    "absent",
                    "hour",
                    "day_of_week",
                    "acosh",
                    "atanh",
                ]);
                format!("{f}({})", self.vector(d))
            }
            7 => format!("histogram_quantile({}, {})", self.scalar(d), self.vector(d)),
            8 => format!(
                "label_replace({}, \"{}\", \"$1\", \"{}\", \"(.*)\")",
                self.vector(d),
                self.pick(LABELS),
                self.pick(LABELS)
            ),
            9 => format!(
                "clamp({}, {}, {})",
                self.vector(d),
                self.scalar(d),
                self.scalar(d)
            ),
            10 => format!(
                "count_values(\"{}\", {})",
                self.pick(LABELS),
                self.vector(d)
            ),
            _ => format!("-{}", self.vector(d)),
        }
    }
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(EngineOptions {
            max_samples: 20_000,
            timeout: Some(Duration::from_secs(2)),
            ..EngineOptions::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let query = if data.first() == Some(&0) {
        Gen { data, pos: 1 }.vector(3)
    } else {
        match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    };
    let db = db();
    let e = engine();
    for t in [0, 600_000, 1_799_999, 3_000_000] {
        let _ = e.instant(db, &query, t);
    }
    let _ = e.range(db, &query, 0, 1_800_000, 60_000);
    let _ = e.range(db, &query, -300_000, 900_000, 7_000);
    // The database still answers correctly.
    let r = e
        .instant(db, "count(up)", 600_000)
        .expect("count(up) evaluates");
    let Value::Vector(v) = r.value else {
        panic!("count(up) is a vector")
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].v, 3.0);
});
