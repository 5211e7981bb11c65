//! The subset of Prometheus 2.42's configuration file an agent needs, read with Prometheus's
//! defaults and validation. Anything else is refused with a message naming the field and
//! where it is, rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;

use annals_remote::tls::{TlsClient, TlsSettings};

use crate::relabel::{RawRule, Rule};

/// A configuration the agent cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML or a field has the wrong type.
    #[error("{0}")]
    Yaml(String),
    /// A field Prometheus knows that annals agent does not support.
    #[error(
        "{path}: field {field:?} is not supported by annals agent (supported here: {supported})"
    )]
    Unsupported {
        /// Where (`scrape_configs[0]`).
        path: String,
        /// The field.
        field: String,
        /// What is supported at that place.
        supported: String,
    },
    /// A value is invalid.
    #[error("{path}: {reason}")]
    Invalid {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a Prometheus duration (`1h30m`, `15s`, `100ms`, `1d`, `1w`, `1y`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("not a valid duration string: {s:?}");
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let b = s.as_bytes();
    let mut i = 0;
    let order = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut last = None;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad());
        }
        let n: u128 = s[start..i].parse().map_err(|_| bad())?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[us..i];
        let ms: u128 = match unit {
            "y" => 365 * 86_400_000,
            "w" => 7 * 86_400_000,
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1000,
            "ms" => 1,
            _ => return Err(bad()),
        };
        let pos = order
            .iter()
            .position(|u| *u == unit)
            .expect("unit is known");
        if last.is_some_and(|l| pos <= l) {
            return Err(bad());
        }
        last = Some(pos);
        total = total
            .checked_add(n.checked_mul(ms).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    u64::try_from(total)
        .map(Duration::from_millis)
        .map_err(|_| bad())
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// `basic_auth`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `authorization`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme, default `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Credentials.
    pub credentials: Option<String>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

/// `tls_config` (Prometheus's common `TLSConfig`).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// Reads the files of a `tls_config` (relative to the configuration file's directory, as
/// Prometheus resolves them): a missing or broken file fails the load, so a reload with one
/// keeps the running configuration.
fn tls_client(raw: &RawTls, base: &Path, path: &str) -> Result<TlsClient, ConfigError> {
    let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
    let settings = TlsSettings {
        ca_file: abs(&raw.ca_file),
        cert_file: abs(&raw.cert_file),
        key_file: abs(&raw.key_file),
        server_name: raw.server_name.clone(),
        insecure_skip_verify: raw.insecure_skip_verify,
    };
    TlsClient::new(&settings).map_err(|reason| ConfigError::Invalid {
        path: format!("{path}.tls_config"),
        reason,
    })
}

/// Builds the `Authorization` header value of `basic_auth` or `authorization`.
pub fn auth_header(
    basic: Option<&BasicAuth>,
    authz: Option<&Authorization>,
    path: &str,
) -> Result<Option<String>, ConfigError> {
    use base64::Engine;
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|source| ConfigError::Io {
                path: p.to_owned(),
                source,
            })
    };
    match (basic, authz) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            path: path.into(),
            reason: "at most one of basic_auth and authorization may be configured".into(),
        }),
        (Some(b), None) => {
            let pw = match (&b.password, &b.password_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid {
                        path: format!("{path}.basic_auth"),
                        reason: "at most one of password and password_file may be configured"
                            .into(),
                    })
                }
                (Some(p), None) => p.clone(),
                (None, Some(f)) => read(f)?,
                (None, None) => String::new(),
            };
            let enc =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.username, pw));
            Ok(Some(format!("Basic {enc}")))
        }
        (None, Some(a)) => {
            let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
            if kind.eq_ignore_ascii_case("basic") {
                return Err(ConfigError::Invalid {
                    path: format!("{path}.authorization"),
                    reason:
                        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                            .into(),
                });
            }
            let cred = match (&a.credentials, &a.credentials_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid {
                        path: format!("{path}.authorization"),
                        reason: "at most one of credentials and credentials_file may be configured"
                            .into(),
                    })
                }
                (Some(c), None) => c.clone(),
                (None, Some(f)) => read(f)?,
                (None, None) => String::new(),
            };
            Ok(Some(format!("{kind} {cred}")))
        }
        (None, None) => Ok(None),
    }
}

