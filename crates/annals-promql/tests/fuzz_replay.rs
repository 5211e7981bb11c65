//! The PromQL fuzz targets (`fuzz/fuzz_targets/promql_*.rs`) on stable Rust, for CI: each
//! target's body runs on seeds (the compatibility corpus, the test scripts' queries, and
//! generator inputs for `promql_eval`) and on seeded mutations of them. A panic here is a
//! crash of the target; coverage-guided runs use `cargo +nightly fuzz run`.

/// Turns a fuzz target's body into `pub fn run(data: &[u8])`; the targets reach it through
/// `use libfuzzer_sys::fuzz_target;`.
#[macro_export]
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        pub fn run($data: &[u8]) $body
    };
}

extern crate self as libfuzzer_sys;

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/promql_parse.rs"]
mod promql_parse_target;

#[allow(unused_attributes, unused_imports)]
#[path = "../../../fuzz/fuzz_targets/promql_eval.rs"]
mod promql_eval_target;

use std::path::Path;

/// The queries of the compatibility corpus and of every test script.
fn seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut out: Vec<String> = std::fs::read_to_string(dir.join("compat/corpus.promql"))
        .expect("corpus")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for e in std::fs::read_dir(dir.join("scripts")).expect("scripts") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("script");
        for l in text.lines() {
            let l = l.trim();
            if l.starts_with("eval") {
                if let Some(i) = l.find(" at ") {
                    if let Some((_, q)) = l[i + 4..].split_once(' ') {
                        out.push(q.to_owned());
                    }
                }
            }
        }
    }
    // Regression inputs: ones that once crashed a target stay here.
    out.extend([
        "(".repeat(300) + "1" + &")".repeat(300),
        "-".repeat(1000) + "1",
        "1".repeat(400) + "e99999",
        "foo[1y1w1d1h1m1s1ms:1ms]".into(),
        "\"\\u00e9\\U0001F600\\x41\\101\"".into(),
        "{a=~\"(?i)x|\\\\d\"}".into(),
        "sum(rate(x[5m])) by (a) > bool on() group_left sum(x)".into(),
    ]);
    out
}

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn mutate(rng: &mut Rng, s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    for _ in 0..1 + rng.next() % 3 {
        if v.is_empty() {
            v.push(b'(');
        }
        let i = (rng.next() % v.len() as u64) as usize;
        match rng.next() % 4 {
            0 => v[i] ^= 1 << (rng.next() % 8),
            1 => v.truncate(i),
            2 => {
                const BYTES: &[u8] = b"()[]{}\"',=~!+-*/%^@: offset by 5m 1e3 NaN Inf";
                let b = BYTES[(rng.next() % BYTES.len() as u64) as usize];
                v.insert(i, b);
            }
            _ => {
                let j = (rng.next() % v.len() as u64) as usize;
                let piece = v[j..].iter().take(8).copied().collect::<Vec<_>>();
                v.splice(i..i, piece);
            }
        }
    }
    v
}

#[test]
fn promql_parse_target_survives_seeds_and_mutations() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for s in seeds() {
        promql_parse_target::run(s.as_bytes());
        for _ in 0..8 {
            promql_parse_target::run(&mutate(&mut rng, s.as_bytes()));
        }
    }
}

#[test]
fn promql_eval_target_survives_seeds_and_generated_queries() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let seeds = seeds();
    for s in seeds.iter().step_by(2) {
        promql_eval_target::run(s.as_bytes());
        promql_eval_target::run(&mutate(&mut rng, s.as_bytes()));
    }
    for _ in 0..300 {
        let mut data = vec![0u8];
        data.extend((0..64).map(|_| rng.next() as u8));
        promql_eval_target::run(&data);
    }
}
