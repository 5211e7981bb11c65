//! The scrape append path against an in-memory database: what Prometheus 2.42's
//! `TestScrapeLoop*` tests check, by behaviour.

use super::*;
use annals::{Matcher, Options};

fn db() -> Db {
    Db::open_in_memory(Options::default()).unwrap()
}

fn target() -> LabelSet {
    vec![
        ("instance".into(), "h:1".into()),
        ("job".into(), "j".into()),
    ]
}

fn cfg() -> LoopConfig {
    LoopConfig {
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
        metric_relabel: Vec::new(),
        auth: None,
    }
}

/// Every series as `labels -> [(t, value bits)]`.
fn dump(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeMap::new();
    for s in q
        .select(&[Matcher::regex("__name__", ".+").unwrap()])
        .unwrap()
    {
        let v: Vec<(i64, u64)> = s
            .to_vec()
            .unwrap()
            .iter()
            .map(|x| (x.t, x.v.to_bits()))
            .collect();
        out.insert(s.labels().to_string(), v);
    }
    out
}

use std::collections::BTreeMap;

fn scrape(db: &Db, cache: &mut ScrapeCache, cfg: &LoopConfig, body: Option<&str>, ts: i64) -> bool {
    let err = body.is_none().then(|| ScrapeError::Http("down".into()));
    let b = body.unwrap_or("").as_bytes();
    scrape_once(
        db,
        cache,
        cfg,
        &target(),
        b,
        Format::Prometheus,
        ts,
        Duration::from_millis(5),
        err,
    )
    .0
}

const STALE: u64 = 0x7ff0_0000_0000_0002;

