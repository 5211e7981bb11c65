//! Literals as Prometheus 2.42 reads and prints them: numbers (Go's `strconv.ParseInt` with
//! base prefixes, then `ParseFloat`), strings (`strutil.Unquote`), durations
//! (`model.ParseDuration` / `model.Duration.String`) and Go's float formats.

/// Parses a number token: an integer with Go's base prefixes (`0x1f`, and `010` is octal), else
/// a float (`1.5e3`, `.5`, `Inf`, `NaN`). The error is the message Prometheus prints.
pub(crate) fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(v) = parse_go_int(s) {
        return Ok(v as f64);
    }
    parse_go_float(s).map_err(|e| format!("error parsing number: {e}"))
}

/// `strconv.ParseInt(s, 0, 64)` for the unsigned forms the lexer produces; `None` on any
/// error (syntax or range).
fn parse_go_int(s: &str) -> Option<i64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(digits, radix).ok()
}

/// `strconv.ParseFloat(s, 64)` for the forms the lexer produces, with Go's error text.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::go_quote(s)
        )
    };
    let lower = s.to_ascii_lowercase();
    let special = matches!(
        lower.trim_start_matches(['+', '-']),
        "inf" | "infinity" | "nan"
    );
    // Rust accepts the same decimal forms as Go; hexadecimal floats (which Go accepts only
    // with a `p` exponent) never reach here from the lexer in a valid form.
    if lower.contains('x') || lower.contains('_') {
        return Err(syntax());
    }
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            super::go_quote(s)
        ));
    }
    Ok(v)
}

/// Unquotes a string token (`"..."`, `'...'` with Go escapes, or a raw `` `...` ``), as
/// Prometheus's `strutil.Unquote`.
pub(crate) fn unquote(s: &str) -> Result<String, &'static str> {
    const SYNTAX: &str = "invalid syntax";
    let b = s.as_bytes();
    let n = b.len();
    if n < 2 || b[0] != b[n - 1] {
        return Err(SYNTAX);
    }
    let quote = b[0];
    let inner = &s[1..n - 1];
    if quote == b'`' {
        if inner.contains('`') {
            return Err(SYNTAX);
        }
        return Ok(inner.to_owned());
    }
    if quote != b'"' && quote != b'\'' {
        return Err(SYNTAX);
    }
    if inner.contains('\n') {
        return Err(SYNTAX);
    }
    if !inner.contains('\\') && !inner.as_bytes().contains(&quote) {
        return Ok(inner.to_owned());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::CharIndices>, n: usize| {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = chars
                .next()
                .and_then(|(_, c)| c.to_digit(16))
                .ok_or(SYNTAX)?;
            v = v * 16 + d;
        }
        Ok::<u32, &'static str>(v)
    };
    while let Some((_, c)) = chars.next() {
        if c as u32 == quote as u32 {
            return Err(SYNTAX);
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = chars.next().ok_or(SYNTAX)?;
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            'x' => out.push(hex(&mut chars, 2)? as u8),
            'u' | 'U' => {
                let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or(SYNTAX)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).expect("octal digit");
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|(_, c)| c.to_digit(8))
                        .ok_or(SYNTAX)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(SYNTAX);
                }
                out.push(v as u8);
            }
            '\'' | '"' if e as u32 == quote as u32 => out.push(quote),
            _ => return Err(SYNTAX),
        }
    }
    // Go strings may hold invalid UTF-8 (from `\x` escapes); ours cannot.
    Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
}

const MS_PER: [(char, &str, i64); 7] = [
    ('y', "y", 1000 * 60 * 60 * 24 * 365),
    ('w', "w", 1000 * 60 * 60 * 24 * 7),
    ('d', "d", 1000 * 60 * 60 * 24),
    ('h', "h", 1000 * 60 * 60),
    ('m', "m", 1000 * 60),
    ('s', "s", 1000),
    ('_', "ms", 1),
];

