//! End to end, all on 127.0.0.1: the `annals-agent` binary scrapes our own target server,
//! Debian's `prometheus-node-exporter` and an unreachable target, and forwards to a real
//! Prometheus 2.42 (remote-write receiver) and a real VictoriaMetrics; what each remote stored
//! must equal what the agent stored, series by series. Then the faults: the remote down for a
//! while, the agent SIGKILLed while sending, a remote rejecting part of the requests.

mod support;
mod tls;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use support::*;

fn sleep(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

fn scrape_job(name: &str, targets: &[String]) -> String {
    let t: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "  - job_name: {name}\n    static_configs: [{{targets: [{}]}}]\n",
        t.join(", ")
    )
}

fn remote(name: &str, url: &str) -> String {
    format!("  - url: {url}\n    name: {name}\n    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 1000, min_backoff: 50ms, max_backoff: 1s}}\n")
}

#[test]
fn forwards_everything_to_prometheus_and_victoriametrics() {
    if !(require("prometheus")
        && require("victoria-metrics")
        && require("prometheus-node-exporter"))
    {
        return;
    }
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 2000,
        openmetrics: false,
        gzip: true,
        churn_until: 4,
    });
    let b = TargetServer::start(TargetSpec {
        series: 1000,
        openmetrics: true,
        gzip: false,
        churn_until: 0,
    });
    let ne_port = free_port();
    let _ne = Proc::spawn(
        "node-exporter",
        std::process::Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}")),
        &d.path().join("ne.log"),
    );
    wait_http(ne_port, "/metrics", "node exporter");
    let dead = free_port();
    let (pp, vp, ap) = (free_port(), free_port(), free_port());
    let _prom = prometheus(&d.path().join("prom"), pp);
    let _vm = victoria(&d.path().join("vm"), vp);
    let cfg = format!(
        "global: {{scrape_interval: 1s, external_labels: {{agent: e2e}}}}\nscrape_configs:\n{}{}{}remote_write:\n{}{}",
        scrape_job("own", &[format!("127.0.0.1:{}", a.port), format!("127.0.0.1:{}", b.port)]),
        scrape_job("node", &[format!("127.0.0.1:{ne_port}")]),
        scrape_job("dead", &[format!("127.0.0.1:{dead}")]),
        remote("prom", &format!("http://127.0.0.1:{pp}/api/v1/write")),
        remote("vm", &format!("http://127.0.0.1:{vp}/api/v1/write")),
    );
    let mut agent = agent(&d.path().join("agent"), &cfg, ap);
    sleep(12.0);
    agent.stop();
    let end = now_ms();
    let got = agent_dump(&data(d.path()));
    let want = expected(&got, &[("agent", "e2e")]);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(
        want.len() > 3000 && total > 30_000,
        "{} series, {total} samples",
        want.len()
    );
    assert_same(&want, &prometheus_dump(pp, end, 3600), "prometheus", 0.0);
    // VictoriaMetrics makes acknowledged samples searchable asynchronously, even after
    // /internal/force_flush: poll its export until it holds as many samples (at most 20 s).
    let mut vm = victoria_dump(vp);
    for _ in 0..40 {
        if vm.values().map(Vec::len).sum::<usize>() >= total {
            break;
        }
        sleep(0.5);
        vm = victoria_dump(vp);
    }
    assert_same(&want, &vm, "victoria-metrics", 1e-12);

    // The unreachable target is up == 0, the others are up == 1.
    let up_dead =
        &got[&format!("{{__name__=\"up\", instance=\"127.0.0.1:{dead}\", job=\"dead\"}}")];
    assert!(
        up_dead.len() >= 8 && up_dead.iter().all(|s| f64::from_bits(s.1) == 0.0),
        "{up_dead:?}"
    );
    let up_node =
        &got[&format!("{{__name__=\"up\", instance=\"127.0.0.1:{ne_port}\", job=\"node\"}}")];
    assert!(up_node.iter().all(|s| f64::from_bits(s.1) == 1.0));
    // Series that disappeared got a staleness marker, and the remote stored it: an instant
    // query just after it is empty (without the marker it would answer for 5 minutes).
    let churn = &got[&format!(
        "{{__name__=\"churn_series\", id=\"0\", instance=\"127.0.0.1:{}\", job=\"own\"}}",
        a.port
    )];
    let last = churn.last().unwrap();
    assert_eq!(last.1, STALE, "{churn:?}");
    assert_eq!(churn.iter().filter(|s| s.1 == STALE).count(), 1);
    assert!(prometheus_empty_at(pp, "churn_series", last.0 + 1));
    assert!(!prometheus_empty_at(pp, "churn_series", last.0 - 1));
}

