//! `annals import openmetrics` against `promtool tsdb create-blocks-from openmetrics`.

use std::io::Write;
use std::path::Path;

use crate::support::*;

/// Imports `input` with annals into `dir`.
fn import(input: &Path, dir: &Path) -> String {
    annals_ok(&[
        "import",
        "openmetrics",
        input.to_str().unwrap(),
        dir.to_str().unwrap(),
    ])
}

/// Asserts that every block of `ours` has a promtool block with the same time range whose
/// chunk segments and index are byte-identical, and whose meta.json differs only in ULIDs.
/// Returns the number of blocks.
fn assert_blocks_identical(ours: &Path, theirs: &Path) -> usize {
    let a = blocks_by_min_time(ours);
    let b = blocks_by_min_time(theirs);
    assert_eq!(
        a.iter().map(|x| x.0).collect::<Vec<_>>(),
        b.iter().map(|x| x.0).collect::<Vec<_>>(),
        "block min times"
    );
    for ((_, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(
            meta_without_ulids(x),
            meta_without_ulids(y),
            "{}",
            x.display()
        );
        let segs = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p.join("chunks"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(segs(x), segs(y));
        for s in segs(x) {
            let rel = Path::new("chunks").join(s);
            assert!(
                std::fs::read(x.join(&rel)).unwrap() == std::fs::read(y.join(&rel)).unwrap(),
                "{} differs from promtool's",
                x.join(&rel).display()
            );
        }
        assert!(
            std::fs::read(x.join("index")).unwrap() == std::fs::read(y.join("index")).unwrap(),
            "{} differs from promtool's",
            x.join("index").display()
        );
        assert_eq!(
            std::fs::read(x.join("tombstones")).unwrap(),
            std::fs::read(y.join("tombstones")).unwrap()
        );
    }
    a.len()
}

#[test]
fn fixture_block_is_byte_identical_to_promtools() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("data");
    let printed = import(&fixture("promtool-2.42-block.input.om"), &out);
    assert!(printed.starts_with("BLOCK ULID"), "{printed}");
    let blocks = blocks_by_min_time(&out);
    assert_eq!(blocks.len(), 1);
    let ours = &blocks[0].1;
    let golden = fixture("promtool-2.42-block");
    for f in ["chunks/000001", "index", "tombstones"] {
        assert!(
            std::fs::read(ours.join(f)).unwrap() == std::fs::read(golden.join(f)).unwrap(),
            "{f} differs from the promtool 2.42 fixture"
        );
    }
    assert_eq!(meta_without_ulids(ours), meta_without_ulids(&golden));
    // Nothing but the block is left behind (no staging or spill files).
    let entries: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

/// A deterministic input exercising what the byte comparison must cover: several windows
/// (2 h aligned, some not 4 h aligned), irregular and fractional timestamps, dense series cut
/// at 240 samples, sparse series, special values, escapes, metadata and exemplar lines,
/// exact duplicate samples, empty label values.
fn mixed_input() -> String {
    let mut s = String::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    s.push_str("# HELP req_total Requests.\n# TYPE req_total counter\n");
    s.push_str("# TYPE temp_celsius gauge\n# UNIT temp_celsius celsius\n");
    let t0: i64 = 1_700_000_000_000 - 3 * 3_600_000 + 1234; // not aligned
    let specials = [
        "NaN",
        "+Inf",
        "-Inf",
        "-0",
        "1e-05",
        "123456",
        "1234567",
        "1.5e+300",
        "5e-324",
        "0.1",
        "-2.5",
        "1e21",
        "0.0001",
        "100000",
        "3.14159265358979",
    ];
    let mut t = t0;
    let mut counter = 0u64;
    for step in 0..2400 {
        // Irregular scrape interval between 1 and 20 s, with a 40 min gap once.
        t += 1000 + (rnd() % 19_000) as i64;
        if step == 1000 {
            t += 40 * 60_000;
        }
        let secs = format!("{}.{:03}", t / 1000, t % 1000);
        counter += rnd() % 100;
        s.push_str(&format!(
            "req_total{{code=\"200\",path=\"/a\\\\b\\\"c\\nd\"}} {counter} {secs}\n"
        ));
        if step % 7 == 0 {
            s.push_str(&format!(
                "req_total{{code=\"500\",path=\"\"}} {} {secs} # {{trace_id=\"x{step}\"}} 1 {secs}\n",
                step / 7
            ));
        }
        let v = specials[(rnd() % specials.len() as u64) as usize];
        s.push_str(&format!("temp_celsius{{sensor=\"s1\"}} {v} {secs}\n"));
        let g = (rnd() % 2_000_000) as f64 / 1000.0 - 1000.0;
        s.push_str(&format!("temp_celsius{{sensor=\"s2\"}} {g} {secs}\n"));
        if step % 3 == 0 {
            // An exact repeat is ignored by both.
            s.push_str(&format!("temp_celsius{{sensor=\"s2\"}} {g} {secs}\n"));
        }
        // A dense series: 30 samples 1 ms apart per step.
        for k in 0..30 {
            let tt = t + k;
            s.push_str(&format!(
                "dense {} {}.{:03}\n",
                rnd() % 5,
                tt / 1000,
                tt % 1000
            ));
        }
        if step % 400 == 0 {
            s.push_str(&format!("sparse{{unicode=\"ü→✓\"}} {step} {secs}\n"));
        }
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn mixed_input_is_byte_identical_to_promtools() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("mixed.om");
    std::fs::write(&input, mixed_input()).unwrap();
    let ours = d.path().join("ours");
    let theirs = d.path().join("promtool");
    import(&input, &ours);
    promtool_ok(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            theirs.to_str().unwrap(),
        ],
    );
    let n = assert_blocks_identical(&ours, &theirs);
    assert!(n >= 3, "the input spans several windows, got {n} blocks");
    // The dumps agree textually too, which checks our Go %g formatting of every value.
    let a = annals_ok(&["dump", ours.to_str().unwrap()]);
    let b = promtool_dump(&promtool, &theirs, &[]);
    assert!(a.lines().count() > 75_000);
    assert!(a == b, "dump text differs from promtool's");
}

#[test]
fn seven_second_scrapes_and_larger_blocks_match_promtool() {
    // 7 s samples make head chunk prediction depend on the chunk range (twice the block
    // duration), which `--max-block-duration` changes.
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("seven.om");
    let mut f = std::fs::File::create(&input).unwrap();
    let t0 = 1_763_856_000i64;
    for i in 0..4000 {
        writeln!(f, "a{{i=\"1\"}} {} {}", i % 17, t0 + 7 * i).unwrap();
        writeln!(f, "b {} {}", (i as f64).sqrt(), t0 + 7 * i + 3).unwrap();
    }
    writeln!(f, "# EOF").unwrap();
    drop(f);
    for (flag, want_blocks) in [("2h", 4), ("8h", 2)] {
        let ours = d.path().join(format!("ours-{flag}"));
        let theirs = d.path().join(format!("promtool-{flag}"));
        let arg = format!("--max-block-duration={flag}");
        annals_ok(&[
            "import",
            "openmetrics",
            &arg,
            "-q",
            input.to_str().unwrap(),
            ours.to_str().unwrap(),
        ]);
        promtool_ok(
            &promtool,
            &[
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                &arg,
                "-q",
                input.to_str().unwrap(),
                theirs.to_str().unwrap(),
            ],
        );
        assert_eq!(
            assert_blocks_identical(&ours, &theirs),
            want_blocks,
            "{flag}"
        );
    }
}

/// Bytes of the chunk segment files of every block of `dir`, and the samples they hold.
fn chunk_bytes_and_samples(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut samples = 0;
    for (_, b) in blocks_by_min_time(dir) {
        for e in std::fs::read_dir(b.join("chunks")).unwrap() {
            bytes += e.unwrap().metadata().unwrap().len();
        }
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("meta.json")).unwrap()).unwrap();
        samples += v["stats"]["numSamples"].as_u64().unwrap();
    }
    (bytes, samples)
}

