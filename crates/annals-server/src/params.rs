//! Request parameters as Prometheus 2.42's API reads them: form values from a POST
//! `application/x-www-form-urlencoded` body first, then the URL query (Go's `r.FormValue`);
//! times as Unix seconds with a fraction or RFC 3339; durations as float seconds or
//! Prometheus durations (`1h30m`); `match[]` selectors.

use annals::{Labels, Matcher};

/// The minimum time of the API (`minTime` in `api.go`), in ms: the earliest instant Go's
/// `time.Time` round-trips through Unix milliseconds.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// The maximum time of the API (`maxTime` in `api.go`), in ms.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// `minTime` formatted as RFC 3339 (Go's layout cannot parse years beyond 4 digits, so
/// Prometheus accepts these two strings literally).
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// `maxTime` formatted as RFC 3339.
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// Form values of one request, POST body values first.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the form body (if any) and the URL query.
    pub fn parse(body: Option<&[u8]>, query: Option<&str>) -> Params {
        let mut pairs = Vec::new();
        if let Some(b) = body {
            pairs.extend(form_urlencoded::parse(b).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params { pairs }
    }

    /// The first value of `name`, or `""` (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `s` as Prometheus's `parseTime`: a float of Unix seconds (rounded to ms), RFC 3339
/// with optional fraction, or the API's literal min/max times. Returns ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Some(f) = parse_go_float(s) {
        if f.is_finite() {
            let secs = f.trunc();
            let frac = ((f - secs) * 1000.0).round();
            // Go converts with int64(s): beyond the range the result is unspecified; refuse.
            if secs.abs() < 9.2e15 {
                return Ok(secs as i64 * 1000 + frac as i64);
            }
        }
        return Err(format!("cannot parse {} to a valid timestamp", go_quote(s)));
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {} to a valid timestamp", go_quote(s))),
    }
}

/// `parseTimeParam`: the default when the parameter is absent or empty.
pub fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, String> {
    let v = p.get(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| format!("Invalid time value for '{name}': {e}"))
}

/// Parses `s` as Prometheus's API `parseDuration`: float seconds (may be negative) or a
/// Prometheus duration. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(f) = parse_go_float(s) {
        let ns = f * 1e9;
        if ns.is_nan() || ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
            return Err(format!(
                "cannot parse {} to a valid duration. It overflows int64",
                go_quote(s)
            ));
        }
        return Ok(ns as i64);
    }
    if let Ok(ms) = parse_prometheus_duration(s) {
        return Ok(ms.saturating_mul(1_000_000));
    }
    Err(format!("cannot parse {} to a valid duration", go_quote(s)))
}

/// Parses a Prometheus duration (`model.ParseDuration`): `[0-9]+` with units `y w d h m s ms`
/// in that order, each at most once, or `0`. Returns ms.
pub fn parse_prometheus_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    if s == "0" {
        return Ok(0);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {}", go_quote(s));
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let n: i64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let Some(k) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
            return Err(bad());
        };
        let k = next_unit + k;
        next_unit = k + 1;
        total = n
            .checked_mul(UNITS[k].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(total)
}

/// `match[]` selectors, each of which must contain a matcher that does not match the empty
/// string (`parseMatchersParam`).
pub fn matcher_sets<'a>(
    selectors: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::new();
    for s in selectors {
        sets.push(annals::parse_selector(s).map_err(|e| e.to_string())?);
    }
    for set in &sets {
        if set.iter().all(|m| m.matches("")) {
            return Err("match[] must contain at least one non-empty matcher".into());
        }
    }
    Ok(sets)
}

/// Go's `strconv.Quote` for the strings that appear in error messages.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` is what Go's `strconv.ParseFloat` accepts (decimal, exponent, `inf`,
/// `infinity`, `nan` in any case, hex floats excepted), and its value.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.to_ascii_lowercase().parse().ok();
    }
    // Rust also accepts what Go does for decimals; it rejects `_` separators as Go does
    // without a base prefix.
    if t.is_empty()
        || !t
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// RFC 3339 with an optional fraction of up to 9 digits (Go's `time.RFC3339Nano` layout), to
/// ms (truncating the fraction as `timestamp.FromTime` does).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_s = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *c == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(secs * 1000 + nanos / 1_000_000)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix nanoseconds as Go's `time.RFC3339Nano` in UTC (trailing fraction zeros
/// dropped), as `time.Time` marshals to JSON.
pub fn format_rfc3339_nano(unix_nanos: i128) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000) as i64;
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if nanos != 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Whether `name` matches `model.LabelNameRE` (`^[a-zA-Z_][a-zA-Z0-9_]*$`).
pub fn is_valid_label_name(name: &str) -> bool {
    annals::is_valid_label_name(name)
}

