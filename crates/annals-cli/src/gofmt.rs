//! Go's text forms of numbers, durations, times and tables, as `promtool` prints them, so that
//! our output can be compared with promtool's line for line.
//!
//! * [`float_g`]: `fmt.Sprintf("%g", v)` for a `float64` (`promtool tsdb dump` values).
//! * [`duration`]: `time.Duration.String()` (`1h59m45.001s`), [`parse_duration`] its inverse
//!   for flags such as `--max-block-duration=2h`.
//! * [`unix_utc`]: `time.Unix(s, 0).UTC().String()` (`2025-11-23 00:00:00 +0000 UTC`).
//! * [`base2_bytes`]: `units.Base2Bytes(n).String()` (`389KiB525B`).
//! * [`Table`]: `text/tabwriter` with promtool's settings.

use std::fmt::Write;

/// `fmt.Sprintf("%g", v)`: the shortest decimal that reads back as `v`, in `%e` form
/// (`1.5e+06`, at least two exponent digits) when the exponent is below -4 or at least 6
/// (strconv's rule for the shortest precision), else in `%f` form; `NaN`, `+Inf`, `-Inf`,
/// `-0`.
pub fn float_g(v: f64) -> String {
    let mut s = String::new();
    write_float_g(&mut s, v);
    s
}