/// `global`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    #[serde(default, deserialize_with = "de_duration")]
    scrape_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    scrape_timeout: Option<Duration>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
}

/// A group of targets: `static_configs` entries and file_sd file contents.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files or globs (`*` in the file name only) of `.json`, `.yml` or `.yaml` files.
    pub files: Vec<String>,
    /// Re-read interval even without changes. Default 5m.
    #[serde(default, deserialize_with = "de_duration")]
    pub refresh_interval: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScrape {
    job_name: String,
    #[serde(default, deserialize_with = "de_duration")]
    scrape_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    scrape_timeout: Option<Duration>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    honor_labels: Option<bool>,
    honor_timestamps: Option<bool>,
    sample_limit: Option<usize>,
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    tls_config: Option<RawTls>,
    #[serde(default)]
    static_configs: Vec<TargetGroup>,
    #[serde(default)]
    file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    relabel_configs: Vec<RawRule>,
    #[serde(default)]
    metric_relabel_configs: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    capacity: Option<usize>,
    max_shards: Option<usize>,
    min_shards: Option<usize>,
    max_samples_per_send: Option<usize>,
    #[serde(default, deserialize_with = "de_duration")]
    batch_send_deadline: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    min_backoff: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    max_backoff: Option<Duration>,
    retry_on_http_429: Option<bool>,
    #[serde(default, deserialize_with = "de_duration")]
    max_lag: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    url: String,
    name: Option<String>,
    #[serde(default, deserialize_with = "de_duration")]
    remote_timeout: Option<Duration>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    tls_config: Option<RawTls>,
    #[serde(default)]
    write_relabel_configs: Vec<RawRule>,
    #[serde(default)]
    queue_config: RawQueue,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    scrape_configs: Vec<RawScrape>,
    #[serde(default)]
    remote_write: Vec<RawRemote>,
}

/// One scrape job.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// `job_name`.
    pub job_name: String,
    /// Interval.
    pub scrape_interval: Duration,
    /// Timeout.
    pub scrape_timeout: Duration,
    /// `metrics_path`, default `/metrics`.
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// URL parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// `honor_labels`.
    pub honor_labels: bool,
    /// `honor_timestamps`, default true.
    pub honor_timestamps: bool,
    /// `sample_limit`, 0 = none.
    pub sample_limit: usize,
    /// The `Authorization` header, if any.
    pub auth: Option<String>,
    /// `tls_config`, loaded (`None`: https verifies against the system's CAs).
    pub tls: Option<TlsClient>,
    /// `static_configs`.
    pub static_configs: Vec<TargetGroup>,
    /// `file_sd_configs`.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// `relabel_configs`.
    pub relabel_configs: Vec<Rule>,
    /// `metric_relabel_configs`.
    pub metric_relabel_configs: Vec<Rule>,
    /// The configuration text of this job, to tell whether a reload changed it.
    pub fingerprint: String,
}

/// One remote-write endpoint.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// URL.
    pub url: String,
    /// Name (default: a hash of the URL), unique.
    pub name: String,
    /// Per-request timeout, default 30 s.
    pub remote_timeout: Duration,
    /// Extra headers, authorization included.
    pub headers: Vec<(String, String)>,
    /// `tls_config`, loaded (`None`: https verifies against the system's CAs).
    pub tls: Option<TlsClient>,
    /// `write_relabel_configs`.
    pub write_relabel_configs: Vec<Rule>,
    /// `queue_config`.
    pub queue: annals_remote::QueueConfig,
}

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `global.external_labels`, sorted.
    pub external_labels: Vec<(String, String)>,
    /// Scrape jobs.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Remote-write endpoints.
    pub remote_write: Vec<RemoteWriteConfig>,
}

const TOP: &[&str] = &["global", "scrape_configs", "remote_write"];
const GLOBAL: &[&str] = &["scrape_interval", "scrape_timeout", "external_labels"];
const SCRAPE: &[&str] = &[
    "job_name",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "params",
    "honor_labels",
    "honor_timestamps",
    "sample_limit",
    "basic_auth",
    "authorization",
    "tls_config",
    "static_configs",
    "file_sd_configs",
    "relabel_configs",
    "metric_relabel_configs",
];
const REMOTE: &[&str] = &[
    "url",
    "name",
    "remote_timeout",
    "headers",
    "basic_auth",
    "authorization",
    "tls_config",
    "write_relabel_configs",
    "queue_config",
];
const TLS: &[&str] = &[
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
];
const QUEUE: &[&str] = &[
    "capacity",
    "max_shards",
    "min_shards",
    "max_samples_per_send",
    "batch_send_deadline",
    "min_backoff",
    "max_backoff",
    "retry_on_http_429",
    "max_lag",
];
const RELABEL: &[&str] = &[
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
];