#[test]
fn disappearing_series_and_failed_scrapes_get_staleness_markers() {
    let db = db();
    let mut c = ScrapeCache::default();
    assert!(scrape(&db, &mut c, &cfg(), Some("a 1\nb 2\n"), 1000));
    assert!(scrape(&db, &mut c, &cfg(), Some("a 3\n"), 2000));
    assert!(!scrape(&db, &mut c, &cfg(), None, 3000));
    let d = dump(&db);
    let a = &d[r#"{__name__="a", instance="h:1", job="j"}"#];
    let b = &d[r#"{__name__="b", instance="h:1", job="j"}"#];
    assert_eq!(
        a,
        &vec![
            (1000, 1f64.to_bits()),
            (2000, 3f64.to_bits()),
            (3000, STALE)
        ]
    );
    assert_eq!(b, &vec![(1000, 2f64.to_bits()), (2000, STALE)]);
    let up = &d[r#"{__name__="up", instance="h:1", job="j"}"#];
    assert_eq!(
        up.iter().map(|x| f64::from_bits(x.1)).collect::<Vec<_>>(),
        vec![1.0, 1.0, 0.0]
    );
    let scraped = &d[r#"{__name__="scrape_samples_scraped", instance="h:1", job="j"}"#];
    assert_eq!(
        scraped
            .iter()
            .map(|x| f64::from_bits(x.1))
            .collect::<Vec<_>>(),
        vec![2.0, 1.0, 0.0]
    );
    let added = &d[r#"{__name__="scrape_series_added", instance="h:1", job="j"}"#];
    assert_eq!(
        added
            .iter()
            .map(|x| f64::from_bits(x.1))
            .collect::<Vec<_>>(),
        vec![2.0, 0.0, 0.0]
    );
    assert!(d.contains_key(r#"{__name__="scrape_duration_seconds", instance="h:1", job="j"}"#));
    assert!(d.contains_key(
        r#"{__name__="scrape_samples_post_metric_relabeling", instance="h:1", job="j"}"#
    ));
}

#[test]
fn explicit_timestamps_bypass_staleness_unless_not_honored() {
    let db = db();
    let mut c = ScrapeCache::default();
    assert!(scrape(&db, &mut c, &cfg(), Some("a 1 500\n"), 1000));
    assert!(scrape(&db, &mut c, &cfg(), Some(""), 2000));
    let d = dump(&db);
    assert_eq!(
        d[r#"{__name__="a", instance="h:1", job="j"}"#],
        vec![(500, 1f64.to_bits())]
    );
    let db = self::db();
    let mut c = ScrapeCache::default();
    let mut cf = cfg();
    cf.honor_timestamps = false;
    assert!(scrape(&db, &mut c, &cf, Some("a 1 500\n"), 1000));
    assert!(scrape(&db, &mut c, &cf, Some("b 1\n"), 2000));
    let d = dump(&db);
    assert_eq!(
        d[r#"{__name__="a", instance="h:1", job="j"}"#],
        vec![(1000, 1f64.to_bits()), (2000, STALE)]
    );
}

#[test]
fn honor_labels_and_conflicts() {
    let db = db();
    let mut c = ScrapeCache::default();
    scrape(
        &db,
        &mut c,
        &cfg(),
        Some("a{job=\"x\",exported_job=\"y\"} 1\n"),
        1000,
    );
    let d = dump(&db);
    assert!(d.contains_key(r#"{__name__="a", exported_exported_job="x", exported_job="y", instance="h:1", job="j"}"#), "{:?}", d.keys());
    let db = self::db();
    let mut c = ScrapeCache::default();
    let mut cf = cfg();
    cf.honor_labels = true;
    scrape(&db, &mut c, &cf, Some("a{job=\"x\"} 1\n"), 1000);
    assert!(dump(&db).contains_key(r#"{__name__="a", instance="h:1", job="x"}"#));
}

#[test]
fn sample_limit_fails_the_scrape_and_marks_everything_stale() {
    let db = db();
    let mut c = ScrapeCache::default();
    let mut cf = cfg();
    cf.sample_limit = 2;
    assert!(scrape(&db, &mut c, &cf, Some("a 1\nb 1\n"), 1000));
    assert!(!scrape(&db, &mut c, &cf, Some("a 2\nb 2\nc 2\n"), 2000));
    let d = dump(&db);
    // The whole scrape is rolled back. As in Prometheus 2.42, the series it saw count as
    // seen, so they are not marked stale until a later scrape lacks them.
    assert_eq!(
        d[r#"{__name__="a", instance="h:1", job="j"}"#],
        vec![(1000, 1f64.to_bits())]
    );
    assert!(!d.contains_key(r#"{__name__="c", instance="h:1", job="j"}"#));
    assert!(scrape(&db, &mut c, &cf, Some("a 3\n"), 3000));
    let d2 = dump(&db);
    assert_eq!(
        d2[r#"{__name__="b", instance="h:1", job="j"}"#],
        vec![(1000, 1f64.to_bits()), (3000, STALE)]
    );
    let scraped = &d[r#"{__name__="scrape_samples_scraped", instance="h:1", job="j"}"#];
    assert_eq!(f64::from_bits(scraped[1].1), 3.0);
    let up = &d[r#"{__name__="up", instance="h:1", job="j"}"#];
    assert_eq!(f64::from_bits(up[1].1), 0.0);
}

#[test]
fn metric_relabeling_drops_and_counts() {
    let db = db();
    let mut c = ScrapeCache::default();
    let mut cf = cfg();
    let raw: Vec<crate::relabel::RawRule> =
        serde_yaml_ng::from_str("- {source_labels: [__name__], regex: 'go_.*', action: drop}")
            .unwrap();
    cf.metric_relabel = raw
        .iter()
        .map(|r| crate::relabel::Rule::new(r).unwrap())
        .collect();
    scrape(&db, &mut c, &cf, Some("go_x 1\nkeep 1\n"), 1000);
    scrape(&db, &mut c, &cf, Some("go_x 1\nkeep 1\n"), 2000);
    let d = dump(&db);
    assert!(!d.keys().any(|k| k.contains("go_x")));
    let post = &d[r#"{__name__="scrape_samples_post_metric_relabeling", instance="h:1", job="j"}"#];
    assert_eq!(
        post.iter().map(|x| f64::from_bits(x.1)).collect::<Vec<_>>(),
        vec![1.0, 1.0]
    );
}

#[test]
fn invalid_and_unparsable_bodies_are_up_zero() {
    let db = db();
    let mut c = ScrapeCache::default();
    assert!(!scrape(&db, &mut c, &cfg(), Some("a 1\nb{x=1} 2\n"), 1000));
    assert!(!dump(&db).contains_key(r#"{__name__="a", instance="h:1", job="j"}"#));
    let mut cf = cfg();
    let raw: Vec<crate::relabel::RawRule> =
        serde_yaml_ng::from_str("- {target_label: __name__, replacement: '0bad'}").unwrap();
    cf.metric_relabel = raw
        .iter()
        .map(|r| crate::relabel::Rule::new(r).unwrap())
        .collect();
    let mut c = ScrapeCache::default();
    assert!(!scrape(&db, &mut c, &cf, Some("a 1\n"), 2000));
}

#[test]
fn cache_hits_reuse_refs_and_openmetrics_parses() {
    let db = db();
    let mut c = ScrapeCache::default();
    let t = target();
    for (i, ts) in [1000, 2000, 3000].into_iter().enumerate() {
        let body = format!("# TYPE a counter\na_total {i}\n# EOF\n");
        let (up, _) = scrape_once(
            &db,
            &mut c,
            &cfg(),
            &t,
            body.as_bytes(),
            Format::OpenMetrics,
            ts,
            Duration::ZERO,
            None,
        );
        assert!(up);
    }
    // One scraped series plus five report series.
    assert_eq!(c.len(), 6);
    assert_eq!(
        dump(&db)[r#"{__name__="a_total", instance="h:1", job="j"}"#].len(),
        3
    );
}

#[test]
fn a_sample_from_a_clock_far_ahead_is_rejected_and_the_scrape_stays_up() {
    // As the agent opens its database: a 10 min future bound.
    let mut o = Options::default();
    o.max_future_ms = Some(10 * 60 * 1000);
    let db = Db::open_in_memory(o).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut c = ScrapeCache::default();
    let body = format!("a 1 {}\nb 2\n", now + 3_600_000);
    assert!(scrape(&db, &mut c, &cfg(), Some(&body), now));
    let d = dump(&db);
    assert!(
        !d.contains_key(r#"{__name__="a", instance="h:1", job="j"}"#),
        "{d:?}"
    );
    assert_eq!(
        d[r#"{__name__="b", instance="h:1", job="j"}"#],
        vec![(now, 2f64.to_bits())]
    );
    // A later realistic sample of the same series is still accepted.
    let body = format!("a 3 {}\n", now + 1000);
    assert!(scrape(&db, &mut c, &cfg(), Some(&body), now + 1000));
    assert_eq!(
        dump(&db)[r#"{__name__="a", instance="h:1", job="j"}"#],
        vec![(now + 1000, 3f64.to_bits())]
    );
}
