//! The function table: every function of Prometheus 2.42's PromQL, with its signature (as
//! `promql/parser/functions.go`) and its implementation.
//!
//! Functions fall into families that the evaluator runs differently: range functions take one
//! range vector and are computed per series in one pass over its samples (`range.rs`);
//! instant functions map each sample of a vector (`instant.rs`); the rest (`absent`,
//! `histogram_quantile`, `label_*`, `sort*`, `scalar`, `vector`, `time`, date functions) are
//! special-cased in the evaluator.

pub(crate) mod histogram;
pub(crate) mod instant;
pub(crate) mod range;

use crate::parser::ValueType;

/// Identifies a function's implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum FuncId {
    Abs,
    Absent,
    AbsentOverTime,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    AvgOverTime,
    Ceil,
    Changes,
    Clamp,
    ClampMax,
    ClampMin,
    Cos,
    Cosh,
    CountOverTime,
    DaysInMonth,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    Deg,
    Delta,
    Deriv,
    Exp,
    Floor,
    HistogramCount,
    HistogramSum,
    HistogramFraction,
    HistogramQuantile,
    HoltWinters,
    Hour,
    Idelta,
    Increase,
    Irate,
    LabelReplace,
    LabelJoin,
    LastOverTime,
    Ln,
    Log10,
    Log2,
    MaxOverTime,
    MinOverTime,
    Minute,
    Month,
    Pi,
    PredictLinear,
    PresentOverTime,
    QuantileOverTime,
    Rad,
    Rate,
    Resets,
    Round,
    Scalar,
    Sgn,
    Sin,
    Sinh,
    Sort,
    SortDesc,
    Sqrt,
    StddevOverTime,
    StdvarOverTime,
    SumOverTime,
    Tan,
    Tanh,
    Time,
    Timestamp,
    Vector,
    Year,
}

