//! `scheme: https`, `tls_config` and `https://` remote write against real TLS servers on
//! 127.0.0.1: Debian's node exporter and Prometheus 2.42, each with `--web.config.file`, with a
//! CA and certificates made by `openssl` here.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

fn sleep(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, another CA nobody uses, a server certificate for the name `annals.test` only (so a
/// client must send `server_name` to verify it when it dials 127.0.0.1) and a client
/// certificate, all signed by the first CA.
fn make_certs(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN=annals {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    for (name, ext) in [
        ("server", "subjectAltName=DNS:annals.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
        ("client", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

/// GET over https with curl (verifying against `ca.pem` as `annals.test`); the body if 2xx.
fn curl(dir: &Path, port: u16, path: &str, client_cert: bool) -> Option<String> {
    let mut c = Command::new("curl");
    c.current_dir(dir)
        .args(["-sf", "--max-time", "30", "--cacert", "ca.pem", "--resolve"])
        .arg(format!("annals.test:{port}:127.0.0.1"));
    if client_cert {
        c.args(["--cert", "client.pem", "--key", "client.key"]);
    }
    let out = c
        .arg(format!("https://annals.test:{port}{path}"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_https(dir: &Path, port: u16, path: &str, client_cert: bool, what: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if curl(dir, port, path, client_cert).is_some() {
            return;
        }
        sleep(0.1);
    }
    panic!("{what} did not answer over https on port {port}");
}

fn agent_log(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "log") {
            s.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    s
}

#[test]
fn https_scrapes_and_remote_write_with_tls_config() {
    if !(require("openssl")
        && require("curl")
        && require("prometheus")
        && require("prometheus-node-exporter"))
    {
        return;
    }
    let d = tmp();
    let c = d.path().join("certs");
    std::fs::create_dir_all(&c).unwrap();
    make_certs(&c);
    std::fs::write(
        c.join("web.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    )
    .unwrap();
    std::fs::write(
        c.join("web-mtls.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    )
    .unwrap();
    // Two node exporters over TLS; the second requires a client certificate.
    let (ne, ne_mtls) = (free_port(), free_port());
    let _ne = Proc::spawn(
        "node-exporter",
        Command::new("prometheus-node-exporter")
            .current_dir(&c)
            .arg(format!("--web.listen-address=127.0.0.1:{ne}"))
            .arg("--web.config.file=web.yml"),
        &d.path().join("ne.log"),
    );
    let _ne_mtls = Proc::spawn(
        "node-exporter",
        Command::new("prometheus-node-exporter")
            .current_dir(&c)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_mtls}"))
            .arg("--web.config.file=web-mtls.yml"),
        &d.path().join("ne-mtls.log"),
    );
    wait_https(&c, ne, "/metrics", false, "node exporter");
    wait_https(&c, ne_mtls, "/metrics", true, "node exporter (mTLS)");
    assert!(
        curl(&c, ne_mtls, "/metrics", false).is_none(),
        "the mTLS exporter must refuse a client without a certificate"
    );
    // Prometheus 2.42 over TLS as the remote.
    let pp = free_port();
    let pdir = d.path().join("prom");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("prometheus.yml"), "global: {}\n").unwrap();
    let mut prom = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                pdir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                pdir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pp}"))
            .arg(format!("--web.config.file={}", c.join("web.yml").display()))
            .arg("--web.enable-remote-write-receiver"),
        &pdir.join("prometheus.log"),
    );
    wait_https(&c, pp, "/-/ready", false, "prometheus");

    let cd = c.display();
    let job = |name: &str, port: u16, tls: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config: {{{tls}}}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
    };
    let scrapes = [
        job("named", ne, &format!("ca_file: {cd}/ca.pem, server_name: annals.test")),
        job("noname", ne, &format!("ca_file: {cd}/ca.pem")),
        job("wrongca", ne, &format!("ca_file: {cd}/other-ca.pem, server_name: annals.test")),
        job("skip", ne, "insecure_skip_verify: true"),
        job(
            "client",
            ne_mtls,
            &format!("ca_file: {cd}/ca.pem, server_name: annals.test, cert_file: {cd}/client.pem, key_file: {cd}/client.key"),
        ),
        job("noclient", ne_mtls, &format!("ca_file: {cd}/ca.pem, server_name: annals.test")),
        // Starts with the wrong CA; the right one is put in place while running, no reload.
        job("rotated", ne, &format!("ca_file: {cd}/rotating-ca.pem, server_name: annals.test")),
    ]
    .concat();
    std::fs::copy(c.join("other-ca.pem"), c.join("rotating-ca.pem")).unwrap();
    let remote = |name: &str, ca: &str| {
        format!(
            "  - url: https://127.0.0.1:{pp}/api/v1/write\n    name: {name}\n    tls_config: {{ca_file: {ca}, server_name: annals.test}}\n    queue_config: {{batch_send_deadline: 1s, min_backoff: 50ms, max_backoff: 1s}}\n"
        )
    };
    let config = |remotes: &str| {
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n{scrapes}remote_write:\n{remotes}"
        )
    };
    let ap = free_port();
    let adir = d.path().join("agent");
    let good = remote("good", &format!("{cd}/ca.pem"));
    let mut agent = agent(&adir, &config(&good), ap);
    sleep(5.0);

    // A reload naming a missing CA file is refused and the running configuration kept.
    let yml = adir.join("agent.yml");
    std::fs::write(&yml, config(&remote("good", &format!("{cd}/missing.pem")))).unwrap();
    let pid = agent.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGHUP) };
    sleep(3.0);
    let log = agent_log(&adir);
    assert!(
        log.contains("configuration reload failed") && log.contains("missing.pem"),
        "{log}"
    );
    // A second remote whose CA is wrong: its sends fail and are retried and logged, the good
    // one goes on, and nothing crashes.
    std::fs::write(
        &yml,
        config(&format!(
            "{good}{}",
            remote("bad", &format!("{cd}/other-ca.pem"))
        )),
    )
    .unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    sleep(5.0);
    let retried = metric(
        ap,
        "prometheus_remote_storage_samples_retried_total{remote_name=\"bad\"",
    );
    assert!(
        retried > 0.0,
        "the bad remote's sends must fail and be retried"
    );
    assert_eq!(
        metric(
            ap,
            "prometheus_remote_storage_samples_total{remote_name=\"bad\""
        ),
        0.0
    );
    assert!(http("GET", ap, "/-/healthy").is_some_and(|(c, _)| c == 200));
    // The CA file of job "rotated" is replaced (by rename, as certificate tools do) after the
    // last reload: the next connection reads it.
    std::fs::copy(c.join("ca.pem"), c.join("rotating-ca.next")).unwrap();
    std::fs::rename(c.join("rotating-ca.next"), c.join("rotating-ca.pem")).unwrap();
    sleep(4.0);
    agent.stop();
    let end = now_ms();

    let log = agent_log(&adir);
    assert!(
        log.contains("failed to send batch") && log.contains("UnknownIssuer"),
        "the TLS error must be in the log: {log}"
    );
    assert!(log.contains("not valid for name"), "{log}");
    let got = agent_dump(&data(d.path()));
    let up = |job: &str, port: u16| -> Vec<f64> {
        got[&format!("{{__name__=\"up\", instance=\"127.0.0.1:{port}\", job=\"{job}\"}}")]
            .iter()
            .filter(|s| s.1 != STALE)
            .map(|s| f64::from_bits(s.1))
            .collect()
    };
    for (job, port, want) in [
        ("named", ne, 1.0),
        ("skip", ne, 1.0),
        ("client", ne_mtls, 1.0),
        ("noname", ne, 0.0),
        ("wrongca", ne, 0.0),
        ("noclient", ne_mtls, 0.0),
    ] {
        let v = up(job, port);
        assert!(
            v.len() >= 8 && v.iter().all(|&x| x == want),
            "up of job {job}: {v:?}"
        );
    }
    let rotated = up("rotated", ne);
    let first_up = rotated.iter().position(|&x| x == 1.0);
    assert!(
        first_up.is_some_and(|i| i >= 8 && rotated[i..].iter().all(|&x| x == 1.0))
            && rotated.len() - first_up.unwrap() >= 2,
        "up of job rotated: down until its CA file was replaced, then up: {rotated:?}"
    );
    assert!(got
        .keys()
        .any(|k| k.contains("node_cpu_seconds_total") && k.contains("job=\"client\"")));
    // Everything the agent stored reached Prometheus over https, sample for sample.
    let body = curl(&c, pp, &prometheus_dump_path(end, 3600), false).unwrap();
    let want = expected(&got, &[]);
    assert!(want.len() > 500, "{} series", want.len());
    assert_same(
        &want,
        &range_result_dump(&body),
        "prometheus over https",
        0.0,
    );
    prom.stop();
}
