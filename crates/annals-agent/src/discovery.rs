//! Targets: `static_configs` and `file_sd_configs` groups (file contents re-read when a
//! file's size, modification time or inode changes, and every `refresh_interval`), turned into
//! scrape targets with Prometheus 2.42's `PopulateLabels` rules (`scrape/target.go`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{parse_duration, ScrapeConfig, TargetGroup};
use crate::relabel::{self, LabelSet};

/// Prometheus's `patFileSDName`: `*` allowed in the file name only; `.json`, `.yml`, `.yaml`.
pub fn valid_sd_file_pattern(p: &str) -> bool {
    let (dir, file) = match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    };
    if dir.contains('*') || file.matches('*').count() > 1 {
        return false;
    }
    let lower = file.to_ascii_lowercase();
    [".json", ".yml", ".yaml"]
        .iter()
        .any(|e| lower.ends_with(e) && file.len() > e.len() - usize::from(file.starts_with('*')))
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

/// The files a pattern names now, sorted.
pub fn expand_pattern(p: &str) -> Vec<PathBuf> {
    if !p.contains('*') {
        return vec![PathBuf::from(p)];
    }
    let path = Path::new(p);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let pat = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| glob_match(pat, n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Reads one file_sd file: a JSON or YAML list of groups.
pub fn read_sd_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let groups: Vec<TargetGroup> = if ext == "json" {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_yaml_ng::from_str::<Option<Vec<TargetGroup>>>(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .unwrap_or_default()
    };
    for g in &groups {
        for t in &g.targets {
            if t.is_empty() || t.contains('/') {
                return Err(format!("{}: invalid target address {t:?}", path.display()));
            }
        }
    }
    Ok(groups)
}

/// What identifies a file's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

/// The stamp of `path`, `None` if it cannot be read.
pub fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino,
    })
}

/// The file_sd state of one job: stamps of the files last read, and their groups.
#[derive(Debug, Default)]
pub struct FileSd {
    files: BTreeMap<PathBuf, (Option<FileStamp>, Vec<TargetGroup>)>,
    last_full: Option<std::time::Instant>,
}

impl FileSd {
    /// Re-reads changed files (all of them every `refresh`); returns whether anything changed.
    /// A file that cannot be read or parsed keeps its previous groups (logged), as
    /// Prometheus does.
    pub fn refresh(&mut self, cfg: &ScrapeConfig) -> bool {
        let full = self.last_full.is_none_or(|t| {
            let r = cfg
                .file_sd_configs
                .iter()
                .filter_map(|f| f.refresh_interval)
                .min()
                .unwrap_or(Duration::from_secs(300));
            t.elapsed() >= r
        });
        if full {
            self.last_full = Some(std::time::Instant::now());
        }
        let mut seen = Vec::new();
        let mut changed = false;
        for f in &cfg.file_sd_configs {
            for p in &f.files {
                for path in expand_pattern(p) {
                    let st = stamp(&path);
                    seen.push(path.clone());
                    let prev = self.files.get(&path);
                    if !full && prev.is_some_and(|(s, _)| *s == st) {
                        continue;
                    }
                    if st.is_none() {
                        if self.files.remove(&path).is_some() {
                            changed = true;
                        }
                        continue;
                    }
                    match read_sd_file(&path) {
                        Ok(groups) => {
                            if prev.is_none_or(|(_, g)| *g != groups) {
                                changed = true;
                            }
                            self.files.insert(path, (st, groups));
                        }
                        Err(e) => {
                            tracing::error!(job = %cfg.job_name, error = %e, "file_sd: cannot read targets file");
                            if let Some(entry) = self.files.get_mut(&path) {
                                entry.0 = st;
                            }
                        }
                    }
                }
            }
        }
        let before = self.files.len();
        self.files.retain(|p, _| seen.contains(p));
        changed || self.files.len() != before
    }

    /// The groups read, with the `__meta_filepath` label of their file.
    pub fn groups(&self) -> Vec<(TargetGroup, Option<String>)> {
        self.files
            .iter()
            .flat_map(|(p, (_, gs))| {
                gs.iter()
                    .map(move |g| (g.clone(), Some(p.display().to_string())))
            })
            .collect()
    }
}