fn prom_agent_config(targets: &[String], pp: u16) -> String {
    format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n{}remote_write:\n{}",
        scrape_job("own", targets),
        remote("prom", &format!("http://127.0.0.1:{pp}/api/v1/write")),
    )
}

#[test]
fn remote_down_for_a_while_loses_nothing() {
    if !require("prometheus") {
        return;
    }
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 1500,
        openmetrics: false,
        gzip: true,
        churn_until: 0,
    });
    let (pp, ap) = (free_port(), free_port());
    let mut prom = prometheus(&d.path().join("prom"), pp);
    let mut agent = agent(
        &d.path().join("agent"),
        &prom_agent_config(&[format!("127.0.0.1:{}", a.port)], pp),
        ap,
    );
    sleep(5.0);
    prom.stop();
    sleep(20.0);
    let retried = metric(ap, "prometheus_remote_storage_samples_retried_total");
    assert!(retried > 0.0, "sends failed while the remote was down");
    let _prom2 = prometheus(&d.path().join("prom"), pp);
    // Catch up: wait until nothing is pending, then stop.
    for _ in 0..200 {
        sleep(0.1);
        if metric(ap, "prometheus_remote_storage_samples_pending") == 0.0
            && metric(ap, "prometheus_remote_storage_samples_in_total")
                == metric(ap, "prometheus_remote_storage_samples_total")
        {
            break;
        }
    }
    agent.stop();
    let end = now_ms();
    let want = expected(&agent_dump(&data(d.path())), &[]);
    assert!(want.values().map(Vec::len).sum::<usize>() > 1500 * 20);
    assert_same(
        &want,
        &prometheus_dump(pp, end, 3600),
        "prometheus after an outage",
        0.0,
    );
}

/// With a 2 s block range the head is compacted and the WAL checkpointed every few seconds:
/// an outage of 15 s spans several truncations, which must keep the segments the queue has
/// not sent (the WAL retention floor).
#[test]
fn remote_down_across_head_compactions_loses_nothing() {
    if !require("prometheus") {
        return;
    }
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 1000,
        openmetrics: false,
        gzip: false,
        churn_until: 0,
    });
    let (pp, ap) = (free_port(), free_port());
    let mut prom = prometheus(&d.path().join("prom"), pp);
    let mut agent = agent_with(
        &d.path().join("agent"),
        &prom_agent_config(&[format!("127.0.0.1:{}", a.port)], pp),
        ap,
        &["--block-range=2s"],
    );
    sleep(3.0);
    prom.stop();
    sleep(15.0);
    assert!(metric(ap, "prometheus_remote_storage_samples_retried_total") > 0.0);
    let _prom2 = prometheus(&d.path().join("prom"), pp);
    for _ in 0..300 {
        sleep(0.1);
        if metric(ap, "prometheus_remote_storage_samples_pending") == 0.0
            && metric(ap, "prometheus_remote_storage_samples_in_total")
                == metric(ap, "prometheus_remote_storage_samples_total")
        {
            break;
        }
    }
    let (_, body) = http("GET", ap, "/metrics").unwrap();
    assert!(
        body.contains("annals_remote_segments_lost_total{"),
        "{body}"
    );
    let lost = metric(ap, "annals_remote_segments_lost_total")
        + metric(ap, "annals_remote_samples_lost_unknown_series_total");
    agent.stop();
    let end = now_ms();
    assert_eq!(
        lost, 0.0,
        "no WAL segment or series was deleted before it was sent"
    );
    let wal = data(d.path()).join("wal");
    let checkpointed = std::fs::read_dir(&wal).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("checkpoint.")
    });
    assert!(checkpointed, "the WAL was truncated during the run");
    let want = expected(&agent_dump(&data(d.path())), &[]);
    assert!(want.values().map(Vec::len).sum::<usize>() > 1000 * 15);
    assert_same(
        &want,
        &prometheus_dump(pp, end, 3600),
        "prometheus after an outage across head compactions",
        0.0,
    );
}

