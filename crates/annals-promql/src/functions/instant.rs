//! Instant-vector functions that map each sample's value (`abs`, `ln`, `round`, `hour`, ...),
//! with Go's math and calendar semantics.

use super::FuncId;

/// Applies a value-mapping function. `args` are the function's scalar arguments at this step.
pub(crate) fn map_value(id: FuncId, v: f64, args: &[f64]) -> f64 {
    use FuncId::*;
    match id {
        Abs => v.abs(),
        Ceil => v.ceil(),
        Floor => v.floor(),
        Exp => v.exp(),
        Sqrt => v.sqrt(),
        Ln => v.ln(),
        Log2 => v.log2(),
        Log10 => v.log10(),
        Sin => v.sin(),
        Cos => v.cos(),
        Tan => v.tan(),
        Asin => v.asin(),
        Acos => v.acos(),
        Atan => v.atan(),
        Sinh => v.sinh(),
        Cosh => v.cosh(),
        Tanh => v.tanh(),
        Asinh => v.asinh(),
        Acosh => v.acosh(),
        Atanh => v.atanh(),
        Rad => v * std::f64::consts::PI / 180.0,
        Deg => v * 180.0 / std::f64::consts::PI,
        Sgn => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        ClampMax => args[0].min_go(v),
        ClampMin => args[0].max_go(v),
        Clamp => args[0].max_go(args[1].min_go(v)),
        Round => {
            let to_nearest = args.first().copied().unwrap_or(1.0);
            let inv = 1.0 / to_nearest;
            (v * inv + 0.5).floor() / inv
        }
        DaysInMonth | DayOfMonth | DayOfWeek | DayOfYear | Hour | Minute | Month | Year => {
            date_part(id, go_int64(v))
        }
        _ => f64::NAN,
    }
}

/// Go's `math.Min`/`math.Max`: NaN wins, and -0 < +0.
trait GoMinMax {
    fn min_go(self, o: f64) -> f64;
    fn max_go(self, o: f64) -> f64;
}

impl GoMinMax for f64 {
    fn min_go(self, o: f64) -> f64 {
        if self.is_infinite() && self < 0.0 || o.is_infinite() && o < 0.0 {
            return f64::NEG_INFINITY;
        }
        if self.is_nan() || o.is_nan() {
            return f64::NAN;
        }
        if self == 0.0 && o == 0.0 {
            return if self.is_sign_negative() { self } else { o };
        }
        if self < o {
            self
        } else {
            o
        }
    }

    fn max_go(self, o: f64) -> f64 {
        if self.is_infinite() && self > 0.0 || o.is_infinite() && o > 0.0 {
            return f64::INFINITY;
        }
        if self.is_nan() || o.is_nan() {
            return f64::NAN;
        }
        if self == 0.0 && o == 0.0 {
            return if self.is_sign_negative() { o } else { self };
        }
        if self > o {
            self
        } else {
            o
        }
    }
}

/// Go's `int64(f)` on amd64: truncation, and the "integer indefinite" value
/// `math.MinInt64` for NaN and out-of-range values.
pub(crate) fn go_int64(f: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-TWO_63..TWO_63).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