/// Imports the node-exporter data set with annals into `dir` (gzip input, decompressed on
/// the fly).
pub fn import_node_exporter(dir: &Path) {
    import(&data("node-exporter-15s.om.gz"), dir);
}

#[test]
fn node_exporter_matches_promtool() {
    let Some(promtool) = promtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let ours = d.path().join("ours");
    import_node_exporter(&ours);

    // promtool reads plain text only.
    let plain = d.path().join("node-exporter-15s.om");
    let mut gz = read_all(&data("node-exporter-15s.om.gz"));
    std::fs::File::create(&plain)
        .unwrap()
        .write_all(&std::mem::take(&mut gz))
        .unwrap();
    let theirs = d.path().join("promtool");
    promtool_ok(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            plain.to_str().unwrap(),
            theirs.to_str().unwrap(),
        ],
    );
    assert_eq!(assert_blocks_identical(&ours, &theirs), 2);

    let (ob, os) = chunk_bytes_and_samples(&ours);
    let (pb, ps) = chunk_bytes_and_samples(&theirs);
    assert_eq!(os, 507 * 900);
    assert_eq!((ob, os), (pb, ps));
    println!(
        "node-exporter bytes per sample (chunk files): annals {:.4}, promtool {:.4}",
        ob as f64 / os as f64,
        pb as f64 / ps as f64
    );

    // promtool can read our blocks; its dump of them equals its dump of its own, and ours.
    let ours_copy = d.path().join("ours-copy");
    copy_dir(&ours, &ours_copy);
    let theirs_dump = promtool_dump(&promtool, &theirs, &[]);
    let ours_by_promtool = promtool_dump(&promtool, &ours_copy, &[]);
    assert_eq!(theirs_dump.lines().count(), 456_300);
    assert!(ours_by_promtool == theirs_dump);
    let ours_dump = annals_ok(&["dump", ours.to_str().unwrap()]);
    assert!(
        ours_dump == theirs_dump,
        "annals dump differs from promtool's"
    );

    // `promtool tsdb list` and `analyze` succeed on our directory and agree with annals.
    let list = promtool_ok(&promtool, &["tsdb", "list", ours.to_str().unwrap()]);
    assert_eq!(list.lines().count(), 3, "{list}");
    assert_eq!(annals_ok(&["list", ours.to_str().unwrap()]), list);
    assert_eq!(
        annals_ok(&["list", "-r", ours.to_str().unwrap()]),
        promtool_ok(&promtool, &["tsdb", "list", "-r", ours.to_str().unwrap()])
    );
    for (_, b) in blocks_by_min_time(&ours) {
        let id = b.file_name().unwrap().to_str().unwrap();
        let a = promtool_ok(
            &promtool,
            &["tsdb", "analyze", "--extended", ours.to_str().unwrap(), id],
        );
        assert!(a.contains("Series: 507"), "{a}");
        assert!(a.contains("100%: ####"), "{a}");
    }
}