#[test]
fn agent_killed_while_sending_resumes_without_loss() {
    if !require("prometheus") {
        return;
    }
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 3000,
        openmetrics: false,
        gzip: false,
        churn_until: 0,
    });
    let (pp, ap) = (free_port(), free_port());
    let _prom = prometheus(&d.path().join("prom"), pp);
    let cfg = prom_agent_config(&[format!("127.0.0.1:{}", a.port)], pp);
    for round in 0..3 {
        let mut agent = agent(&d.path().join("agent"), &cfg, ap);
        sleep(4.0 + round as f64);
        if round < 2 {
            agent.kill9();
            // The next run replays the WAL; its first batch per shard is the one in flight.
        } else {
            agent.stop();
        }
    }
    let end = now_ms();
    let want = expected(&agent_dump(&data(d.path())), &[]);
    assert_same(
        &want,
        &prometheus_dump(pp, end, 3600),
        "prometheus after SIGKILLs",
        0.0,
    );
}

type Store = Arc<Mutex<BTreeMap<String, Vec<(i64, u64)>>>>;

/// A remote-write receiver that answers 400 to any request holding a `churn_series` sample.
struct Picky {
    port: u16,
    accepted: Store,
    rejected: Store,
    stop: Arc<AtomicBool>,
}

impl Picky {
    fn start() -> Picky {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let (acc, rej): (Store, Store) = (Arc::default(), Arc::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (a2, r2, s2) = (acc.clone(), rej.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    sleep(0.005);
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let (a3, r3) = (a2.clone(), r2.clone());
                std::thread::spawn(move || loop {
                    // One request per iteration (keep-alive).
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match c.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let h = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let len: usize = h
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if c.read_exact(&mut body).is_err() {
                        return;
                    }
                    let req = annals_prompb::decode_write_request(&body, 1 << 26).unwrap();
                    let poison = req.timeseries.iter().any(|t| {
                        t.labels
                            .iter()
                            .any(|l| l.name == "__name__" && l.value == "churn_series")
                    });
                    let target = if poison { &r3 } else { &a3 };
                    {
                        let mut m = target.lock();
                        for ts in &req.timeseries {
                            let mut pairs: Vec<(String, String)> = ts
                                .labels
                                .iter()
                                .map(|l| (l.name.clone(), l.value.clone()))
                                .collect();
                            pairs.sort();
                            let key = annals::Labels::new(pairs).unwrap().to_string();
                            m.entry(key).or_default().extend(
                                ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())),
                            );
                        }
                    }
                    let resp: &[u8] = if poison {
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 6\r\n\r\npoison"
                    } else {
                        b"HTTP/1.1 204 No Content\r\n\r\n"
                    };
                    if c.write_all(resp).is_err() {
                        return;
                    }
                });
            }
        });
        Picky {
            port,
            accepted: acc,
            rejected: rej,
            stop,
        }
    }
}

impl Drop for Picky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_remote_rejecting_part_of_the_requests_does_not_stall_the_queue() {
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 400,
        openmetrics: false,
        gzip: false,
        churn_until: 4,
    });
    let picky = Picky::start();
    let ap = free_port();
    let cfg = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n{}remote_write:\n  - url: http://127.0.0.1:{}/write\n    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 100}}\n",
        scrape_job("own", &[format!("127.0.0.1:{}", a.port)]),
        picky.port
    );
    let mut agent = agent(&d.path().join("agent"), &cfg, ap);
    sleep(10.0);
    let failed = metric(ap, "prometheus_remote_storage_samples_failed_total");
    agent.stop();
    let got = agent_dump(&data(d.path()));
    let acc = picky.accepted.lock().clone();
    let rej = picky.rejected.lock().clone();
    let rejected: usize = rej.values().map(Vec::len).sum();
    assert!(
        rejected > 0 && failed > 0.0,
        "rejected {rejected}, failed metric {failed}"
    );
    // Every sample the agent stored reached the remote, accepted or in a rejected request;
    // and samples scraped after the rejections were accepted: the queue went on.
    let mut last_accepted = 0;
    for (k, v) in &got {
        for s in v {
            let in_acc = acc.get(k).is_some_and(|x| x.contains(s));
            let in_rej = rej.get(k).is_some_and(|x| x.contains(s));
            assert!(in_acc || in_rej, "{k} {s:?} never sent");
            if in_acc {
                last_accepted = last_accepted.max(s.0);
            }
        }
    }
    let last_rejected = rej.values().flatten().map(|s| s.0).max().unwrap();
    assert!(
        last_accepted > last_rejected + 3000,
        "accepted up to {last_accepted}, rejected at {last_rejected}"
    );
}