/// Labels of a remote-write series, or why they are refused.
pub fn labels_from_proto(labels: &[annals_prompb::proto::Label]) -> Result<Labels, String> {
    Labels::new(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(parse_time("-1.5").unwrap(), -1500);
        assert_eq!(parse_time("0.0004").unwrap(), 0);
        assert_eq!(parse_time("0.0005").unwrap(), 1);
        assert_eq!(parse_time("1e3").unwrap(), 1_000_000);
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("2015-07-01T20:10:51Z").unwrap(),
            1_435_781_451_000
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51.7819+02:00").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time("1970-01-01T00:00:00-00:30").unwrap(), 1_800_000);
        assert_eq!(parse_time(MIN_TIME_FORMATTED).unwrap(), MIN_TIME_MS);
        assert_eq!(parse_time(MAX_TIME_FORMATTED).unwrap(), MAX_TIME_MS);
        assert_eq!(MIN_TIME_MS, -9_223_309_901_257_974_000);
        assert_eq!(MAX_TIME_MS, 9_223_309_901_257_974_999);
        for bad in [
            "",
            "abc",
            "2015-07-01",
            "2015-13-01T00:00:00Z",
            "2015-02-29T00:00:00Z",
            "2015-07-01T20:10:51",
            "2015-07-01 20:10:51Z",
            "2015-07-01T20:10:51.Z",
            "NaN",
            "Inf",
            "1e400",
            "0x10",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.starts_with("cannot parse"), "{bad}: {e}");
        }
        assert_eq!(
            parse_time("abc").unwrap_err(),
            r#"cannot parse "abc" to a valid timestamp"#
        );
    }

    #[test]
    fn durations_parse_as_prometheus() {
        assert_eq!(parse_duration("15").unwrap(), 15_000_000_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_duration("-1").unwrap(), -1_000_000_000);
        assert_eq!(parse_duration("5m").unwrap(), 300_000_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(
            parse_duration("1d2h3m4s5ms").unwrap(),
            ((((24 + 2) * 60 + 3) * 60 + 4) * 1000 + 5) * 1_000_000
        );
        assert_eq!(parse_duration("1y").unwrap(), 365 * 86_400 * 1_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        for bad in ["", "5", "m", "5x", "1m1h", "1h1h", "1.5m", "-5m", "1e30"] {
            if bad == "5" || bad == "1e30" {
                continue; // float seconds: checked below
            }
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("1e30")
            .unwrap_err()
            .contains("overflows int64"));
        assert_eq!(
            parse_duration("abc").unwrap_err(),
            r#"cannot parse "abc" to a valid duration"#
        );
    }

    #[test]
    fn form_values_come_from_body_then_query() {
        let p = Params::parse(
            Some(b"match%5B%5D=a&x=1"),
            Some("x=2&match[]=b%7Bc%3D%22d%22%7D"),
        );
        assert_eq!(p.get("x"), "1");
        assert_eq!(p.get("missing"), "");
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["a", r#"b{c="d"}"#]);
    }

    #[test]
    fn matcher_sets_need_a_non_empty_matcher() {
        assert_eq!(matcher_sets(["up", r#"{job="a"}"#]).unwrap().len(), 2);
        // Prometheus's parser refuses it too ("vector selector must contain at least one
        // non-empty matcher"); annals's selector parser says so in its own words.
        let e = matcher_sets([r#"{job=~".*"}"#]).unwrap_err();
        assert!(
            e.contains("at least one matcher that does not match the empty string"),
            "{e}"
        );
        assert!(matcher_sets(["{"]).is_err());
    }

    #[test]
    fn rfc3339_formats_and_civil_dates_round_trip() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(1_435_781_451_781_000_000),
            "2015-07-01T20:10:51.781Z"
        );
        assert_eq!(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        for d in [-800_000, -1, 0, 1, 59, 60, 11_016, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), r#""a\"b\\\n\x01é""#);
    }
}
