//! `annals list` and `annals analyze` against promtool's.

use std::collections::BTreeSet;

use crate::support::*;

#[test]
fn list_prints_what_promtool_prints() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    copy_dir(&fixture("node-exporter-blocks"), &dir);
    // A WAL directory, a stray file and a block directory without meta.json (skipped, as
    // Prometheus skips it) do not disturb the listing.
    copy_dir(&fixture("prometheus-2.42-datadir/wal"), &dir.join("wal"));
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    std::fs::create_dir(dir.join("01M8396A503TACQT84BKW870RZ")).unwrap();
    let p = dir.to_str().unwrap();
    for args in [&["list"][..], &["list", "-r"][..]] {
        let mut a = args.to_vec();
        a.push(p);
        let mut b = vec!["tsdb"];
        b.extend_from_slice(&a);
        assert_eq!(annals_ok(&a), promtool_ok(&promtool, &b), "{args:?}");
    }
    // An empty directory: the header only, padded like promtool's.
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    assert_eq!(
        annals_ok(&["list", e]),
        promtool_ok(&promtool, &["tsdb", "list", e])
    );
}

/// A promtool analyze report split into sections: (title, lines).
fn sections(report: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![("header".into(), Vec::new())];
    for l in report.lines() {
        if l.is_empty() {
            continue;
        }
        if l.ends_with(':')
            && !l.starts_with(char::is_numeric)
            && !l.trim_start().starts_with(char::is_numeric)
        {
            out.push((l.to_owned(), Vec::new()));
        } else {
            out.last_mut().unwrap().1.push(l.to_owned());
        }
    }
    out
}

/// Compares two analyze reports whose lists may order equal counts differently (promtool
/// iterates Go maps): same sections, same header and histogram lines, and in every list the
/// same counts in the same order and the same entries above the smallest count shown.
fn assert_same_analysis(ours: &str, theirs: &str) {
    let a = sections(ours);
    let b = sections(theirs);
    assert_eq!(
        a.iter().map(|s| &s.0).collect::<Vec<_>>(),
        b.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for ((title, x), (_, y)) in a.iter().zip(&b) {
        if title == "header" {
            // Our bytes-per-sample line is an addition.
            let x: Vec<_> = x
                .iter()
                .filter(|l| !l.starts_with("Bytes per sample"))
                .collect();
            assert_eq!(x, y.iter().collect::<Vec<_>>());
            continue;
        }
        if !x.first().is_some_and(|l| {
            l.split_once(' ')
                .is_some_and(|(n, _)| n.parse::<u64>().is_ok())
        }) {
            assert_eq!(x, y, "{title}");
            continue;
        }
        let parse = |v: &Vec<String>| -> Vec<(u64, String)> {
            v.iter()
                .map(|l| {
                    let (n, k) = l.split_once(' ').unwrap();
                    (n.parse().unwrap(), k.to_owned())
                })
                .collect()
        };
        let (x, y) = (parse(x), parse(y));
        assert_eq!(
            x.iter().map(|e| e.0).collect::<Vec<_>>(),
            y.iter().map(|e| e.0).collect::<Vec<_>>(),
            "{title}"
        );
        let cutoff = x.last().map_or(0, |e| e.0);
        let above = |v: &[(u64, String)]| -> BTreeSet<String> {
            v.iter()
                .filter(|e| e.0 > cutoff)
                .map(|e| e.1.clone())
                .collect()
        };
        assert_eq!(above(&x), above(&y), "{title}");
    }
}

#[test]
fn analyze_reports_what_promtool_reports() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    copy_dir(&fixture("node-exporter-blocks"), &dir);
    let p = dir.to_str().unwrap();
    for args in [
        vec!["analyze", p],
        vec!["analyze", "--limit=5", p, "01M8396A503TACQT84BKW870RK"],
        vec![
            "analyze",
            "--limit=50",
            "--extended",
            p,
            "01M8396ANRP6M7K730VKK2CXKZ",
        ],
    ] {
        let ours = annals_ok(&args);
        let mut b = vec!["tsdb"];
        b.extend_from_slice(&args);
        let theirs = promtool_ok(&promtool, &b);
        assert_same_analysis(&ours, &theirs);
    }
    let ours = annals_ok(&["analyze", p]);
    assert!(
        ours.starts_with("Block ID: 01M8396ANRP6M7K730VKK2CXKZ\n"),
        "{ours}"
    );
    // 337 873 bytes of chunks and 398 861 bytes in all for 243 360 samples.
    let first = annals_ok(&["analyze", p, "01M8396A503TACQT84BKW870RK"]);
    assert!(
        first.contains("Bytes per sample: 1.388 in chunk files (337873 bytes), 1.639 in the whole block (398861 bytes, 243360 samples)"),
        "{first}"
    );
}
