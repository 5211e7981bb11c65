//! Handlers of `/api/v1/*` that answer JSON: parameters in, one call into the engine on the
//! blocking pool, the envelope out. Behaviour follows Prometheus 2.42's `web/api/v1/api.go`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use annals::{Labels, Matcher};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::json::{self, ErrorType};
use crate::params::{self, Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::query::{QueryError, QueryOptions};
use crate::AppState;

pub(crate) type St = State<Arc<AppState>>;

/// The outcome of an API call, rendered as Prometheus's envelope.
pub(crate) enum Api {
    /// `data` as pre-rendered JSON (`None`: omitted), and warnings.
    Ok(Option<String>, Vec<String>),
    /// An error with its type.
    Err(ErrorType, String),
}

impl Api {
    pub(crate) fn ok(data: String) -> Api {
        Api::Ok(Some(data), Vec::new())
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Api {
        Api::Err(ErrorType::BadData, msg.into())
    }

    /// `invalidParamError`.
    pub(crate) fn invalid_param(err: impl std::fmt::Display, param: &str) -> Api {
        Api::bad(format!(
            "invalid parameter {}: {err}",
            params::go_quote(param)
        ))
    }

    pub(crate) fn internal(err: impl std::fmt::Display) -> Api {
        Api::Err(ErrorType::Internal, err.to_string())
    }
}

impl IntoResponse for Api {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            // A call without data (admin calls, exemplars of a query without selectors,
            // OPTIONS): Prometheus's `wrap` writes 204 and no body.
            Api::Ok(None, _) => return StatusCode::NO_CONTENT.into_response(),
            Api::Ok(data, warnings) => (StatusCode::OK, json::success(data.as_deref(), &warnings)),
            Api::Err(t, msg) => (
                StatusCode::from_u16(t.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json::error(t, &msg, &[]),
            ),
        };
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}

impl FromRequest<Arc<AppState>> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_owned);
        let is_form = matches!(*req.method(), Method::POST | Method::PUT)
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(';').next().is_some_and(|m| {
                        m.trim()
                            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    })
                });
        let body = if is_form {
            match axum::body::to_bytes(req.into_body(), state.opts.max_form_body).await {
                Ok(b) => Some(b),
                Err(e) => {
                    return Err(Api::bad(format!(
                        "error parsing form values: request body exceeds {} bytes or could not be read: {e}",
                        state.opts.max_form_body
                    ))
                    .into_response())
                }
            }
        } else {
            None
        };
        Ok(Params::parse(body.as_deref(), query.as_deref()))
    }
}

/// Runs engine work on the blocking pool; a panic there is an internal error, never a crash.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Api> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Api::internal(format!("request handler failed: {e}")))
}

/// Sets `cancel` when dropped unless disarmed: axum drops a handler's future when the client
/// goes away, and the evaluation on the blocking pool then stops at its next check.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.store(true, Ordering::Relaxed);
        }
    }
}

