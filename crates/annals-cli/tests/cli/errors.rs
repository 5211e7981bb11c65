//! Bad input and bad arguments: a clear message and a non-zero exit status.

use std::path::Path;

use crate::support::*;

/// Imports `input` into a fresh directory and returns stderr of the failure; checks that
/// nothing was left behind.
fn import_fails(input: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.om");
    std::fs::write(&file, input).unwrap();
    let out = d.path().join("data");
    let err = annals_err(&[
        "import",
        "openmetrics",
        file.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(err.starts_with("error: importing "), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "left files behind"
    );
    err
}

#[test]
fn import_reports_bad_input_with_its_line() {
    let cases = [
        ("a 1 1\nb 2 2\n", "line 3: data does not end with # EOF"),
        ("a 1 1\nb 2 2", "line 2: data does not end with # EOF"),
        ("a 1 10\na 2 5\n# EOF\n", "line 2: out of order sample: {__name__=\"a\"} at 5000 is older than its sample at 10000"),
        ("a 1 10\na 2 10\n# EOF\n", "line 2: duplicate sample for timestamp 10000 of {__name__=\"a\"}"),
        ("a 1 10\na{b=\"c\"} 1\n# EOF\n", "line 2: sample of {__name__=\"a\", b=\"c\"} has no timestamp"),
        ("a 1 1\nthis is not openmetrics\n# EOF\n", "line 2: invalid value"),
        ("a 1 1\n{} 1 1\n# EOF\n", "line 2: '{' is not a valid start of a line"),
        ("a 1 1\n\n# EOF\n", "line 2: blank lines are not allowed"),
        ("# some comment\n# EOF\n", "line 1: unsupported comment"),
        ("a{b=\"1\",b=\"2\"} 1 1\n# EOF\n", "line 1: label name \"b\" is not unique"),
        ("a one 1\n# EOF\n", "line 1: invalid value"),
        ("a 1 yesterday\n# EOF\n", "line 1: invalid timestamp"),
        ("a 1 1\n# EOF\na 2 2\n", "line 3: unexpected data after # EOF"),
        ("\u{1}\u{2}garbage\u{ff}\n# EOF\n", "line 1: byte 0x01 is not a valid start"),
    ];
    for (input, want) in cases {
        let err = import_fails(input);
        assert!(
            err.contains(want),
            "input {input:?}:\nwant {want:?}\ngot  {err}"
        );
    }
}

#[test]
fn missing_paths_and_bad_arguments() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let m = missing.to_str().unwrap();
    for args in [vec!["list", m], vec!["dump", m], vec!["analyze", m]] {
        let err = annals_err(&args);
        assert!(
            err.contains("cannot open data directory") && err.contains("nope"),
            "{args:?}: {err}"
        );
    }
    let err = annals_err(&[
        "import",
        "openmetrics",
        m,
        d.path().join("out").to_str().unwrap(),
    ]);
    assert!(
        err.contains("cannot open input") && err.contains("No such file"),
        "{err}"
    );
    assert!(!d.path().join("out").exists());

    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let err = annals_err(&["analyze", e]);
    assert!(err.contains("no blocks found"), "{err}");
    let err = annals_err(&["dump", "--match=up{", e]);
    assert!(err.contains("invalid --match selector"), "{err}");
    let err = annals_err(&["dump", r#"--match={a=~".*"}"#, e]);
    assert!(err.contains("does not match the empty string"), "{err}");
    // One rule for an empty time range (issue 16 item 8): an error, as in the library.
    let err = annals_err(&["dump", "--min-time=10", "--max-time=5", e]);
    assert!(err.contains("--min-time 10 is after --max-time 5"), "{err}");
    // `--progress` is global; progress goes to stderr, never into the output.
    assert_eq!(annals_ok(&["--progress", "dump", e]), "");
    assert_eq!(annals_ok(&["dump", "--progress", e]), "");

    let file = d.path().join("in.om");
    std::fs::write(&file, "a 1 1\n# EOF\n").unwrap();
    let err = annals_err(&[
        "import",
        "openmetrics",
        "--max-block-duration=2 hours",
        file.to_str().unwrap(),
        e,
    ]);
    assert!(
        err.contains("--max-block-duration") && err.contains("invalid duration"),
        "{err}"
    );

    // Usage errors come from the argument parser with status 2.
    let out = annals(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = annals(&["dump"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<DIR>"));
}

#[test]
fn corrupt_blocks_are_reported_with_the_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    copy_dir(&fixture("node-exporter-blocks"), &dir);
    let index = dir.join("01M8396A503TACQT84BKW870RK/index");
    let mut b = std::fs::read(&index).unwrap();
    b[100] ^= 0xff;
    std::fs::write(&index, b).unwrap();
    for cmd in ["list", "dump", "analyze"] {
        let mut args = vec![cmd, dir.to_str().unwrap()];
        if cmd == "analyze" {
            args.push("01M8396A503TACQT84BKW870RK");
        }
        let err = annals_err(&args);
        assert!(err.contains(&index.display().to_string()), "{cmd}: {err}");
    }
}

#[test]
fn help_is_everywhere() {
    for args in [
        &["--help"][..],
        &["import", "--help"],
        &["import", "openmetrics", "--help"],
        &["list", "--help"],
        &["dump", "--help"],
        &["analyze", "--help"],
    ] {
        let out = annals_ok(args);
        assert!(out.contains("Usage: annals"), "{args:?}: {out}");
    }
    let out = annals_ok(&["import", "openmetrics", "--help"]);
    assert!(out.contains("--max-block-duration"), "{out}");
    assert!(Path::new(env!("CARGO_BIN_EXE_annals")).is_file());
}