/// A function's signature and implementation.
#[derive(Debug)]
pub struct Function {
    /// The name.
    pub name: &'static str,
    /// The argument types; with `variadic != 0` the last one may repeat or be omitted.
    pub arg_types: &'static [ValueType],
    /// 0: fixed arity; n > 0: up to n more arguments of the last type (the last argument
    /// itself may be omitted); -1: any number more.
    pub variadic: i32,
    /// The result type.
    pub return_type: ValueType,
    /// The implementation.
    pub id: FuncId,
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

macro_rules! f {
    ($name:literal, $id:ident, [$($a:expr),*], $var:expr, $ret:expr) => {
        Function { name: $name, arg_types: &[$($a),*], variadic: $var, return_type: $ret, id: FuncId::$id }
    };
}

/// Every function, sorted by name.
pub static FUNCTIONS: &[Function] = &[
    f!("abs", Abs, [V], 0, V),
    f!("absent", Absent, [V], 0, V),
    f!("absent_over_time", AbsentOverTime, [M], 0, V),
    f!("acos", Acos, [V], 0, V),
    f!("acosh", Acosh, [V], 0, V),
    f!("asin", Asin, [V], 0, V),
    f!("asinh", Asinh, [V], 0, V),
    f!("atan", Atan, [V], 0, V),
    f!("atanh", Atanh, [V], 0, V),
    f!("avg_over_time", AvgOverTime, [M], 0, V),
    f!("ceil", Ceil, [V], 0, V),
    f!("changes", Changes, [M], 0, V),
    f!("clamp", Clamp, [V, S, S], 0, V),
    f!("clamp_max", ClampMax, [V, S], 0, V),
    f!("clamp_min", ClampMin, [V, S], 0, V),
    f!("cos", Cos, [V], 0, V),
    f!("cosh", Cosh, [V], 0, V),
    f!("count_over_time", CountOverTime, [M], 0, V),
    f!("day_of_month", DayOfMonth, [V], 1, V),
    f!("day_of_week", DayOfWeek, [V], 1, V),
    f!("day_of_year", DayOfYear, [V], 1, V),
    f!("days_in_month", DaysInMonth, [V], 1, V),
    f!("deg", Deg, [V], 0, V),
    f!("delta", Delta, [M], 0, V),
    f!("deriv", Deriv, [M], 0, V),
    f!("exp", Exp, [V], 0, V),
    f!("floor", Floor, [V], 0, V),
    f!("histogram_count", HistogramCount, [V], 0, V),
    f!("histogram_fraction", HistogramFraction, [S, S, V], 0, V),
    f!("histogram_quantile", HistogramQuantile, [S, V], 0, V),
    f!("histogram_sum", HistogramSum, [V], 0, V),
    f!("holt_winters", HoltWinters, [M, S, S], 0, V),
    f!("hour", Hour, [V], 1, V),
    f!("idelta", Idelta, [M], 0, V),
    f!("increase", Increase, [M], 0, V),
    f!("irate", Irate, [M], 0, V),
    f!("label_join", LabelJoin, [V, Str, Str, Str], -1, V),
    f!("label_replace", LabelReplace, [V, Str, Str, Str, Str], 0, V),
    f!("last_over_time", LastOverTime, [M], 0, V),
    f!("ln", Ln, [V], 0, V),
    f!("log10", Log10, [V], 0, V),
    f!("log2", Log2, [V], 0, V),
    f!("max_over_time", MaxOverTime, [M], 0, V),
    f!("min_over_time", MinOverTime, [M], 0, V),
    f!("minute", Minute, [V], 1, V),
    f!("month", Month, [V], 1, V),
    f!("pi", Pi, [], 0, S),
    f!("predict_linear", PredictLinear, [M, S], 0, V),
    f!("present_over_time", PresentOverTime, [M], 0, V),
    f!("quantile_over_time", QuantileOverTime, [S, M], 0, V),
    f!("rad", Rad, [V], 0, V),
    f!("rate", Rate, [M], 0, V),
    f!("resets", Resets, [M], 0, V),
    f!("round", Round, [V, S], 1, V),
    f!("scalar", Scalar, [V], 0, S),
    f!("sgn", Sgn, [V], 0, V),
    f!("sin", Sin, [V], 0, V),
    f!("sinh", Sinh, [V], 0, V),
    f!("sort", Sort, [V], 0, V),
    f!("sort_desc", SortDesc, [V], 0, V),
    f!("sqrt", Sqrt, [V], 0, V),
    f!("stddev_over_time", StddevOverTime, [M], 0, V),
    f!("stdvar_over_time", StdvarOverTime, [M], 0, V),
    f!("sum_over_time", SumOverTime, [M], 0, V),
    f!("tan", Tan, [V], 0, V),
    f!("tanh", Tanh, [V], 0, V),
    f!("time", Time, [], 0, S),
    f!("timestamp", Timestamp, [V], 0, V),
    f!("vector", Vector, [S], 0, V),
    f!("year", Year, [V], 1, V),
];

/// The function called `name`.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

impl FuncId {
    /// Functions whose result depends on the evaluation time even when their arguments do
    /// not (Prometheus's `AtModifierUnsafeFunctions`): never treated as step invariant.
    pub(crate) fn at_modifier_unsafe(self) -> bool {
        use FuncId::*;
        matches!(
            self,
            DaysInMonth
                | DayOfMonth
                | DayOfWeek
                | DayOfYear
                | Hour
                | Minute
                | Month
                | Year
                | PredictLinear
                | Time
                | Timestamp
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        // Prometheus 2.42 has 70 functions.
        assert_eq!(FUNCTIONS.len(), 70);
        assert_eq!(
            lookup("holt_winters").map(|f| f.id),
            Some(FuncId::HoltWinters)
        );
        assert!(lookup("double_exponential_smoothing").is_none());
        assert!(lookup("info").is_none());
    }
}
