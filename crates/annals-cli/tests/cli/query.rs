//! `annals query` prints what `promtool query` prints for a live Prometheus 2.42 serving the
//! same blocks, byte for byte, in both output formats.

use std::path::Path;
use std::process::Command;

use crate::server::start;
use crate::support::*;

/// Runs promtool against the server; returns (exit success, stdout, stderr).
fn promtool_query(promtool: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("run promtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn annals_query(args: &[&str]) -> (bool, String, String) {
    let out = annals(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn query_prints_what_promtool_prints() {
    let (Some(prometheus), Some(promtool)) = (oracle("prometheus"), promtool()) else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("imported");
    crate::import::import_node_exporter(&ours);
    let served = d.path().join("server-data");
    copy_dir(&ours, &served);
    let config = d.path().join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let server = start(&prometheus, &served, &config);
    let url = format!("http://127.0.0.1:{}", server.port);
    let dir = ours.to_str().unwrap();

    // The data: 507 series every 15 s from 1763856000 to 1763869485.
    let instant = [
        ("node_load1", "1763860000"),
        ("node_cpu_seconds_total{mode=\"idle\"}", "1763860000.5"),
        (
            "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
            "1763862000",
        ),
        ("count(node_network_up)", "1763862000"),
        ("scalar(node_load1)", "1763862000"),
        ("1 + 2", "1763862000"),
        ("node_load1[1m]", "1763860000"),
        ("node_load1 > 100", "1763860000"),
        (
            "topk(3, node_network_receive_bytes_total)",
            "2025-11-23T01:00:00Z",
        ),
        (
            "label_replace(node_uname_info, \"x\", \"<&>\", \"nodename\", \"(.*)\")",
            "1763860000",
        ),
        ("sum(node_load1", "1763860000"),
        ("node_load1 + on() node_cpu_seconds_total", "1763860000"),
    ];
    let mut failures = Vec::new();
    for format in ["promql", "json"] {
        for (q, t) in instant {
            let theirs = promtool_query(
                &promtool,
                &[
                    "query",
                    "instant",
                    "-o",
                    format,
                    &format!("--time={t}"),
                    &url,
                    q,
                ],
            );
            let ours = annals_query(&[
                "query",
                "-o",
                format,
                "instant",
                &format!("--time={t}"),
                dir,
                q,
            ]);
            if theirs != ours {
                failures.push(format!(
                    "instant {q} ({format}):\n  promtool {theirs:?}\n  annals   {ours:?}"
                ));
            }
        }
        let range = [
            (
                "rate(node_cpu_seconds_total{mode=\"user\"}[5m])",
                "1763860000",
                "1763860600",
                Some("60s"),
            ),
            ("node_load1", "1763860000", "1763861000", None),
            (
                "sum(node_load1) * 2",
                "2025-11-23T00:10:00Z",
                "2025-11-23T00:20:00Z",
                Some("1m30s"),
            ),
            ("node_load1[5m]", "1763860000", "1763861000", Some("60s")),
        ];
        for (q, start, end, step) in range {
            let mut args = vec!["query".to_owned()];
            let mut tail = vec![
                "range".to_owned(),
                format!("--start={start}"),
                format!("--end={end}"),
            ];
            if let Some(step) = step {
                tail.push(format!("--step={step}"));
            }
            let mut theirs_args = vec![
                "query".to_owned(),
                "range".to_owned(),
                "-o".to_owned(),
                format.to_owned(),
            ];
            theirs_args.extend(tail[1..].iter().cloned());
            theirs_args.push(url.clone());
            theirs_args.push(q.to_owned());
            args.extend(["-o".to_owned(), format.to_owned()]);
            args.extend(tail);
            args.push(dir.to_owned());
            args.push(q.to_owned());
            let theirs = promtool_query(
                &promtool,
                &theirs_args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            let ours = annals_query(&args.iter().map(String::as_str).collect::<Vec<_>>());
            if theirs != ours {
                failures.push(format!(
                    "range {q} ({format}):\n  promtool {theirs:?}\n  annals   {ours:?}"
                ));
            }
        }
        let series = [
            vec!["--match=node_network_up"],
            vec!["--match=node_load1", "--match={__name__=~\"node_load.*\"}"],
            vec![
                "--match=node_load1",
                "--start=1763870000",
                "--end=1763880000",
            ],
        ];
        for m in &series {
            let mut theirs_args = vec!["query", "series", "-o", format];
            theirs_args.extend(m.iter().copied());
            theirs_args.push(&url);
            let mut args = vec!["query", "-o", format, "series"];
            args.extend(m.iter().copied());
            args.push(dir);
            let (theirs, ours) = (promtool_query(&promtool, &theirs_args), annals_query(&args));
            if theirs != ours {
                failures.push(format!(
                    "series {m:?} ({format}):\n  promtool {theirs:?}\n  annals   {ours:?}"
                ));
            }
        }
        let labels = [
            (vec![], "mode"),
            (vec!["--match=node_network_up"], "device"),
            (vec![], "__name__"),
            (vec![], "nonexistent"),
        ];
        for (m, name) in &labels {
            let mut theirs_args = vec!["query", "labels", "-o", format];
            theirs_args.extend(m.iter().copied());
            theirs_args.push(&url);
            theirs_args.push(name);
            let mut args = vec!["query", "-o", format, "labels"];
            args.extend(m.iter().copied());
            args.push(dir);
            args.push(name);
            let (theirs, ours) = (promtool_query(&promtool, &theirs_args), annals_query(&args));
            if theirs != ours {
                failures.push(format!(
                    "labels {name} {m:?} ({format}):\n  promtool {theirs:?}\n  annals   {ours:?}"
                ));
            }
        }
    }
    // promtool cannot decode string results (client_golang rejects the type); annals prints
    // them as client_golang's `model.String` would.
    let (ok, out, _) =
        annals_query(&["query", "instant", "--time=1763862000", dir, "\"a string\""]);
    assert!(ok && out == "a string\n", "{out:?}");
    drop(server);
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