fn read_all(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut r = annals_cli::import::open_input(path).unwrap();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn standard_input_and_human_readable_table() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["import", "openmetrics", "-r", "-", out.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("promtool-2.42-block.input.om")).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("2023-11-14 22:13:20 +0000 UTC  2023-11-14 22:14:05 +0000 UTC  45.001s"),
        "{text}"
    );
    assert!(text.contains("955B"), "{text}");
}

#[test]
fn a_failed_import_leaves_the_directory_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("data");
    import(&fixture("promtool-2.42-block.input.om"), &out);
    let before = tree(&out);
    // Valid syntax throughout; the out-of-order sample is in the second window, found only
    // after the first window's block was written.
    let input = d.path().join("bad.om");
    std::fs::write(&input, "a 1 1000\na 2 8000\na 3 7300\na 4 7200.5\n# EOF\n").unwrap();
    let err = annals_err(&[
        "import",
        "openmetrics",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("line 3: out of order sample"), "{err}");
    assert_eq!(tree(&out), before);
}

/// An import killed with SIGKILL leaves its staging directory: `list` names it, the next
/// import removes it (and says so), and a live import's directory is never touched.
#[test]
fn killed_import_leftovers_are_named_then_removed() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    // Fed through a pipe that stays open, the import is mid-read when it is killed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["import", "openmetrics", "-", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let staging = out.join(format!(".annals-import-{pid}.tmp"));
    let mut stdin = child.stdin.take().unwrap();
    let mut text = String::new();
    for i in 0..50_000 {
        text.push_str(&format!(
            "m{{i=\"{}\"}} {i} {}\n",
            i % 100,
            1_700_000_000 + i / 100
        ));
    }
    stdin.write_all(text.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !staging.join("lock").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // While it runs, its directory is not a leftover.
    let listed = annals(&["list", out.to_str().unwrap()]);
    assert!(listed.status.success());
    assert!(!String::from_utf8_lossy(&listed.stderr).contains("was left by"));

    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(staging.exists(), "SIGKILL leaves the staging directory");

    let listed = annals(&["list", out.to_str().unwrap()]);
    assert!(listed.status.success());
    let warning = String::from_utf8_lossy(&listed.stderr);
    assert!(
        warning.contains(&format!(
            "was left by an import (pid {pid}) that was killed"
        )),
        "{warning}"
    );
    assert!(staging.exists(), "list changes nothing");

    let input = dir.path().join("small.om");
    std::fs::write(&input, "m{i=\"0\"} 1 1700000000\n# EOF\n").unwrap();
    let imported = annals(&[
        "import",
        "openmetrics",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{imported:?}");
    let said = String::from_utf8_lossy(&imported.stderr);
    assert!(
        said.contains(&format!("left by an import (pid {pid}) that was killed")),
        "{said}"
    );
    assert!(!staging.exists());
    let listed = annals(&["list", out.to_str().unwrap()]);
    assert!(listed.stderr.is_empty(), "{listed:?}");
}
