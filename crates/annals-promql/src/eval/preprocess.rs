//! Query preparation, as Prometheus's `PreprocessExpr`: `@ start()` and `@ end()` become
//! timestamps, and subtrees whose value is the same at every step (all their selectors have
//! `@`, no time-dependent function) are wrapped in [`Expr::StepInvariant`] so they are
//! evaluated once.

use crate::parser::{AtModifier, Expr};

/// Prepares `e` for evaluation over `[start, end]`.
pub(crate) fn preprocess(mut e: Expr, start: i64, end: i64) -> Expr {
    if helper(&mut e, start, end) {
        Expr::StepInvariant(Box::new(e))
    } else {
        e
    }
}

fn resolve(at: &mut Option<AtModifier>, start: i64, end: i64) {
    match at {
        Some(AtModifier::Start) => *at = Some(AtModifier::Timestamp(start)),
        Some(AtModifier::End) => *at = Some(AtModifier::Timestamp(end)),
        _ => {}
    }
}

fn wrap(e: &mut Expr) {
    let inner = std::mem::replace(
        e,
        Expr::Number {
            val: 0.0,
            pos: Default::default(),
        },
    );
    *e = Expr::StepInvariant(Box::new(inner));
}

/// Whether `e` is step invariant; wraps its invariant children when it is not.
fn helper(e: &mut Expr, start: i64, end: i64) -> bool {
    match e {
        Expr::Vector(vs) => {
            resolve(&mut vs.at, start, end);
            vs.at.is_some()
        }
        Expr::Matrix(ms) => {
            resolve(&mut ms.vs.at, start, end);
            ms.vs.at.is_some()
        }
        Expr::Aggregate(a) => {
            // Prometheus does not visit the parameter: it is evaluated per step, and an
            // `@ start()`/`@ end()` in it stays unresolved (and so has no effect).
            helper(&mut a.expr, start, end)
        }
        Expr::Binary(b) => {
            let l = helper(&mut b.lhs, start, end);
            let r = helper(&mut b.rhs, start, end);
            if l && r {
                return true;
            }
            if l {
                wrap(&mut b.lhs);
            }
            if r {
                wrap(&mut b.rhs);
            }
            false
        }
        Expr::Call(c) => {
            let mut invariant = !c.func.id.at_modifier_unsafe();
            let flags: Vec<bool> = c.args.iter_mut().map(|a| helper(a, start, end)).collect();
            invariant &= flags.iter().all(|&f| f);
            if invariant {
                return true;
            }
            for (a, f) in c.args.iter_mut().zip(flags) {
                if f {
                    wrap(a);
                }
            }
            false
        }
        Expr::Subquery(sq) => {
            if helper(&mut sq.expr, start, end) {
                wrap(&mut sq.expr);
            }
            resolve(&mut sq.at, start, end);
            sq.at.is_some()
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => helper(expr, start, end),
        Expr::Number { .. } | Expr::String { .. } => true,
        Expr::StepInvariant(_) => true,
    }
}