/// Appends [`float_g`]`(v)` to `out` without allocating.
pub fn write_float_g(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` prints the shortest round-tripping digits, like Go's shortest mode:
    // `d[.ddd]e<exp>`.
    let mut sci = String::with_capacity(32);
    write!(sci, "{:e}", v.abs()).expect("writing to a String cannot fail");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} output has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        digits[nd] = b;
        nd += 1;
    }
    let digits = &digits[..nd];
    if !(-4..6).contains(&exp) {
        out.push(digits[0] as char);
        if nd > 1 {
            out.push('.');
            out.extend(digits[1..].iter().map(|&d| d as char));
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        write!(out, "{e}").expect("writing to a String cannot fail");
        return;
    }
    // Decimal point position: value = 0.d1d2... * 10^dp.
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.extend(digits.iter().map(|&d| d as char));
        return;
    }
    let dp = dp as usize;
    for i in 0..dp {
        out.push(digits.get(i).map_or('0', |&d| d as char));
    }
    if nd > dp {
        out.push('.');
        out.extend(digits[dp..].iter().map(|&d| d as char));
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `time.Duration(ns).String()`: `0s`, `1.5ms`, `2µs`, `1h2m3.5s`, `-4m0s`.
pub fn duration(ns: i64) -> String {
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u == 0 {
        return "0s".into();
    }
    if u < NANOS_PER_SEC {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let scale = 10u64.pow(prec);
        write!(out, "{}", u / scale).expect("write to String");
        push_fraction(&mut out, u % scale, prec as usize);
        out.push_str(unit);
        return out;
    }
    let frac = u % NANOS_PER_SEC;
    u /= NANOS_PER_SEC;
    let (h, m, s) = (u / 3600, (u / 60) % 60, u % 60);
    if h > 0 {
        write!(out, "{h}h").expect("write to String");
    }
    if u >= 60 {
        write!(out, "{m}m").expect("write to String");
    }
    write!(out, "{s}").expect("write to String");
    push_fraction(&mut out, frac, 9);
    out.push('s');
    out
}

/// `.ddd` of `frac / 10^width` without trailing zeros; nothing when `frac` is 0.
fn push_fraction(out: &mut String, frac: u64, width: usize) {
    if frac == 0 {
        return;
    }
    let digits = format!("{frac:0width$}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// Parses a Go duration (`time.ParseDuration`): a signed sequence of decimal numbers with
/// units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, e.g. `2h`, `1h30m`, `1.5h`; `0` alone is
/// allowed. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 2h, 90m, 1h30m)");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        let mut unit_frac = scale;
        for d in frac.bytes() {
            unit_frac /= 10;
            value += u128::from(d - b'0') * unit_frac;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i64::MAX as u128 {
            return Err(bad());
        }
    }
    let total = total as i64;
    Ok(if neg { -total } else { total })
}

/// `time.Unix(secs, 0).UTC().String()`: `2006-01-02 15:04:05 +0000 UTC`.
pub fn unix_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    format!(
        "{year}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `units.Base2Bytes(n).String()` as promtool prints sizes with `-r`: every non-zero
/// base-1024 digit with its unit, largest first (`1MiB3KiB`, `389KiB525B`, `0B`).
pub fn base2_bytes(n: i64) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let mut parts: Vec<String> = Vec::new();
    let mut n = n;
    for (i, u) in UNITS.iter().enumerate() {
        if n % 1024 != 0 || (i == 0 && n == 0) {
            let suffix = if i == 0 { "B" } else { "iB" };
            parts.push(format!("{}{u}{suffix}", n % 1024));
        }
        n /= 1024;
        if n == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

/// Rows of cells aligned like Go's `tabwriter.NewWriter(w, minwidth, 0, padding, ' ', 0)`:
/// every column but the last is as wide as its widest cell plus `padding`, at least
/// `minwidth`; the last cell of a row is printed as is.
#[derive(Debug, Clone)]
pub struct Table {
    minwidth: usize,
    padding: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(minwidth: usize, padding: usize) -> Table {
        Table {
            minwidth,
            padding,
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The aligned text, one line per row.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![self.minwidth; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
                widths[i] = widths[i].max(c.chars().count() + self.padding);
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                out.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i] - c.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_g_matches_go() {
        // Expected strings are what Go's fmt.Sprintf("%g", v) prints.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1.806288e6, "1.806288e+06"),
            (100000.0, "100000"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (1.5e-300, "1.5e-300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1700000000.5, "1.7000000005e+09"),
            (0.25, "0.25"),
            (409600.0, "409600"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::from_bits(0x7ff0_0000_0000_0002), "NaN"),
        ];
        for &(v, want) in cases {
            assert_eq!(float_g(v), want, "{v:e}");
        }
    }

    #[test]
    fn durations_print_like_go() {
        let ms = |m: i64| m * 1_000_000;
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(1), "1ns");
        assert_eq!(duration(1_500), "1.5µs");
        assert_eq!(duration(ms(1)), "1ms");
        assert_eq!(duration(ms(999)), "999ms");
        assert_eq!(duration(ms(1000)), "1s");
        assert_eq!(duration(ms(60_000)), "1m0s");
        assert_eq!(duration(ms(7_200_000)), "2h0m0s");
        assert_eq!(duration(ms(7_185_001)), "1h59m45.001s");
        assert_eq!(duration(ms(6_285_001)), "1h44m45.001s");
        assert_eq!(duration(-ms(90_000)), "-1m30s");
        assert_eq!(duration(i64::MIN), "-2562047h47m16.854775808s");
    }

    #[test]
    fn durations_parse_like_go() {
        let h = 3_600_000_000_000i64;
        assert_eq!(parse_duration("2h"), Ok(2 * h));
        assert_eq!(parse_duration("1h30m"), Ok(h + h / 2));
        assert_eq!(parse_duration("1.5h"), Ok(h + h / 2));
        assert_eq!(parse_duration("90m"), Ok(h + h / 2));
        assert_eq!(parse_duration("7200s"), Ok(2 * h));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-1m"), Ok(-60_000_000_000));
        for bad in ["", "2", "h", "2x", "1.2.3h", ".h", "-", "9999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_and_sizes_print_like_go() {
        assert_eq!(unix_utc(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(unix_utc(1_763_856_000), "2025-11-23 00:00:00 +0000 UTC");
        assert_eq!(unix_utc(1_763_862_785), "2025-11-23 01:53:05 +0000 UTC");
        assert_eq!(unix_utc(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(unix_utc(-1), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(base2_bytes(0), "0B");
        assert_eq!(base2_bytes(1024), "1KiB");
        assert_eq!(base2_bytes(398_861), "389KiB525B");
        assert_eq!(base2_bytes(1_051_648), "1MiB3KiB");
    }

    #[test]
    fn table_aligns_like_tabwriter() {
        let mut t = Table::new(13, 2);
        t.row(["BLOCK ULID", "MIN TIME", "SIZE"]);
        assert_eq!(t.render(), "BLOCK ULID   MIN TIME     SIZE\n");
        t.row(["01M8396A503TACQT84BKW870RK", "1763856000000", "1"]);
        assert_eq!(
            t.render(),
            "BLOCK ULID                  MIN TIME       SIZE\n\
             01M8396A503TACQT84BKW870RK  1763856000000  1\n"
        );
    }
}
