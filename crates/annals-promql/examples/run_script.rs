//! Runs one test script: `cargo run --example run_script -- FILE.test`.
fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: run_script FILE.test");
    let text = std::fs::read_to_string(&path).expect("readable script");
    match annals_promql::script::Script::parse(&text).and_then(|s| s.run()) {
        Ok(st) => println!("{path}: ok ({} evals, {} queries)", st.evals, st.queries),
        Err(e) => {
            println!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
