//! The agent's and the remote-write client's fuzz targets on stable Rust, for CI: each target
//! body (`fuzz/fuzz_targets/*.rs`, compiled here through a stand-in for
//! `libfuzzer_sys::fuzz_target!`) runs on seeds (real exposition, a real Prometheus WAL, real
//! configurations) and on seeded mutations of them (bit flips, truncations, splices).
extern crate self as libfuzzer_sys;

/// Turns a fuzz target's body into `pub fn run(data: &[u8])`.
#[macro_export]
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        pub fn run($data: &[u8]) $body
    };
}

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/scrape_parse.rs"]
mod scrape_parse;

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/live_wal.rs"]
mod live_wal;

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/remote_progress.rs"]
mod remote_progress;

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/agent_config.rs"]
mod agent_config;

use std::io::Read;
use std::path::Path;

fn shared(rel: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    let mut f = std::fs::File::open(&p).ok()?;
    let mut b = Vec::new();
    if rel.ends_with(".gz") {
        flate2::read::GzDecoder::new(f).read_to_end(&mut b).ok()?;
    } else {
        f.read_to_end(&mut b).ok()?;
    }
    Some(b)
}

/// Seeded mutations: bit flips, truncations, duplicated slices.
fn mutations(seed: &[u8], n: usize, run: impl Fn(&[u8])) {
    run(seed);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..n {
        let mut m = seed.to_vec();
        if m.is_empty() {
            m.push(next() as u8);
        }
        match next() % 3 {
            0 => {
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % m.len();
                    m[i] ^= 1 << (next() % 8);
                }
            }
            1 => m.truncate((next() as usize) % (m.len() + 1)),
            _ => {
                let a = (next() as usize) % m.len();
                let b = a + (next() as usize) % (m.len() - a + 1);
                let at = (next() as usize) % (m.len() + 1);
                let piece = m[a..b].to_vec();
                m.splice(at..at, piece);
            }
        }
        run(&m);
    }
}

fn exposition() -> (Vec<u8>, Vec<u8>) {
    let om = shared("data/node-exporter-15s.om.gz")
        .unwrap_or_else(|| b"a{b=\"c\"} 1 1\n# EOF\n".to_vec());
    let head: Vec<u8> = om
        .split(|&c| c == b'\n')
        .take(600)
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let mut o = vec![1u8];
    o.extend_from_slice(&head);
    o.extend_from_slice(
        b"# HELP x y\n# TYPE x_total counter\nx_total{a=\"\\\"\"} 1 # {t=\"1\"} 2 3\n# EOF\n",
    );
    let mut t = vec![0u8];
    t.extend_from_slice(b"# HELP go_x help\n# TYPE go_x gauge\n");
    t.extend_from_slice(
        &String::from_utf8_lossy(&head)
            .lines()
            .map(|l| l.rsplit_once(' ').map_or(l, |x| x.0))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
    );
    (t, o)
}

#[test]
fn scrape_parse_corpus() {
    let (t, o) = exposition();
    mutations(&t[..t.len().min(20_000)], 400, scrape_parse::run);
    mutations(&o[..o.len().min(20_000)], 400, scrape_parse::run);
}

#[test]
fn live_wal_corpus() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/prometheus-2.42");
    let mut seeds = Vec::new();
    for sub in ["prometheus-2.42-datadir/wal", "wal"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                if e.path().is_file() {
                    seeds.push(std::fs::read(e.path()).unwrap());
                }
            }
        }
    }
    // A WAL the engine writes, in case the fixtures are absent.
    let d = tempfile::tempdir().unwrap();
    let w =
        annals::unstable::wal::Wal::open(d.path(), annals::unstable::wal::WalOptions::default())
            .unwrap();
    for i in 0..50u64 {
        let mut buf = Vec::new();
        annals::unstable::wal::encode_samples(
            (0..i * 40).map(|k| annals::unstable::wal::RefSample {
                series_ref: k,
                t: k as i64,
                v: i as f64,
            }),
            &mut buf,
        );
        w.log(&[&buf]).unwrap();
    }
    w.close().unwrap();
    let (first, _) = annals::unstable::wal::segment_range(d.path())
        .unwrap()
        .unwrap();
    seeds.push(std::fs::read(annals::unstable::wal::segment_path(d.path(), first)).unwrap());
    for (i, s) in seeds.iter().enumerate() {
        let s = &s[..s.len().min(200_000)];
        let mut input = vec![(i * 37) as u8, (i * 11 + 3) as u8];
        input.extend_from_slice(s);
        mutations(&input, 60, live_wal::run);
    }
}

#[test]
fn remote_progress_corpus() {
    use annals_remote::progress::{Mark, Progress, ShardProgress};
    let p = Progress {
        shards: vec![
            ShardProgress {
                acked: Some(Mark {
                    segment: 3,
                    offset: 4096,
                    index: 7,
                }),
                sent: None,
            },
            ShardProgress {
                acked: None,
                sent: Some(Mark::segment_start(9)),
            },
        ],
    };
    mutations(&p.encode(42), 2000, remote_progress::run);
}

#[test]
fn agent_config_corpus() {
    let seeds = [
        "global: {scrape_interval: 15s, external_labels: {a: b}}\nscrape_configs:\n  - job_name: n\n    static_configs: [{targets: ['h:1']}]\n    relabel_configs: [{source_labels: [__address__], regex: '(.*)', target_label: x}]\nremote_write:\n  - url: http://h/\n    queue_config: {max_shards: 2}\n",
        "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['/x/*.json']}]\n    basic_auth: {username: u, password: p}\n",
    ];
    for s in seeds {
        mutations(s.as_bytes(), 500, agent_config::run);
    }
}
