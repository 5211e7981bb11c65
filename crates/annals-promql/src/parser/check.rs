//! Type checks after parsing, in the order of Prometheus's `checkAST` (the first error found
//! is the one reported).

use super::lex::go_quote;
use super::{BinaryExpr, Cardinality, Expr, ParseError, PosRange, ValueType};

type CResult = Result<ValueType, ParseError>;

pub(super) fn check(input: &str, e: &Expr) -> Result<(), ParseError> {
    Checker { input }.check(e).map(|_| ())
}

struct Checker<'a> {
    input: &'a str,
}

impl Checker<'_> {
    fn err(&self, pos: PosRange, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.input, pos, msg)
    }

    fn expect_type(&self, e: &Expr, want: ValueType, context: &str) -> Result<(), ParseError> {
        let t = self.check(e)?;
        if t != want {
            return Err(self.err(
                e.pos(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented(),
                    t.documented()
                ),
            ));
        }
        Ok(())
    }

    /// The range of a binary expression's operator, spaces trimmed.
    fn op_range(&self, b: &BinaryExpr) -> PosRange {
        let bytes = self.input.as_bytes();
        let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
        let mut start = b.lhs.pos().end;
        while start < bytes.len() && is_space(bytes[start]) {
            start += 1;
        }
        let mut end = b.rhs.pos().start.saturating_sub(1);
        while end > 0 && end < bytes.len() && is_space(bytes[end]) {
            end -= 1;
        }
        PosRange::new(start, end)
    }

    fn check(&self, e: &Expr) -> CResult {
        let typ = e.value_type();
        match e {
            Expr::Aggregate(a) => {
                self.expect_type(&a.expr, ValueType::Vector, "aggregation expression")?;
                use super::AggOp::*;
                if let Some(p) = &a.param {
                    match a.op {
                        Topk | Bottomk | Quantile => {
                            self.expect_type(p, ValueType::Scalar, "aggregation parameter")?
                        }
                        CountValues => {
                            self.expect_type(p, ValueType::String, "aggregation parameter")?
                        }
                        _ => {}
                    }
                }
            }
            Expr::Binary(b) => self.check_binary(e, b)?,
            Expr::Call(c) => {
                let f = c.func;
                let nargs = f.arg_types.len();
                if f.variadic == 0 {
                    if nargs != c.args.len() {
                        return Err(self.err(
                            c.pos,
                            format!(
                                "expected {nargs} argument(s) in call to {}, got {}",
                                go_quote(f.name),
                                c.args.len()
                            ),
                        ));
                    }
                } else {
                    let na = nargs - 1;
                    if na > c.args.len() {
                        return Err(self.err(
                            c.pos,
                            format!(
                                "expected at least {na} argument(s) in call to {}, got {}",
                                go_quote(f.name),
                                c.args.len()
                            ),
                        ));
                    }
                    let max = na as i64 + f.variadic as i64;
                    if f.variadic > 0 && max < c.args.len() as i64 {
                        return Err(self.err(
                            c.pos,
                            format!(
                                "expected at most {max} argument(s) in call to {}, got {}",
                                go_quote(f.name),
                                c.args.len()
                            ),
                        ));
                    }
                }
                for (i, arg) in c.args.iter().enumerate() {
                    let i = if i >= nargs {
                        if f.variadic == 0 {
                            break;
                        }
                        nargs - 1
                    } else {
                        i
                    };
                    self.expect_type(
                        arg,
                        f.arg_types[i],
                        &format!("call to function {}", go_quote(f.name)),
                    )?;
                }
            }
            Expr::Paren { expr, .. } | Expr::StepInvariant(expr) => {
                self.check(expr)?;
            }
            Expr::Unary { expr, start, .. } => {
                let t = self.check(expr)?;
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(self.err(
                        PosRange::new(*start, expr.pos().end),
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            go_quote(t.documented())
                        ),
                    ));
                }
            }
            Expr::Subquery(sq) => {
                let t = self.check(&sq.expr)?;
                if t != ValueType::Vector {
                    return Err(self.err(
                        e.pos(),
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.name()
                        ),
                    ));
                }
            }
            Expr::Matrix(ms) => self.check_vector_selector(&ms.vs)?,
            Expr::Vector(vs) => self.check_vector_selector(vs)?,
            Expr::Number { .. } | Expr::String { .. } => {}
        }
        Ok(typ)
    }

    fn check_vector_selector(&self, vs: &super::VectorSelector) -> Result<(), ParseError> {
        if let Some(name) = &vs.name {
            let before_name = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = before_name.iter().find(|m| m.name() == "__name__") {
                return Err(self.err(
                    vs.pos,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        go_quote(name),
                        go_quote(m.value())
                    ),
                ));
            }
            return Ok(());
        }
        if !vs.matchers.iter().any(|m| !m.matches("")) {
            return Err(self.err(
                vs.pos,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }

    fn check_binary(&self, e: &Expr, b: &BinaryExpr) -> Result<(), ParseError> {
        let lt = self.check(&b.lhs)?;
        let rt = self.check(&b.rhs)?;
        if b.return_bool && !b.op.is_comparison() {
            return Err(self.err(
                self.op_range(b),
                "bool modifier can only be used on comparison operators",
            ));
        }
        if b.op.is_comparison()
            && !b.return_bool
            && rt == ValueType::Scalar
            && lt == ValueType::Scalar
        {
            return Err(self.err(
                self.op_range(b),
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        let mut card = b.matching.as_ref().map(|m| m.card);
        if b.op.is_set() && card == Some(Cardinality::OneToOne) {
            card = Some(Cardinality::ManyToMany);
        }
        if let Some(m) = &b.matching {
            if m.on {
                if let Some(l) = m.matching_labels.iter().find(|l| m.include.contains(l)) {
                    return Err(self.err(
                        self.op_range(b),
                        format!(
                            "label {} must not occur in ON and GROUP clause at once",
                            go_quote(l)
                        ),
                    ));
                }
            }
        }
        if lt != ValueType::Scalar && lt != ValueType::Vector {
            return Err(self.err(
                b.lhs.pos(),
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        if rt != ValueType::Scalar && rt != ValueType::Vector {
            return Err(self.err(
                b.rhs.pos(),
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        if lt != ValueType::Vector || rt != ValueType::Vector {
            if b.matching
                .as_ref()
                .is_some_and(|m| !m.matching_labels.is_empty())
            {
                return Err(self.err(
                    e.pos(),
                    "vector matching only allowed between instant vectors",
                ));
            }
        } else if b.op.is_set() {
            if matches!(card, Some(Cardinality::OneToMany | Cardinality::ManyToOne)) {
                return Err(self.err(
                    e.pos(),
                    format!(
                        "no grouping allowed for {} operation",
                        go_quote(b.op.as_str())
                    ),
                ));
            }
            if card != Some(Cardinality::ManyToMany) {
                return Err(self.err(e.pos(), "set operations must always be many-to-many"));
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && b.op.is_set() {
            return Err(self.err(
                e.pos(),
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    go_quote(b.op.as_str())
                ),
            ));
        }
        Ok(())
    }
}