#[test]
fn bad_configurations_are_refused_with_the_field_named() {
    let d = tmp();
    let cfg = d.path().join("bad.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: a\n    consul_sd_configs: []\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_annals-agent"))
        .arg(format!("--config={}", cfg.display()))
        .arg(format!("--data-dir={}", d.path().join("data").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("field \"consul_sd_configs\" is not supported"),
        "{err}"
    );
}

#[test]
fn file_sd_changes_and_sighup_reloads_apply_while_running() {
    let d = tmp();
    let a = TargetServer::start(TargetSpec {
        series: 50,
        openmetrics: false,
        gzip: false,
        churn_until: 0,
    });
    let b = TargetServer::start(TargetSpec {
        series: 50,
        openmetrics: true,
        gzip: true,
        churn_until: 0,
    });
    let sd = d.path().join("sd");
    std::fs::create_dir_all(&sd).unwrap();
    std::fs::write(
        sd.join("a.json"),
        format!(
            "[{{\"targets\": [\"127.0.0.1:{}\"], \"labels\": {{\"team\": \"x\"}}}}]",
            a.port
        ),
    )
    .unwrap();
    let picky = Picky::start();
    let ap = free_port();
    let cfg = |extra: &str| {
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: sd\n    file_sd_configs: [{{files: ['{}/*.json']}}]\n{extra}remote_write:\n  - url: http://127.0.0.1:{}/write\n    queue_config: {{batch_send_deadline: 1s}}\n",
            sd.display(),
            picky.port
        )
    };
    let mut agent = agent(&d.path().join("agent"), &cfg(""), ap);
    sleep(3.0);
    // A new file_sd file: its target is scraped without a reload.
    std::fs::write(
        sd.join("b.json"),
        format!("[{{\"targets\": [\"127.0.0.1:{}\"]}}]", b.port),
    )
    .unwrap();
    sleep(4.0);
    // SIGHUP with metric relabeling that drops node_memory_info, and target a removed.
    std::fs::remove_file(sd.join("a.json")).unwrap();
    std::fs::write(
        d.path().join("agent").join("agent.yml"),
        cfg("    metric_relabel_configs: [{source_labels: [__name__], regex: node_memory_info, action: drop}]\n"),
    )
    .unwrap();
    let reload_at = now_ms();
    unsafe { libc::kill(agent.child.as_ref().unwrap().id() as i32, libc::SIGHUP) };
    sleep(6.0);
    agent.stop();
    let got = agent_dump(&data(d.path()));
    let inst_a = format!("127.0.0.1:{}", a.port);
    let inst_b = format!("127.0.0.1:{}", b.port);
    let of = |inst: &str, name: &str| -> Vec<(i64, u64)> {
        got.iter()
            .filter(|(k, _)| {
                k.contains(&format!("instance=\"{inst}\""))
                    && k.contains(&format!("__name__=\"{name}\""))
            })
            .flat_map(|(_, v)| v.clone())
            .collect()
    };
    // Target a (from the first file, with its group label) ended with staleness markers after
    // it was removed; target b appeared from the new file.
    assert!(got
        .keys()
        .any(|k| k.contains(&inst_a) && k.contains("team=\"x\"")));
    let up_a = of(&inst_a, "up");
    assert_eq!(up_a.last().unwrap().1, STALE, "{up_a:?}");
    let a_series = got
        .iter()
        .filter(|(k, _)| k.contains(&inst_a) && k.contains("node_cpu_seconds_total"))
        .count();
    let a_stale = got
        .iter()
        .filter(|(k, v)| {
            k.contains(&inst_a)
                && k.contains("node_cpu_seconds_total")
                && v.last().unwrap().1 == STALE
        })
        .count();
    assert!(
        a_series > 0 && a_stale == a_series,
        "{a_stale} of {a_series} ended stale"
    );
    assert!(of(&inst_b, "up").len() >= 5);
    // After the reload, b's node_memory_info samples stop (dropped by the new rule) while its
    // other series go on.
    let mem_b = of(&inst_b, "node_memory_info");
    assert!(
        !mem_b.is_empty() && mem_b.iter().all(|s| s.0 < reload_at + 1500 || s.1 == STALE),
        "{mem_b:?}"
    );
    let cpu_b = of(&inst_b, "node_cpu_seconds_total");
    assert!(cpu_b.iter().any(|s| s.0 > reload_at + 2000));
    // Everything stored was forwarded.
    let acc = picky.accepted.lock().clone();
    for (k, v) in &got {
        for s in v {
            assert!(
                acc.get(k).is_some_and(|x| x.contains(s)),
                "{k} {s:?} not forwarded"
            );
        }
    }
}
