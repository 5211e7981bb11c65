//! Runs every test script in `tests/scripts/*.test` (Prometheus's test-script format).

use std::path::Path;

use annals_promql::script::Script;

#[test]
fn scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scripts exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", dir.display());
    let only = std::env::var("PROMQL_SCRIPT").ok();
    let mut failures = Vec::new();
    let (mut evals, mut queries) = (0, 0);
    for p in &paths {
        let name = p
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(p).expect("readable script");
        match Script::parse(&text).and_then(|s| s.run()) {
            Ok(st) => {
                evals += st.evals;
                queries += st.queries;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{} scripts, {evals} evals, {queries} queries", paths.len());
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
