//! Expressions printed back as PromQL, as Prometheus's `String()` methods print them (test
//! scripts re-parse what this prints).

use std::fmt;

use annals::Matcher;

use super::literal::{format_duration, go_format_g};
use super::{go_quote, AtModifier, Cardinality, Expr, VectorSelector};

fn write_at(f: &mut fmt::Formatter<'_>, at: Option<AtModifier>) -> fmt::Result {
    match at {
        None => Ok(()),
        Some(AtModifier::Timestamp(t)) => write!(f, " @ {:.3}", t as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
    }
}

fn write_offset(f: &mut fmt::Formatter<'_>, offset: i64) -> fmt::Result {
    if offset > 0 {
        write!(f, " offset {}", format_duration(offset))
    } else if offset < 0 {
        write!(f, " offset -{}", format_duration(-offset))
    } else {
        Ok(())
    }
}

fn matcher_string(m: &Matcher) -> String {
    format!("{}{}{}", m.name(), m.kind().as_str(), go_quote(m.value()))
}

fn write_selector_body(f: &mut fmt::Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut labels: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name() == "__name__" && m.kind() == annals::MatchType::Equal && m.value() == name)
        })
        .map(matcher_string)
        .collect();
    f.write_str(name)?;
    if !labels.is_empty() {
        labels.sort();
        write!(f, "{{{}}}", labels.join(","))?;
    }
    Ok(())
}

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_selector_body(f, self)?;
        write_at(f, self.at)?;
        write_offset(f, self.offset)
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number { val, .. } => f.write_str(&go_format_g(*val)),
            Expr::String { val, .. } => f.write_str(&go_quote(val)),
            Expr::Vector(vs) => vs.fmt(f),
            Expr::Matrix(ms) => {
                write_selector_body(f, &ms.vs)?;
                write!(f, "[{}]", format_duration(ms.range))?;
                write_at(f, ms.vs.at)?;
                write_offset(f, ms.vs.offset)
            }
            Expr::Subquery(sq) => {
                let step = if sq.step != 0 {
                    format_duration(sq.step)
                } else {
                    String::new()
                };
                write!(f, "{}[{}:{}]", sq.expr, format_duration(sq.range), step)?;
                write_at(f, sq.at)?;
                write_offset(f, sq.offset)
            }
            Expr::Call(c) => write!(f, "{}({})", c.func.name, join(&c.args)),
            Expr::Aggregate(a) => {
                f.write_str(a.op.as_str())?;
                if a.without {
                    write!(f, " without ({}) ", a.grouping.join(", "))?;
                } else if !a.grouping.is_empty() {
                    write!(f, " by ({}) ", a.grouping.join(", "))?;
                }
                f.write_str("(")?;
                if let Some(p) = &a.param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{})", a.expr)
            }
            Expr::Binary(b) => {
                write!(f, "{} {}", b.lhs, b.op.as_str())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &b.matching {
                    if !m.matching_labels.is_empty() || m.on {
                        let tag = if m.on { "on" } else { "ignoring" };
                        write!(f, " {tag} ({})", m.matching_labels.join(", "))?;
                        if matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany) {
                            let side = if m.card == Cardinality::ManyToOne {
                                "left"
                            } else {
                                "right"
                            };
                            write!(f, " group_{side} ({})", m.include.join(", "))?;
                        }
                    }
                }
                write!(f, " {}", b.rhs)
            }
            Expr::Paren { expr, .. } => write!(f, "({expr})"),
            Expr::Unary { neg, expr, .. } => write!(f, "{}{}", if *neg { "-" } else { "+" }, expr),
            Expr::StepInvariant(e) => e.fmt(f),
        }
    }
}