fn query_options(s: &AppState, p: &Params) -> Result<(QueryOptions, CancelOnDrop), Api> {
    let mut timeout = s.opts.query_timeout;
    let to = p.get("timeout");
    if !to.is_empty() {
        let ns = params::parse_duration(to).map_err(|e| Api::invalid_param(e, "timeout"))?;
        // A shorter client timeout applies; the server's stays the ceiling, as Go's
        // context.WithTimeout nests under the engine's own timeout.
        let d = std::time::Duration::from_nanos(ns.max(0) as u64);
        timeout = timeout.min(d);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    Ok((
        QueryOptions {
            deadline: Instant::now() + timeout,
            cancel: cancel.clone(),
            max_samples: s.opts.query_max_samples,
            lookback_delta: s.opts.query_lookback_delta,
            stats: !p.get("stats").is_empty(),
        },
        CancelOnDrop(Some(cancel)),
    ))
}

fn engine_unavailable() -> Api {
    Api::Err(
        ErrorType::Unavailable,
        "PromQL evaluation is not available in this build of annals serve".into(),
    )
}

fn render_evaluated(
    s: &AppState,
    started: Instant,
    r: Result<crate::Evaluated, QueryError>,
) -> Api {
    s.metrics
        .query_duration
        .observe(started.elapsed().as_secs_f64());
    match r {
        Ok(ev) => {
            s.metrics
                .queries
                .get_or_create(&result_label("success"))
                .inc();
            let mut data = String::new();
            json::write_query_data(&mut data, &ev.value, ev.stats.as_deref());
            Api::Ok(Some(data), ev.warnings)
        }
        Err(e) => {
            s.metrics
                .queries
                .get_or_create(&result_label(e.error_type().as_str()))
                .inc();
            Api::Err(e.error_type(), e.to_string())
        }
    }
}

fn result_label(r: &str) -> crate::metrics::ResultLabels {
    crate::metrics::ResultLabels {
        result: r.to_owned(),
    }
}

/// `GET|POST /api/v1/query`.
pub(crate) async fn query(State(s): St, p: Params) -> Api {
    let now = now_ms();
    let t = match params::time_param(&p, "time", now) {
        Ok(t) => t,
        Err(e) => return Api::invalid_param(e, "time"),
    };
    let (opts, guard) = match query_options(&s, &p) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let Some(engine) = s.opts.engine.clone() else {
        return engine_unavailable();
    };
    let expr = p.get("query").to_owned();
    let started = Instant::now();
    let r = blocking(move || engine.instant(&expr, t, &opts)).await;
    drop(disarm(guard));
    match r {
        // Prometheus reports an instant query that does not parse as an invalid parameter
        // (`NewInstantQuery` fails before evaluation); a range query's parse error unwrapped.
        Ok(Err(QueryError::BadData(m))) => Api::invalid_param(m, "query"),
        Ok(r) => render_evaluated(&s, started, r),
        Err(e) => e,
    }
}

fn disarm(mut g: CancelOnDrop) -> CancelOnDrop {
    g.0 = None;
    g
}

/// The validated parameters of a range query, in ms.
#[derive(Debug, PartialEq)]
pub(crate) struct RangeParams {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// `queryRange`'s checks, in its order and with its messages.
pub(crate) fn range_params(p: &Params) -> Result<RangeParams, Api> {
    let start = params::parse_time(p.get("start")).map_err(|e| Api::invalid_param(e, "start"))?;
    let end = params::parse_time(p.get("end")).map_err(|e| Api::invalid_param(e, "end"))?;
    if end < start {
        return Err(Api::invalid_param(
            "end timestamp must not be before start time",
            "end",
        ));
    }
    let step_ns =
        params::parse_duration(p.get("step")).map_err(|e| Api::invalid_param(e, "step"))?;
    if step_ns <= 0 {
        return Err(Api::invalid_param(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
            "step",
        ));
    }
    // end.Sub(start) saturates at the int64 nanosecond range, as Go's time.Sub does.
    let span_ns = ((end as i128 - start as i128) * 1_000_000).min(i64::MAX as i128);
    if span_ns / step_ns as i128 > 11_000 {
        return Err(Api::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    // The engine works in ms; a sub-millisecond step truncates as Prometheus's
    // `durationMilliseconds` does, and never to zero.
    Ok(RangeParams {
        start,
        end,
        step: (step_ns / 1_000_000).max(1),
    })
}

/// `GET|POST /api/v1/query_range`.
pub(crate) async fn query_range(State(s): St, p: Params) -> Api {
    let r = match range_params(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (opts, guard) = match query_options(&s, &p) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let Some(engine) = s.opts.engine.clone() else {
        return engine_unavailable();
    };
    let expr = p.get("query").to_owned();
    let started = Instant::now();
    let res = blocking(move || engine.range(&expr, r.start, r.end, r.step, &opts)).await;
    drop(disarm(guard));
    match res {
        Ok(res) => render_evaluated(&s, started, res),
        Err(e) => e,
    }
}

/// `start`/`end` with the API's defaults, checked as the label and series endpoints do.
fn time_range(p: &Params) -> Result<(i64, i64), Api> {
    let start =
        params::time_param(p, "start", MIN_TIME_MS).map_err(|e| Api::invalid_param(e, "start"))?;
    let end =
        params::time_param(p, "end", MAX_TIME_MS).map_err(|e| Api::invalid_param(e, "end"))?;
    Ok((start, end))
}

/// A querier error as `returnAPIError` classifies storage errors.
fn storage_error(e: annals::Error) -> Api {
    match e {
        annals::Error::InvalidMatcher { .. } | annals::Error::InvalidArgument(_) => {
            Api::bad(e.to_string())
        }
        annals::Error::Closed(_) => Api::Err(ErrorType::Unavailable, e.to_string()),
        _ => Api::Err(ErrorType::Execution, e.to_string()),
    }
}

/// `GET|POST /api/v1/series`.
pub(crate) async fn series(State(s): St, p: Params) -> Api {
    if p.all("match[]").next().is_none() {
        return Api::bad("no match[] parameter provided");
    }
    let (start, end) = match time_range(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sets = match params::matcher_sets(p.all("match[]")) {
        Ok(s) => s,
        Err(e) => return Api::invalid_param(e, "match[]"),
    };
    if start > end {
        return Api::ok("[]".into());
    }
    let db = s.db.clone();
    let r = blocking(move || -> annals::Result<String> {
        let q = db.querier(start, end)?;
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for set in &sets {
            for series in q.select(set)? {
                all.insert(series.labels().clone());
            }
        }
        Ok(json::labels_array(all.iter()))
    })
    .await;
    match r {
        Ok(Ok(data)) => Api::ok(data),
        Ok(Err(e)) => storage_error(e),
        Err(e) => e,
    }
}

/// `GET|POST /api/v1/labels`.
pub(crate) async fn label_names(State(s): St, p: Params) -> Api {
    let (start, end) = match time_range(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sets = match params::matcher_sets(p.all("match[]")) {
        Ok(s) => s,
        Err(e) => return Api::bad(e),
    };
    if start > end {
        return Api::ok("[]".into());
    }
    let db = s.db.clone();
    let r = blocking(move || -> annals::Result<String> {
        let q = db.querier(start, end)?;
        // Without matchers, every source overlapping the range counts as a whole (the
        // querier answers as Prometheus's index readers do).
        let names: BTreeSet<String> = if sets.is_empty() {
            q.label_names(&[])?.into_iter().collect()
        } else {
            let mut all = BTreeSet::new();
            for set in &sets {
                all.extend(q.label_names(set)?);
            }
            all
        };
        Ok(json::string_array(names.iter().map(String::as_str)))
    })
    .await;
    match r {
        Ok(Ok(data)) => Api::ok(data),
        Ok(Err(e)) => storage_error(e),
        Err(e) => e,
    }
}

/// `GET /api/v1/label/<name>/values`.
pub(crate) async fn label_values(State(s): St, Path(name): Path<String>, p: Params) -> Api {
    if !params::is_valid_label_name(&name) {
        return Api::bad(format!("invalid label name: {}", params::go_quote(&name)));
    }
    let (start, end) = match time_range(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sets = match params::matcher_sets(p.all("match[]")) {
        Ok(s) => s,
        Err(e) => return Api::bad(e),
    };
    if start > end {
        return Api::ok("[]".into());
    }
    let db = s.db.clone();
    let r = blocking(move || -> annals::Result<String> {
        let q = db.querier(start, end)?;
        let values: BTreeSet<String> = if sets.is_empty() {
            q.label_values(&name, &[])?.into_iter().collect()
        } else {
            let mut all = BTreeSet::new();
            for set in &sets {
                all.extend(q.label_values(&name, set)?);
            }
            all
        };
        Ok(json::string_array(values.iter().map(String::as_str)))
    })
    .await;
    match r {
        Ok(Ok(data)) => Api::ok(data),
        Ok(Err(e)) => storage_error(e),
        Err(e) => e,
    }
}

/// `GET /api/v1/metadata`.
pub(crate) async fn metadata(State(s): St, p: Params) -> Api {
    let limit = match p.get("limit") {
        "" => -1,
        l => match l.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return Api::bad("limit must be a number"),
        },
    };
    Api::ok(s.metadata.render(p.get("metric"), limit))
}

/// `GET|POST /api/v1/query_exemplars`: annals stores no exemplars, so it answers as Prometheus
/// 2.42 with its (default, empty) exemplar storage: the query is parsed as PromQL (a parse
/// error is `bad_data`), a query without series selectors answers no `data`, any other an
/// empty list.
pub(crate) async fn query_exemplars(State(_s): St, p: Params) -> Api {
    let (start, end) = match time_range(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if end < start {
        return Api::bad("end timestamp must not be before start timestamp");
    }
    match annals_promql::parser::parse(p.get("query")) {
        Err(e) => Api::bad(e.to_string()),
        Ok(expr) if !has_selector(&expr) => Api::Ok(None, Vec::new()),
        Ok(_) => Api::ok("[]".into()),
    }
}

/// Whether `e` holds a series selector (Prometheus's `parser.ExtractSelectors` is not empty).
fn has_selector(e: &annals_promql::parser::Expr) -> bool {
    use annals_promql::parser::Expr;
    match e {
        Expr::Vector(_) | Expr::Matrix(_) => true,
        Expr::Number { .. } | Expr::String { .. } => false,
        Expr::Subquery(sq) => has_selector(&sq.expr),
        Expr::Call(c) => c.args.iter().any(has_selector),
        Expr::Aggregate(a) => has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector),
        Expr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::StepInvariant(expr) => {
            has_selector(expr)
        }
    }
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`.
pub(crate) async fn delete_series(State(s): St, p: Params) -> Api {
    if !s.opts.enable_admin_api {
        return admin_disabled();
    }
    if p.all("match[]").next().is_none() {
        return Api::bad("no match[] parameter provided");
    }
    let (start, end) = match time_range(&p) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut sets: Vec<Vec<Matcher>> = Vec::new();
    for m in p.all("match[]") {
        match annals::parse_selector(m) {
            Ok(set) => sets.push(set),
            Err(e) => return Api::invalid_param(e, "match[]"),
        }
    }
    let db = s.db.clone();
    let r = blocking(move || -> annals::Result<()> {
        for set in &sets {
            db.delete(start, end, set)?;
        }
        Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) => Api::Ok(None, Vec::new()),
        // `end` before `start`: the engine's empty-range rule (issue 16), a client error.
        Ok(Err(e @ annals::Error::InvalidArgument(_))) => Api::bad(e.to_string()),
        Ok(Err(e)) => Api::internal(e),
        Err(e) => e,
    }
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub(crate) async fn clean_tombstones(State(s): St) -> Api {
    if !s.opts.enable_admin_api {
        return admin_disabled();
    }
    let db = s.db.clone();
    match blocking(move || db.clean_tombstones()).await {
        Ok(Ok(_)) => Api::Ok(None, Vec::new()),
        Ok(Err(e)) => Api::internal(e),
        Err(e) => e,
    }
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`.
pub(crate) async fn snapshot(State(s): St, p: Params) -> Api {
    if !s.opts.enable_admin_api {
        return admin_disabled();
    }
    let skip_head = match p.get("skip_head") {
        "" => false,
        v => match parse_go_bool(v) {
            Some(b) => b,
            None => {
                return Api::invalid_param(
                    format!(
                        "unable to parse boolean: strconv.ParseBool: parsing {}: invalid syntax",
                        params::go_quote(v)
                    ),
                    "skip_head",
                )
            }
        },
    };
    let Some(dir) = s.opts.data_dir.clone() else {
        return Api::internal("create snapshot: the database is in memory");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = params::format_rfc3339_nano(now.as_secs() as i128 * 1_000_000_000);
    // 20060102T150405Z0700 from 2006-01-02T15:04:05Z.
    let compact: String = ts.chars().filter(|c| *c != '-' && *c != ':').collect();
    let name = format!("{}-{:016x}", compact, rand_u63());
    let path = dir.join("snapshots").join(&name);
    let db = s.db.clone();
    let r = blocking(move || -> Result<(), String> {
        std::fs::create_dir_all(&path).map_err(|e| format!("create snapshot directory: {e}"))?;
        db.snapshot(&path, !skip_head)
            .map_err(|e| format!("create snapshot: {e}"))?;
        Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) => {
            let mut out = String::from("{\"name\":");
            json::write_str(&mut out, &name);
            out.push('}');
            Api::ok(out)
        }
        Ok(Err(e)) => Api::internal(e),
        Err(e) => e,
    }
}

fn admin_disabled() -> Api {
    Api::Err(ErrorType::Unavailable, "admin APIs disabled".into())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn rand_u63() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now_ms() as u128);
    h.finish() >> 1
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `GET /api/v1/targets`: annals scrapes nothing (Prometheus lists both keys whatever the
/// `state` filter).
pub(crate) async fn targets() -> Api {
    Api::ok(r#"{"activeTargets":[],"droppedTargets":[]}"#.into())
}

/// `GET /api/v1/targets/metadata`.
pub(crate) async fn targets_metadata() -> Api {
    Api::ok("[]".into())
}

/// `GET /api/v1/rules`: annals evaluates no rules.
pub(crate) async fn rules(p: Params) -> Api {
    let typ = p.get("type").to_ascii_lowercase();
    if !typ.is_empty() && typ != "alert" && typ != "record" {
        return Api::invalid_param(
            format!("not supported value {}", params::go_quote(&typ)),
            "type",
        );
    }
    Api::ok(r#"{"groups":[]}"#.into())
}

/// `GET /api/v1/alerts`.
pub(crate) async fn alerts() -> Api {
    Api::ok(r#"{"alerts":[]}"#.into())
}

/// `GET /api/v1/alertmanagers`.
pub(crate) async fn alertmanagers() -> Api {
    Api::ok(r#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(r: Result<RangeParams, Api>) -> (ErrorType, String) {
        match r {
            Err(Api::Err(t, m)) => (t, m),
            Err(Api::Ok(..)) => panic!("not an error"),
            Ok(r) => panic!("accepted: {r:?}"),
        }
    }

    #[test]
    fn range_parameters_are_checked_as_prometheus_does() {
        let p = |q: &str| Params::parse(None, Some(q));
        assert_eq!(
            range_params(&p("start=1&end=2&step=0.5")).ok().unwrap(),
            RangeParams {
                start: 1000,
                end: 2000,
                step: 500
            }
        );
        assert_eq!(
            range_params(&p(
                "start=2015-07-01T20:10:30.781Z&end=2015-07-01T20:11:00.781Z&step=15s"
            ))
            .ok()
            .unwrap(),
            RangeParams {
                start: 1_435_781_430_781,
                end: 1_435_781_460_781,
                step: 15_000
            }
        );
        assert_eq!(
            err_of(range_params(&p("start=x&end=2&step=1"))),
            (
                ErrorType::BadData,
                r#"invalid parameter "start": cannot parse "x" to a valid timestamp"#.into()
            )
        );
        assert_eq!(
            err_of(range_params(&p("start=3&end=2&step=1"))),
            (
                ErrorType::BadData,
                r#"invalid parameter "end": end timestamp must not be before start time"#.into()
            )
        );
        assert_eq!(
            err_of(range_params(&p("start=1&end=2&step=0"))).1,
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#
        );
        assert_eq!(
            err_of(range_params(&p("start=1&end=2"))).1,
            r#"invalid parameter "step": cannot parse "" to a valid duration"#
        );
        assert_eq!(
            err_of(range_params(&p("start=0&end=11001&step=1"))).1,
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        );
        assert!(range_params(&p("start=0&end=11000&step=1")).is_ok());
    }

    #[test]
    fn go_bools_parse() {
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