/// Parses a duration (`1h30m`, `5m`, `100ms`, `1y`) into milliseconds, as Prometheus's
/// `model.ParseDuration`: units from largest to smallest, each at most once.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    let invalid = || format!("not a valid duration string: {}", super::go_quote(s));
    let mut rest = s;
    let mut next_unit = 0;
    let mut total_ns: i64 = 0;
    let mut overflow = false;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (num, tail) = rest.split_at(digits);
        let (unit_idx, unit_len) = if tail.starts_with("ms") {
            (6, 2)
        } else {
            let c = tail.chars().next().ok_or_else(invalid)?;
            let i = MS_PER[..6]
                .iter()
                .position(|u| u.0 == c)
                .ok_or_else(invalid)?;
            (i, 1)
        };
        if unit_idx < next_unit {
            return Err(invalid());
        }
        next_unit = unit_idx + 1;
        rest = &tail[unit_len..];
        // Go's Atoi saturates out-of-range numbers, which then fail the range check.
        let n: i64 = num.parse().unwrap_or(i64::MAX);
        let mult = MS_PER[unit_idx].2;
        if n > i64::MAX / mult / 1_000_000 {
            overflow = true;
        }
        let add = n.wrapping_mul(1_000_000).wrapping_mul(mult);
        total_ns = total_ns.wrapping_add(add);
        if total_ns < 0 {
            overflow = true;
        }
    }
    if overflow {
        return Err("duration out of range".into());
    }
    Ok(total_ns / 1_000_000)
}

/// Formats milliseconds as Prometheus's `model.Duration.String` (`1h30m`, `90d`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut ms = ms;
    let mut r = String::new();
    for (i, (_, unit, mult)) in MS_PER.iter().enumerate() {
        let exact = i < 2;
        if exact && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            r.push_str(&v.to_string());
            r.push_str(unit);
            ms -= v * mult;
        }
    }
    r
}

/// Go's `%f` (six decimals; `+Inf`, `-Inf`, `NaN`).
pub(crate) fn go_format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that reads back exactly,
/// never with an exponent (`+Inf`, `-Inf`, `NaN` for the specials).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Go's `%v` / `strconv.FormatFloat(v, 'g', -1, 64)`: shortest digits, with an exponent when
/// it is below -4 or at least 6 (`1e+06`, `1e-05`, `123456`, `1.234567e+06`).
pub(crate) fn go_format_g(v: f64) -> String {
    if !v.is_finite() {
        return format_float(v);
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest digits and decimal exponent from Rust's `{:e}` (`1.2345e3`).
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    // The shortest format decides with precision 6: %e when exp < -4 || exp >= 6.
    let body = if !(-4..6).contains(&exp) {
        let mut s = digits[..1].to_string();
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{s}e{sign}{:02}", exp.abs())
    } else {
        format!("{}", v.abs())
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_reads_them() {
        assert_eq!(parse_number("010"), Ok(8.0));
        assert_eq!(parse_number("09"), Ok(9.0));
        assert_eq!(parse_number("0x1F"), Ok(31.0));
        assert_eq!(parse_number("1e3"), Ok(1000.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("5."), Ok(5.0));
        assert!(parse_number("Inf").is_ok_and(|v| v == f64::INFINITY));
        assert!(parse_number("NaN").is_ok_and(f64::is_nan));
        assert_eq!(
            parse_number("0x"),
            Err("error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax".into())
        );
        assert!(parse_number("1e400").is_err_and(|e| e.ends_with("value out of range")));
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("1h30m"), Ok(90 * 60_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400_000));
        assert_eq!(
            parse_duration("5m1h"),
            Err("not a valid duration string: \"5m1h\"".into())
        );
        assert_eq!(
            parse_duration("5y1hs"),
            Err("not a valid duration string: \"5y1hs\"".into())
        );
        assert_eq!(
            parse_duration("999999999999999999y"),
            Err("duration out of range".into())
        );
        assert_eq!(format_duration(90 * 60_000), "1h30m");
        assert_eq!(format_duration(90 * 86_400_000), "90d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(1500), "1s500ms");
    }

    #[test]
    fn strings_unquote_as_go() {
        assert_eq!(unquote(r#""a\nb""#), Ok("a\nb".into()));
        assert_eq!(unquote(r#"'a\'b'"#), Ok("a'b".into()));
        assert_eq!(unquote("`a\\nb`"), Ok("a\\nb".into()));
        assert_eq!(unquote(r#""\u00e9\101""#), Ok("éA".into()));
        assert!(unquote(r#""\'""#).is_err());
    }

    #[test]
    fn floats_format_as_go() {
        assert_eq!(go_format_g(1e6), "1e+06");
        assert_eq!(go_format_g(100000.0), "100000");
        assert_eq!(go_format_g(1234567.0), "1.234567e+06");
        assert_eq!(go_format_g(123456789.0), "1.23456789e+08");
        assert_eq!(go_format_g(0.0001), "0.0001");
        assert_eq!(go_format_g(0.00001), "1e-05");
        assert_eq!(go_format_g(-2.5), "-2.5");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go_format_f(1.5), "1.500000");
    }
}