// Go's time package works in seconds since an absolute zero year far in the past; its
// calendar arithmetic on unsigned 64-bit values is reproduced here so that every input,
// including NaN, gives the date Go gives.
const SECONDS_PER_DAY: u64 = 86_400;
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
const UNIX_TO_INTERNAL: i64 = (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * 86_400;
const INTERNAL_TO_ABSOLUTE: i64 = 9_223_371_966_579_724_800;
const DAYS_BEFORE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// (year, month 1-12, day 1-31, day of year 0-based) as Go's `absDate`.
fn abs_date(abs: u64) -> (i64, i64, i64, i64) {
    let mut d = abs / SECONDS_PER_DAY;
    let mut n = d / DAYS_PER_400_YEARS;
    let mut y = 400 * n;
    d -= DAYS_PER_400_YEARS * n;
    n = d / DAYS_PER_100_YEARS;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100_YEARS * n;
    n = d / DAYS_PER_4_YEARS;
    y += 4 * n;
    d -= DAYS_PER_4_YEARS * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d as i64;
    let mut day = yday;
    if is_leap(year) {
        if day > 31 + 29 - 1 {
            day -= 1;
        } else if day == 31 + 29 - 1 {
            return (year, 2, 29, yday);
        }
    }
    let mut month = day / 31;
    let end = DAYS_BEFORE[(month + 1) as usize];
    let begin = if day >= end {
        month += 1;
        end
    } else {
        DAYS_BEFORE[month as usize]
    };
    month += 1;
    (year, month, day - begin + 1, yday)
}

/// A calendar field of Unix time `sec` in UTC, as Go's `time.Unix(sec, 0).UTC()` gives it.
pub(crate) fn date_part(id: FuncId, sec: i64) -> f64 {
    let abs = sec
        .wrapping_add(UNIX_TO_INTERNAL)
        .wrapping_add(INTERNAL_TO_ABSOLUTE) as u64;
    match id {
        FuncId::Hour => ((abs % SECONDS_PER_DAY) / 3600) as f64,
        FuncId::Minute => ((abs % 3600) / 60) as f64,
        FuncId::DayOfWeek => {
            // Go adds Monday (1) days so that the absolute epoch is a Monday.
            (((abs + SECONDS_PER_DAY) % (7 * SECONDS_PER_DAY)) / SECONDS_PER_DAY) as f64
        }
        _ => {
            let (year, month, day, yday) = abs_date(abs);
            match id {
                FuncId::Year => year as f64,
                FuncId::Month => month as f64,
                FuncId::DayOfMonth => day as f64,
                FuncId::DayOfYear => (yday + 1) as f64,
                FuncId::DaysInMonth => {
                    let days = DAYS_BEFORE[month as usize] - DAYS_BEFORE[(month - 1) as usize];
                    (if month == 2 && is_leap(year) {
                        days + 1
                    } else {
                        days
                    }) as f64
                }
                _ => f64::NAN,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_go() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let t = 1_709_214_300;
        assert_eq!(date_part(FuncId::Year, t), 2024.0);
        assert_eq!(date_part(FuncId::Month, t), 2.0);
        assert_eq!(date_part(FuncId::DayOfMonth, t), 29.0);
        assert_eq!(date_part(FuncId::DayOfYear, t), 60.0);
        assert_eq!(date_part(FuncId::DaysInMonth, t), 29.0);
        assert_eq!(date_part(FuncId::DayOfWeek, t), 4.0);
        assert_eq!(date_part(FuncId::Hour, t), 13.0);
        assert_eq!(date_part(FuncId::Minute, t), 45.0);
        assert_eq!(date_part(FuncId::Year, 0), 1970.0);
        assert_eq!(date_part(FuncId::DayOfWeek, 0), 4.0);
        assert_eq!(date_part(FuncId::Year, -1), 1969.0);
        assert_eq!(date_part(FuncId::DaysInMonth, 1_735_689_599), 31.0); // 2024-12-31
    }

    #[test]
    fn go_conversions() {
        assert_eq!(go_int64(f64::NAN), i64::MIN);
        assert_eq!(go_int64(-1.9), -1);
        assert_eq!(map_value(FuncId::Round, 2.5, &[]), 3.0);
        assert_eq!(map_value(FuncId::Round, -2.5, &[]), -2.0);
        assert_eq!(map_value(FuncId::Round, 12.34, &[0.1]), 12.3);
        assert_eq!(map_value(FuncId::Clamp, 5.0, &[0.0, 3.0]), 3.0);
        assert!(map_value(FuncId::ClampMax, 5.0, &[f64::NAN]).is_nan());
    }
}
