//! The PromQL parser on arbitrary UTF-8: never panics (nor overflows the stack), and whatever
//! parses prints as PromQL that parses again to something that prints the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = annals_promql::parser::parse_selector(s);
    let Ok(expr) = annals_promql::parser::parse(s) else {
        return;
    };
    let printed = expr.to_string();
    let again = annals_promql::parser::parse(&printed)
        .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(again.to_string(), printed, "{s:?}");
    assert_eq!(again.value_type(), expr.value_type(), "{s:?}");
});