/// A target to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The labels every scraped series gets (`job`, `instance`, ... but no `__` labels).
    pub labels: LabelSet,
    /// `http://host:port/path?query`.
    pub url: String,
    /// Interval (from `__scrape_interval__`).
    pub interval: Duration,
    /// Timeout (from `__scrape_timeout__`).
    pub timeout: Duration,
}

impl Target {
    /// A stable identity: labels and URL.
    pub fn hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (n, v) in &self.labels {
            h.update(n.as_bytes());
            h.update(&[0xff]);
            h.update(v.as_bytes());
            h.update(&[0xff]);
        }
        h.update(self.url.as_bytes());
        h.digest()
    }
}

fn go_duration(d: Duration) -> String {
    // Prometheus formats these with model.Duration's String: largest units, e.g. "1m30s".
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds the target for `address` of a group, or `Ok(None)` if relabeling dropped it.
pub fn populate(
    cfg: &ScrapeConfig,
    group: &TargetGroup,
    address: &str,
    filepath: Option<&str>,
) -> Result<Option<Target>, String> {
    let mut ls: LabelSet = Vec::new();
    for (n, v) in &group.labels {
        relabel::set(&mut ls, n, v);
    }
    if let Some(f) = filepath {
        relabel::set(&mut ls, "__meta_filepath", f);
    }
    relabel::set(&mut ls, "__address__", address);
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scrape_interval__", go_duration(cfg.scrape_interval)),
        ("__scrape_timeout__", go_duration(cfg.scrape_timeout)),
        ("__metrics_path__", cfg.metrics_path.clone()),
        ("__scheme__", cfg.scheme.clone()),
    ];
    for (n, v) in defaults {
        if ls.binary_search_by(|(k, _)| k.as_str().cmp(n)).is_err() {
            relabel::set(&mut ls, n, &v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("__param_{k}");
        if let Some(v) = vs.first() {
            if ls.binary_search_by(|(n, _)| n.as_str().cmp(&name)).is_err() {
                relabel::set(&mut ls, &name, v);
            }
        }
    }
    if !relabel::process(&mut ls, &cfg.relabel_configs) {
        return Ok(None);
    }
    let get = |ls: &LabelSet, n: &str| {
        ls.binary_search_by(|(k, _)| k.as_str().cmp(n))
            .map(|i| ls[i].1.clone())
            .unwrap_or_default()
    };
    let mut addr = get(&ls, "__address__");
    if addr.is_empty() {
        return Err("no address".into());
    }
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let scheme = get(&ls, "__scheme__");
    let has_port = if addr.starts_with('[') {
        addr.contains("]:")
    } else {
        addr.contains(':')
    };
    if !has_port {
        match scheme.as_str() {
            "http" | "" => addr.push_str(":80"),
            "https" => addr.push_str(":443"),
            _ => return Err(format!("invalid scheme: {scheme:?}")),
        }
        relabel::set(&mut ls, "__address__", &addr);
    }
    if scheme != "http" && scheme != "https" && !scheme.is_empty() {
        return Err(format!("scheme {scheme:?} is not supported"));
    }
    let interval = parse_duration(&get(&ls, "__scrape_interval__"))
        .map_err(|e| format!("error parsing scrape interval: {e}"))?;
    let timeout = parse_duration(&get(&ls, "__scrape_timeout__"))
        .map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
        ));
    }
    let path = get(&ls, "__metrics_path__");
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, vs) in &cfg.params {
        let over = get(&ls, &format!("__param_{k}"));
        for (i, v) in vs.iter().enumerate() {
            let v = if i == 0 && !over.is_empty() {
                over.clone()
            } else {
                v.clone()
            };
            query.push((k.clone(), v));
        }
    }
    for (n, v) in &ls {
        if let Some(k) = n.strip_prefix("__param_") {
            if !cfg.params.contains_key(k) {
                query.push((k.to_owned(), v.clone()));
            }
        }
    }
    query.sort();
    let scheme = if scheme.is_empty() {
        "http"
    } else {
        scheme.as_str()
    };
    let mut url = format!("{scheme}://{addr}{path}");
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect();
        url.push('?');
        url.push_str(&q.join("&"));
    }
    let inst = get(&ls, "instance");
    ls.retain(|(n, _)| !n.starts_with("__"));
    if inst.is_empty() {
        relabel::set(&mut ls, "instance", &addr);
    }
    for (n, _) in &ls {
        if !relabel::valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
    }
    Ok(Some(Target {
        labels: ls,
        url,
        interval,
        timeout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn job(yaml: &str) -> ScrapeConfig {
        Config::parse(yaml).unwrap().scrape_configs.remove(0)
    }

    #[test]
    fn patterns() {
        assert!(valid_sd_file_pattern("/etc/targets/*.json"));
        assert!(valid_sd_file_pattern("t.yml"));
        assert!(valid_sd_file_pattern("dir/node-*.YAML"));
        assert!(!valid_sd_file_pattern("/etc/*/t.json"));
        assert!(!valid_sd_file_pattern("/etc/t.txt"));
        assert!(glob_match("node-*.json", "node-1.json"));
        assert!(!glob_match("node-*.json", "node.json"));
    }

    #[test]
    fn populate_like_prometheus() {
        let c = job("scrape_configs:\n  - job_name: node\n    scrape_interval: 10s\n    params: {collect: [cpu, mem]}\n");
        let g = TargetGroup {
            targets: vec![],
            labels: [("env".to_string(), "prod".to_string())].into(),
        };
        let t = populate(&c, &g, "host", None).unwrap().unwrap();
        assert_eq!(t.url, "http://host:80/metrics?collect=cpu&collect=mem");
        assert_eq!(
            t.labels,
            vec![
                ("env".into(), "prod".into()),
                ("instance".into(), "host:80".into()),
                ("job".into(), "node".into())
            ]
        );
        assert_eq!(t.interval, Duration::from_secs(10));
        // Relabeling sees the meta labels and can change interval, path and instance.
        let c = job(r#"scrape_configs:
  - job_name: node
    scrape_interval: 10s
    relabel_configs:
      - {source_labels: [__address__], regex: '(.*):9100', target_label: instance, replacement: '$1'}
      - {target_label: __scrape_interval__, replacement: 20s}
      - {target_label: __metrics_path__, replacement: /other}
      - {source_labels: [__meta_filepath], regex: '.*drop.*', action: drop}
"#);
        let t = populate(&c, &g, "a:9100", Some("/x/keep.json"))
            .unwrap()
            .unwrap();
        assert_eq!(t.url, "http://a:9100/other");
        assert_eq!(t.interval, Duration::from_secs(20));
        assert!(t.labels.contains(&("instance".into(), "a".into())));
        assert_eq!(
            populate(&c, &g, "a:9100", Some("/x/drop.json")).unwrap(),
            None
        );
        // Timeout above the relabeled interval is an error.
        let c = job("scrape_configs:\n  - job_name: n\n    scrape_interval: 10s\n    relabel_configs: [{target_label: __scrape_interval__, replacement: 1s}]\n");
        assert!(populate(&c, &g, "a:1", None)
            .unwrap_err()
            .contains("greater than"));
    }

    #[test]
    fn file_sd_reads_and_notices_changes() {
        let d = tempfile::tempdir().unwrap();
        let pat = format!("{}/*.json", d.path().display());
        let c = job(&format!(
            "scrape_configs:\n  - job_name: n\n    file_sd_configs: [{{files: ['{pat}']}}]\n"
        ));
        let mut sd = FileSd::default();
        assert!(!sd.refresh(&c));
        std::fs::write(
            d.path().join("a.json"),
            r#"[{"targets": ["h:1", "h:2"], "labels": {"x": "y"}}]"#,
        )
        .unwrap();
        assert!(sd.refresh(&c));
        assert_eq!(sd.groups().len(), 1);
        assert_eq!(sd.groups()[0].0.targets.len(), 2);
        assert!(!sd.refresh(&c));
        // Broken content keeps the previous groups.
        std::fs::write(d.path().join("a.json"), "[{").unwrap();
        sd.refresh(&c);
        assert_eq!(sd.groups()[0].0.targets.len(), 2);
        std::fs::write(d.path().join("a.json"), r#"[{"targets": ["h:3"]}]"#).unwrap();
        assert!(sd.refresh(&c));
        assert_eq!(sd.groups()[0].0.targets, vec!["h:3".to_string()]);
        std::fs::remove_file(d.path().join("a.json")).unwrap();
        assert!(sd.refresh(&c));
        assert!(sd.groups().is_empty());
    }
}