fn check_keys(v: &Value, allowed: &[&str], path: &str) -> Result<(), ConfigError> {
    let Value::Mapping(m) = v else { return Ok(()) };
    for k in m.keys() {
        let key = k.as_str().unwrap_or("<non-string key>");
        if !allowed.contains(&key) {
            return Err(ConfigError::Unsupported {
                path: if path.is_empty() {
                    "top level".into()
                } else {
                    path.into()
                },
                field: key.into(),
                supported: allowed.join(", "),
            });
        }
    }
    Ok(())
}

fn check_list(v: &Value, key: &str, allowed: &[&str], path: &str) -> Result<(), ConfigError> {
    if let Some(Value::Sequence(items)) = v.get(key) {
        for (i, item) in items.iter().enumerate() {
            check_keys(item, allowed, &format!("{path}.{key}[{i}]"))?;
        }
    }
    Ok(())
}

fn rules(raw: &[RawRule], path: &str) -> Result<Vec<Rule>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            Rule::new(r).map_err(|reason| ConfigError::Invalid {
                path: format!("{path}[{i}]"),
                reason,
            })
        })
        .collect()
}

impl Config {
    /// Reads and validates `path`; relative file names in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Config::parse_in(&text, base)
    }

    /// Parses and validates configuration text; relative file names are relative to the
    /// current directory.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_in(text, Path::new(""))
    }

    /// Parses and validates configuration text; relative file names are relative to `base`.
    pub fn parse_in(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let v: Value =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        let v = if v.is_null() {
            Value::Mapping(Default::default())
        } else {
            v
        };
        check_keys(&v, TOP, "")?;
        if let Some(g) = v.get("global") {
            check_keys(g, GLOBAL, "global")?;
        }
        if let Some(Value::Sequence(scs)) = v.get("scrape_configs") {
            for (i, sc) in scs.iter().enumerate() {
                let p = match sc.get("job_name").and_then(Value::as_str) {
                    Some(j) => format!("scrape_configs[{i}] (job {j:?})"),
                    None => format!("scrape_configs[{i}]"),
                };
                check_keys(sc, SCRAPE, &p)?;
                check_list(sc, "relabel_configs", RELABEL, &p)?;
                check_list(sc, "metric_relabel_configs", RELABEL, &p)?;
                check_list(sc, "static_configs", &["targets", "labels"], &p)?;
                check_list(sc, "file_sd_configs", &["files", "refresh_interval"], &p)?;
                if let Some(t) = sc.get("tls_config") {
                    check_keys(t, TLS, &format!("{p}.tls_config"))?;
                }
            }
        }
        if let Some(Value::Sequence(rws)) = v.get("remote_write") {
            for (i, rw) in rws.iter().enumerate() {
                let p = format!("remote_write[{i}]");
                check_keys(rw, REMOTE, &p)?;
                check_list(rw, "write_relabel_configs", RELABEL, &p)?;
                if let Some(q) = rw.get("queue_config") {
                    check_keys(q, QUEUE, &format!("{p}.queue_config"))?;
                }
                if let Some(t) = rw.get("tls_config") {
                    check_keys(t, TLS, &format!("{p}.tls_config"))?;
                }
            }
        }
        let raw: RawConfig =
            serde_yaml_ng::from_value(v.clone()).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        let global_interval = raw
            .global
            .scrape_interval
            .unwrap_or(Duration::from_secs(60));
        let global_timeout = raw
            .global
            .scrape_timeout
            .unwrap_or(Duration::from_secs(10).min(global_interval));
        if global_timeout > global_interval {
            return Err(ConfigError::Invalid {
                path: "global".into(),
                reason: "global scrape timeout greater than scrape interval".into(),
            });
        }
        let mut external_labels: Vec<(String, String)> =
            raw.global.external_labels.into_iter().collect();
        for (n, _) in &external_labels {
            if !crate::relabel::valid_label_name(n) {
                return Err(ConfigError::Invalid {
                    path: "global.external_labels".into(),
                    reason: format!("{n:?} is not a valid label name"),
                });
            }
        }
        external_labels.retain(|(_, v)| !v.is_empty());
        let mut jobs = std::collections::HashSet::new();
        let mut scrape_configs = Vec::new();
        let texts: Vec<String> = match v.get("scrape_configs") {
            Some(Value::Sequence(s)) => s
                .iter()
                .map(|x| serde_yaml_ng::to_string(x).unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        };
        for (i, sc) in raw.scrape_configs.into_iter().enumerate() {
            let p = format!("scrape_configs[{i}] (job {:?})", sc.job_name);
            if sc.job_name.is_empty() {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: "job_name is empty".into(),
                });
            }
            if !jobs.insert(sc.job_name.clone()) {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                });
            }
            let interval = sc.scrape_interval.unwrap_or(global_interval);
            let timeout = sc.scrape_timeout.unwrap_or(if global_timeout > interval {
                interval
            } else {
                global_timeout
            });
            if timeout > interval {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                        sc.job_name
                    ),
                });
            }
            if interval.is_zero() {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: "scrape_interval must be positive".into(),
                });
            }
            let scheme = sc.scheme.unwrap_or_else(|| "http".into());
            if scheme != "http" && scheme != "https" {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: format!("scheme {scheme:?} is not supported (http or https)"),
                });
            }
            let tls = sc
                .tls_config
                .as_ref()
                .map(|t| tls_client(t, base, &p))
                .transpose()?;
            for (j, f) in sc.file_sd_configs.iter().enumerate() {
                for file in &f.files {
                    if !crate::discovery::valid_sd_file_pattern(file) {
                        return Err(ConfigError::Invalid {
                            path: format!("{p}.file_sd_configs[{j}]"),
                            reason: format!("path name {file:?} is not valid for file discovery"),
                        });
                    }
                }
            }
            let auth = auth_header(sc.basic_auth.as_ref(), sc.authorization.as_ref(), &p)?;
            scrape_configs.push(ScrapeConfig {
                scrape_interval: interval,
                scrape_timeout: timeout,
                metrics_path: sc.metrics_path.unwrap_or_else(|| "/metrics".into()),
                scheme,
                params: sc.params,
                honor_labels: sc.honor_labels.unwrap_or(false),
                honor_timestamps: sc.honor_timestamps.unwrap_or(true),
                sample_limit: sc.sample_limit.unwrap_or(0),
                auth,
                tls: tls.clone(),
                static_configs: sc.static_configs,
                file_sd_configs: sc.file_sd_configs,
                relabel_configs: rules(&sc.relabel_configs, &format!("{p}.relabel_configs"))?,
                metric_relabel_configs: rules(
                    &sc.metric_relabel_configs,
                    &format!("{p}.metric_relabel_configs"),
                )?,
                fingerprint: format!("{}{tls:?}", texts.get(i).map_or("", |t| t.as_str())),
                job_name: sc.job_name,
            });
        }
        let mut names = std::collections::HashSet::new();
        let mut remote_write = Vec::new();
        for (i, rw) in raw.remote_write.into_iter().enumerate() {
            let p = format!("remote_write[{i}]");
            if !rw.url.starts_with("http://") && !rw.url.starts_with("https://") {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: format!(
                        "url {:?}: only http:// and https:// URLs are supported",
                        rw.url
                    ),
                });
            }
            let tls = rw
                .tls_config
                .as_ref()
                .map(|t| tls_client(t, base, &p))
                .transpose()?;
            let name = rw.name.clone().unwrap_or_else(|| {
                format!("{:016x}", xxhash_rust::xxh3::xxh3_64(rw.url.as_bytes()))[..6].to_owned()
            });
            if !names.insert(name.clone()) {
                return Err(ConfigError::Invalid {
                    path: p,
                    reason: format!("found multiple remote write configs with name {name:?}"),
                });
            }
            let mut headers: Vec<(String, String)> = rw.headers.into_iter().collect();
            for (h, _) in &headers {
                let lower = h.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "authorization"
                        | "host"
                        | "content-encoding"
                        | "content-length"
                        | "content-type"
                        | "user-agent"
                        | "connection"
                        | "keep-alive"
                        | "proxy-authenticate"
                        | "proxy-authorization"
                        | "www-authenticate"
                        | "accept-encoding"
                        | "x-prometheus-remote-write-version"
                        | "x-prometheus-remote-read-version"
                ) {
                    return Err(ConfigError::Invalid {
                        path: format!("{p}.headers"),
                        reason: format!("{h} is a reserved header; it cannot be set"),
                    });
                }
            }
            if let Some(a) = auth_header(rw.basic_auth.as_ref(), rw.authorization.as_ref(), &p)? {
                headers.push(("Authorization".into(), a));
            }
            let d = annals_remote::QueueConfig::default();
            let q = rw.queue_config;
            let queue = annals_remote::QueueConfig {
                capacity: q.capacity.unwrap_or(d.capacity),
                max_shards: q.max_shards.unwrap_or(d.max_shards),
                min_shards: q.min_shards.unwrap_or(d.min_shards),
                max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
                batch_send_deadline: q.batch_send_deadline.unwrap_or(d.batch_send_deadline),
                min_backoff: q.min_backoff.unwrap_or(d.min_backoff),
                max_backoff: q.max_backoff.unwrap_or(d.max_backoff),
                max_lag: q.max_lag.or(d.max_lag),
                flush_deadline: d.flush_deadline,
            };
            let _ = q.retry_on_http_429;
            if queue.min_shards == 0 || queue.max_shards < queue.min_shards {
                return Err(ConfigError::Invalid {
                    path: format!("{p}.queue_config"),
                    reason: "need 1 <= min_shards <= max_shards".into(),
                });
            }
            if queue.max_samples_per_send == 0 {
                return Err(ConfigError::Invalid {
                    path: format!("{p}.queue_config"),
                    reason: "max_samples_per_send must be positive".into(),
                });
            }
            remote_write.push(RemoteWriteConfig {
                url: rw.url,
                name,
                remote_timeout: rw.remote_timeout.unwrap_or(Duration::from_secs(30)),
                headers,
                tls,
                write_relabel_configs: rules(
                    &rw.write_relabel_configs,
                    &format!("{p}.write_relabel_configs"),
                )?,
                queue,
            });
        }
        Ok(Config {
            external_labels,
            scrape_configs,
            remote_write,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, ms) in [
            ("15s", 15_000u64),
            ("1m30s", 90_000),
            ("100ms", 100),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("0", 0),
            ("1h1m1s1ms", 3_661_001),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for s in ["", "1", "s", "1x", "1s1m", "1.5s", "-1s", "1s1s"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    const FULL: &str = r#"
global:
  scrape_interval: 15s
  scrape_timeout: 5s
  external_labels: {region: eu, replica: ""}
scrape_configs:
  - job_name: node
    scrape_interval: 1s
    params: {module: [a, b]}
    honor_labels: true
    sample_limit: 1000
    basic_auth: {username: u, password: p}
    static_configs:
      - targets: ["127.0.0.1:9100"]
        labels: {env: test}
    file_sd_configs:
      - files: ["/tmp/targets/*.json"]
        refresh_interval: 1m
    relabel_configs:
      - {source_labels: [__address__], target_label: instance, regex: '(.*):\d+', replacement: '$1'}
    metric_relabel_configs:
      - {action: drop, source_labels: [__name__], regex: 'go_.*'}
  - job_name: other
    authorization: {credentials: secret}
remote_write:
  - url: http://127.0.0.1:9090/api/v1/write
    headers: {X-Scope-OrgID: tenant}
    write_relabel_configs: [{action: labeldrop, regex: env}]
    queue_config: {max_samples_per_send: 2000, batch_send_deadline: 1s, min_shards: 2, max_shards: 4}
"#;

    #[test]
    fn full_example() {
        let c = Config::parse(FULL).unwrap();
        assert_eq!(
            c.external_labels,
            vec![("region".to_string(), "eu".to_string())]
        );
        let n = &c.scrape_configs[0];
        assert_eq!(n.scrape_interval, Duration::from_secs(1));
        // The global timeout exceeds the job's interval: the interval is the timeout.
        assert_eq!(n.scrape_timeout, Duration::from_secs(1));
        assert!(n.honor_labels && n.honor_timestamps);
        assert_eq!(n.auth.as_deref(), Some("Basic dTpw"));
        assert_eq!(c.scrape_configs[1].auth.as_deref(), Some("Bearer secret"));
        assert_eq!(c.scrape_configs[1].scrape_interval, Duration::from_secs(15));
        assert_eq!(c.scrape_configs[1].scrape_timeout, Duration::from_secs(5));
        let r = &c.remote_write[0];
        assert_eq!(r.queue.max_samples_per_send, 2000);
        assert_eq!(r.queue.min_shards, 2);
        assert_eq!(r.queue.capacity, 2500);
        assert_eq!(
            r.headers,
            vec![("X-Scope-OrgID".to_string(), "tenant".to_string())]
        );
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unsupported_fields_are_named() {
        let e = err("scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: []\n");
        assert!(
            e.starts_with(
                "scrape_configs[0] (job \"a\"): field \"kubernetes_sd_configs\" is not supported"
            ),
            "{e}"
        );
        let e = err("rule_files: [x]\n");
        assert!(e.contains("top level: field \"rule_files\""), "{e}");
        let e =
            err("remote_write:\n  - url: http://x/\n    queue_config: {sample_age_limit: 1s}\n");
        assert!(
            e.contains("remote_write[0].queue_config: field \"sample_age_limit\""),
            "{e}"
        );
        let e = err("remote_write:\n  - url: http://x/\n    tls_config: {ca: x}\n");
        assert!(
            e.contains("remote_write[0].tls_config: field \"ca\" is not supported"),
            "{e}"
        );
        let e = err(
            "scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: keep, regexp: x}]\n",
        );
        assert!(
            e.contains("scrape_configs[0] (job \"a\").relabel_configs[0]: field \"regexp\""),
            "{e}"
        );
        let e = err("global: {evaluation_interval: 1m}\n");
        assert!(e.contains("global: field \"evaluation_interval\""), "{e}");
    }

    #[test]
    fn invalid_values() {
        assert!(err(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n"
        )
        .contains("scrape timeout greater than scrape interval"));
        assert!(err("scrape_configs:\n  - job_name: a\n  - job_name: a\n")
            .contains("multiple scrape configs"));
        assert!(
            err("scrape_configs:\n  - job_name: a\n    scheme: ftp\n").contains("http or https")
        );
        assert!(
            err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n")
                .contains("not a valid duration")
        );
        assert!(err("scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: hashmod, target_label: x}]\n").contains("requires non-zero modulus"));
        assert!(err("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: c}\n").contains("at most one"));
        assert!(err("remote_write:\n  - url: ftp://x/\n").contains("only http:// and https://"));
        assert!(
            err("remote_write:\n  - url: http://x/\n    headers: {Authorization: x}\n")
                .contains("reserved header")
        );
        assert!(err(
            "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['/a/*/b.json']}]\n"
        )
        .contains("not valid for file discovery"));
        assert!(
            err("scrape_configs: [[").contains("did not find"),
            "{}",
            err("scrape_configs: [[")
        );
    }

    #[test]
    fn tls_config_files_are_read_at_load() {
        let d = tempfile::tempdir().unwrap();
        let text = "scrape_configs:\n  - job_name: a\n    scheme: https\n    tls_config: {ca_file: ca.pem, server_name: example.org}\nremote_write:\n  - url: https://x/\n    tls_config: {insecure_skip_verify: true}\n";
        // Relative to the directory given (the configuration file's): missing there.
        let e = Config::parse_in(text, d.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("scrape_configs[0] (job \"a\").tls_config: ca_file ")
                && e.contains(&d.path().join("ca.pem").display().to_string()),
            "{e}"
        );
        std::fs::write(d.path().join("ca.pem"), "garbage\n").unwrap();
        let e = Config::parse_in(text, d.path()).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = err("remote_write:\n  - url: https://x/\n    tls_config: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n");
        assert!(
            e.starts_with("remote_write[0].tls_config: cert_file /nonexistent/c.pem"),
            "{e}"
        );
        let c = Config::parse(
            "scrape_configs:\n  - job_name: a\n    scheme: https\nremote_write:\n  - url: https://x/\n    tls_config: {insecure_skip_verify: true}\n",
        )
        .unwrap();
        assert_eq!(c.scrape_configs[0].scheme, "https");
        assert!(c.scrape_configs[0].tls.is_none() && c.remote_write[0].tls.is_some());
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let c = Config::parse("").unwrap();
        assert!(c.scrape_configs.is_empty() && c.remote_write.is_empty());
    }
}
