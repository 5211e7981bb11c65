//! PromQL parsing: Prometheus 2.42's grammar (`promql/parser/generated_parser.y`), its type
//! checks (`checkAST`) and its error messages, each with the position in the query.
//!
//! The parser is hand-written recursive descent with precedence climbing, built to accept
//! exactly the language of 2.42: `holt_winters` exists, and 3.x-only syntax (quoted metric
//! names, `limitk`, duration arithmetic, `info`, ...) is rejected. DESIGN.md explains why we
//! did not build on the `promql-parser` crate.

mod ast;
mod check;
mod lex;
mod literal;
mod printer;
pub(crate) mod series_desc;

use std::fmt;

pub use ast::{
    AggOp, AggregateExpr, AtModifier, BinOp, BinaryExpr, Call, Cardinality, Expr, MatrixSelector,
    PosRange, SubqueryExpr, ValueType, VectorMatching, VectorSelector,
};
pub(crate) use lex::go_quote;
pub use literal::{format_duration, format_float, parse_duration};
pub(crate) use literal::{go_format_f, go_format_g, parse_go_float, parse_number, unquote};

use annals::{MatchType, Matcher};
use lex::{is_label, Item, Lexer, Tok};

use crate::functions;

/// A query that does not parse or type-check, with the position of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The byte range the error refers to.
    pub pos: PosRange,
    /// What is wrong (without the position).
    pub msg: String,
    /// 1-based line of `pos.start`.
    pub line: usize,
    /// 1-based column (in bytes) of `pos.start`.
    pub column: usize,
}

impl ParseError {
    pub(crate) fn new(input: &str, pos: PosRange, msg: impl Into<String>) -> Self {
        let start = pos.start.min(input.len());
        let before = &input.as_bytes()[..start];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let last_break = before.iter().rposition(|&b| b == b'\n');
        let column = match last_break {
            Some(i) => start - i,
            None => start + 1,
        };
        ParseError {
            pos,
            msg: msg.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for ParseError {
    /// `line:column: parse error: message`, as Prometheus prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: parse error: {}",
            self.line, self.column, self.msg
        )
    }
}

impl std::error::Error for ParseError {}

type PResult<T> = Result<T, ParseError>;

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(input);
    let mut expr = p.parse_top()?;
    check::check(input, &expr)?;
    normalize(&mut expr);
    Ok(expr)
}

/// What Prometheus's `checkAST` changes in the tree: set operators match many-to-many, and a
/// binary expression with a scalar side has no vector matching.
fn normalize(e: &mut Expr) {
    match e {
        Expr::Binary(b) => {
            normalize(&mut b.lhs);
            normalize(&mut b.rhs);
            if b.lhs.value_type() != ValueType::Vector || b.rhs.value_type() != ValueType::Vector {
                b.matching = None;
            } else if let Some(m) = &mut b.matching {
                if b.op.is_set() && m.card == Cardinality::OneToOne {
                    m.card = Cardinality::ManyToMany;
                }
            }
        }
        Expr::Aggregate(a) => {
            normalize(&mut a.expr);
            if let Some(p) = &mut a.param {
                normalize(p);
            }
        }
        Expr::Call(c) => c.args.iter_mut().for_each(normalize),
        Expr::Subquery(sq) => normalize(&mut sq.expr),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::StepInvariant(expr) => {
            normalize(expr)
        }
        Expr::Number { .. } | Expr::String { .. } | Expr::Vector(_) | Expr::Matrix(_) => {}
    }
}

/// Parses a series selector (`foo{bar="baz"}`), as the HTTP API's `match[]` parameters are
/// read: the matchers, with the metric name matcher last.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser::new(input);
    let tok = p.peek()?.clone();
    let vs = match tok.typ {
        Tok::LeftBrace => p.parse_vector_selector(None)?,
        t if is_metric_identifier(t) => {
            p.advance();
            p.parse_vector_selector(Some(tok))?
        }
        _ => return Err(p.unexpected(&tok, "", "")),
    };
    let tok = p.peek()?.clone();
    if tok.typ != Tok::Eof {
        return Err(p.unexpected(&tok, "", ""));
    }
    check::check(input, &Expr::Vector(Box::new(vs.clone())))?;
    Ok(vs.matchers)
}

/// Tokens that may name a metric (Prometheus's `metric_identifier` rule).
fn is_metric_identifier(t: Tok) -> bool {
    use Tok::*;
    matches!(
        t,
        Avg | Bottomk
            | By
            | Count
            | CountValues
            | Group
            | Identifier
            | Land
            | Lor
            | Lunless
            | Max
            | MetricIdentifier
            | Min
            | Offset
            | Quantile
            | Stddev
            | Stdvar
            | Sum
            | Topk
            | Without
            | Start
            | End
    )
}

/// Tokens that may name a label in grouping clauses (`maybe_label`).
fn is_maybe_label(t: Tok) -> bool {
    use Tok::*;
    is_metric_identifier(t) || matches!(t, Bool | GroupLeft | GroupRight | Ignoring | On | Atan2)
}

fn agg_op(t: Tok) -> Option<AggOp> {
    Some(match t {
        Tok::Sum => AggOp::Sum,
        Tok::Avg => AggOp::Avg,
        Tok::Count => AggOp::Count,
        Tok::Min => AggOp::Min,
        Tok::Max => AggOp::Max,
        Tok::Group => AggOp::Group,
        Tok::Stddev => AggOp::Stddev,
        Tok::Stdvar => AggOp::Stdvar,
        Tok::Topk => AggOp::Topk,
        Tok::Bottomk => AggOp::Bottomk,
        Tok::CountValues => AggOp::CountValues,
        Tok::Quantile => AggOp::Quantile,
        _ => return None,
    })
}

fn bin_op(t: Tok) -> Option<BinOp> {
    Some(match t {
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::Atan2 => BinOp::Atan2,
        Tok::Eqlc => BinOp::Eql,
        Tok::Neq => BinOp::Neq,
        Tok::Gtr => BinOp::Gtr,
        Tok::Lss => BinOp::Lss,
        Tok::Gte => BinOp::Gte,
        Tok::Lte => BinOp::Lte,
        Tok::Land => BinOp::And,
        Tok::Lor => BinOp::Or,
        Tok::Lunless => BinOp::Unless,
        _ => return None,
    })
}

/// Deepest nesting of parentheses, calls and operators accepted; deeper input is refused
/// instead of exhausting the stack.
const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    lex: Lexer<'a>,
    input: &'a str,
    /// Lookahead tokens, comments skipped.
    peeked: std::collections::VecDeque<Item>,
    /// End of the last closing token lexed (`)`, `}`, `]`, a duration or a number), as
    /// Prometheus's `lastClosing`: the end position of calls, aggregations and modifiers.
    last_closing: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            lex: Lexer::new(input),
            input,
            peeked: Default::default(),
            last_closing: 0,
            depth: 0,
        }
    }

    fn err(&self, pos: PosRange, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.input, pos, msg)
    }

    fn fill(&mut self, n: usize) -> PResult<()> {
        while self.peeked.len() < n {
            let item = loop {
                let item = self.lex.next_item();
                if item.typ != Tok::Comment {
                    break item;
                }
            };
            match item.typ {
                Tok::Error => {
                    let pos = PosRange::new(item.pos, self.input.len());
                    return Err(self.err(pos, item.val));
                }
                Tok::RightBrace
                | Tok::RightParen
                | Tok::RightBracket
                | Tok::Duration
                | Tok::Number => self.last_closing = item.end(),
                _ => {}
            }
            self.peeked.push_back(item);
        }
        Ok(())
    }

    fn peek(&mut self) -> PResult<&Item> {
        self.fill(1)?;
        Ok(&self.peeked[0])
    }

    fn peek2(&mut self) -> PResult<&Item> {
        self.fill(2)?;
        Ok(&self.peeked[1])
    }

    fn peek_typ(&mut self) -> PResult<Tok> {
        Ok(self.peek()?.typ)
    }

    /// Consumes the token that `peek` returned.
    fn advance(&mut self) -> Item {
        self.peeked
            .pop_front()
            .expect("advance is only called after a successful peek")
    }

    fn unexpected(&self, tok: &Item, context: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {}", tok.desc());
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.err(PosRange::new(tok.pos, tok.end()), msg)
    }

    fn parse_top(&mut self) -> PResult<Expr> {
        if self.peek_typ()? == Tok::Eof {
            return Err(self.err(PosRange::default(), "no expression found in input"));
        }
        let e = self.parse_expr(0)?;
        let tok = self.peek()?.clone();
        if tok.typ != Tok::Eof {
            return Err(self.unexpected(&tok, "", ""));
        }
        Ok(e)
    }

    fn parse_expr(&mut self, min_prec: u8) -> PResult<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let tok = self.peek()?.clone();
            return Err(self.err(
                PosRange::new(tok.pos, tok.end()),
                "expression nested too deeply",
            ));
        }
        let r = self.parse_binary(min_prec);
        self.depth -= 1;
        r
    }

    fn parse_binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.parse_unary()?;
        while let Some(op) = bin_op(self.peek_typ()?) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.advance();
            let (matching, return_bool) = self.parse_bin_modifiers()?;
            let rhs = self.parse_expr(if op == BinOp::Pow { prec } else { prec + 1 })?;
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching: Some(matching),
                return_bool,
            });
        }
        Ok(lhs)
    }

    fn parse_bin_modifiers(&mut self) -> PResult<(VectorMatching, bool)> {
        let mut m = VectorMatching {
            card: Cardinality::OneToOne,
            matching_labels: Vec::new(),
            on: false,
            include: Vec::new(),
        };
        let mut return_bool = false;
        if self.peek_typ()? == Tok::Bool {
            self.advance();
            return_bool = true;
        }
        if matches!(self.peek_typ()?, Tok::On | Tok::Ignoring) {
            m.on = self.advance().typ == Tok::On;
            m.matching_labels = self.parse_grouping_labels()?;
            if let t @ (Tok::GroupLeft | Tok::GroupRight) = self.peek_typ()? {
                self.advance();
                m.card = if t == Tok::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek_typ()? == Tok::LeftParen {
                    m.include = self.parse_grouping_labels()?;
                }
            }
        }
        Ok((m, return_bool))
    }

    /// `( label, ... )` of `by`, `without`, `on`, `ignoring`, `group_*`.
    fn parse_grouping_labels(&mut self) -> PResult<Vec<String>> {
        let tok = self.peek()?.clone();
        if tok.typ != Tok::LeftParen {
            return Err(self.unexpected(&tok, "grouping opts", "\"(\""));
        }
        self.advance();
        let mut labels = Vec::new();
        if self.peek_typ()? == Tok::RightParen {
            self.advance();
            return Ok(labels);
        }
        loop {
            let tok = self.peek()?.clone();
            if !is_maybe_label(tok.typ) {
                return Err(self.unexpected(&tok, "grouping opts", "label"));
            }
            self.advance();
            if !is_label(&tok.val) {
                return Err(self.unexpected(&tok, "grouping opts", "label"));
            }
            labels.push(tok.val);
            let tok = self.peek()?.clone();
            match tok.typ {
                Tok::Comma => {
                    self.advance();
                    if self.peek_typ()? == Tok::RightParen {
                        self.advance();
                        return Ok(labels);
                    }
                }
                Tok::RightParen => {
                    self.advance();
                    return Ok(labels);
                }
                _ => return Err(self.unexpected(&tok, "grouping opts", "\",\" or \")\"")),
            }
        }
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        let tok = self.peek()?.clone();
        if matches!(tok.typ, Tok::Add | Tok::Sub) {
            self.advance();
            // A unary operator binds like `*`: it takes everything of higher precedence (`^`).
            let operand = self.parse_expr(BinOp::Pow.precedence())?;
            let neg = tok.typ == Tok::Sub;
            return Ok(match operand {
                Expr::Number { val, pos } => Expr::Number {
                    val: if neg { -val } else { val },
                    pos: PosRange::new(tok.pos, pos.end),
                },
                e => Expr::Unary {
                    neg,
                    expr: Box::new(e),
                    start: tok.pos,
                },
            });
        }
        let primary = self.parse_primary()?;
        self.parse_postfix(primary)
    }

    fn parse_primary(&mut self) -> PResult<Expr> {
        let tok = self.peek()?.clone();
        match tok.typ {
            Tok::Number => {
                self.advance();
                let val = parse_number(&tok.val)
                    .map_err(|e| self.err(PosRange::new(tok.pos, tok.end()), e))?;
                Ok(Expr::Number {
                    val,
                    pos: PosRange::new(tok.pos, tok.end()),
                })
            }
            Tok::String => {
                self.advance();
                let val = self.unquote_item(&tok)?;
                Ok(Expr::String {
                    val,
                    pos: PosRange::new(tok.pos, tok.end()),
                })
            }
            Tok::LeftParen => {
                self.advance();
                let e = self.parse_expr(0)?;
                let close = self.peek()?.clone();
                if close.typ != Tok::RightParen {
                    return Err(self.unexpected(&close, "", ""));
                }
                self.advance();
                Ok(Expr::Paren {
                    expr: Box::new(e),
                    pos: PosRange::new(tok.pos, close.end()),
                })
            }
            Tok::LeftBrace => Ok(Expr::Vector(Box::new(self.parse_vector_selector(None)?))),
            Tok::Identifier if self.peek2()?.typ == Tok::LeftParen => self.parse_call(),
            t if t.is_aggregator()
                && matches!(self.peek2()?.typ, Tok::LeftParen | Tok::By | Tok::Without) =>
            {
                self.parse_aggregation()
            }
            t if is_metric_identifier(t) => {
                self.advance();
                Ok(Expr::Vector(Box::new(
                    self.parse_vector_selector(Some(tok))?,
                )))
            }
            _ => Err(self.unexpected(&tok, "", "")),
        }
    }

    fn unquote_item(&self, tok: &Item) -> PResult<String> {
        unquote(&tok.val).map_err(|e| {
            self.err(
                PosRange::new(tok.pos, tok.end()),
                format!("error unquoting string {}: {}", go_quote(&tok.val), e),
            )
        })
    }

    /// A vector selector; `name` is the already consumed metric name, if any.
    fn parse_vector_selector(&mut self, name: Option<Item>) -> PResult<VectorSelector> {
        let mut matchers = Vec::new();
        let mut pos = name
            .as_ref()
            .map(|n| PosRange::new(n.pos, n.end()))
            .unwrap_or_default();
        if self.peek_typ()? == Tok::LeftBrace {
            let open = self.advance();
            if name.is_none() {
                pos.start = open.pos;
            }
            let close = self.parse_label_matchers(&mut matchers)?;
            pos.end = close;
        }
        let name_val = name.map(|n| n.val);
        if let Some(n) = &name_val {
            matchers.push(Matcher::equal("__name__", n));
        }
        Ok(VectorSelector {
            name: name_val,
            matchers,
            offset: 0,
            at: None,
            pos,
        })
    }

    /// The matchers between braces (the `{` is consumed); returns the end of the `}`.
    fn parse_label_matchers(&mut self, out: &mut Vec<Matcher>) -> PResult<usize> {
        loop {
            let tok = self.peek()?.clone();
            match tok.typ {
                Tok::RightBrace => {
                    self.advance();
                    return Ok(tok.end());
                }
                Tok::Identifier => {
                    self.advance();
                    let op = self.peek()?.clone();
                    let kind = match op.typ {
                        Tok::Eql => MatchType::Equal,
                        Tok::Neq => MatchType::NotEqual,
                        Tok::EqlRegex => MatchType::Regex,
                        Tok::NeqRegex => MatchType::NotRegex,
                        _ => {
                            return Err(self.unexpected(
                                &op,
                                "label matching",
                                "label matching operator",
                            ))
                        }
                    };
                    self.advance();
                    let val = self.peek()?.clone();
                    if val.typ != Tok::String {
                        return Err(self.unexpected(&val, "label matching", "string"));
                    }
                    self.advance();
                    let value = self.unquote_item(&val)?;
                    let m = Matcher::new(kind, &tok.val, &value).map_err(|e| {
                        let msg = match e {
                            // annals says `error parsing regexp "re" of label "l": why`.
                            annals::Error::InvalidMatcher { reason } => {
                                match reason.split_once("\": ") {
                                    Some((_, why)) => format!("error parsing regexp: {why}"),
                                    None => reason,
                                }
                            }
                            other => other.to_string(),
                        };
                        self.err(PosRange::new(tok.pos, val.end()), msg)
                    })?;
                    out.push(m);
                    let sep = self.peek()?.clone();
                    match sep.typ {
                        Tok::Comma => {
                            self.advance();
                        }
                        Tok::RightBrace => {}
                        _ => return Err(self.unexpected(&sep, "label matching", "\",\" or \"}\"")),
                    }
                }
                _ => return Err(self.unexpected(&tok, "label matching", "identifier or \"}\"")),
            }
        }
    }

    fn parse_call(&mut self) -> PResult<Expr> {
        let name = self.advance();
        let args = self.parse_call_body()?;
        let Some(func) = functions::lookup(&name.val) else {
            return Err(self.err(
                PosRange::new(name.pos, name.end()),
                format!("unknown function with name {}", go_quote(&name.val)),
            ));
        };
        Ok(Expr::Call(Call {
            func,
            args,
            pos: PosRange::new(name.pos, self.last_closing),
        }))
    }

    /// `( expr, ... )`.
    fn parse_call_body(&mut self) -> PResult<Vec<Expr>> {
        let open = self.peek()?.clone();
        if open.typ != Tok::LeftParen {
            return Err(self.unexpected(&open, "", ""));
        }
        self.advance();
        let mut args = Vec::new();
        if self.peek_typ()? == Tok::RightParen {
            self.advance();
            return Ok(args);
        }
        loop {
            args.push(self.parse_expr(0)?);
            let tok = self.peek()?.clone();
            match tok.typ {
                Tok::Comma => {
                    self.advance();
                    if self.peek_typ()? == Tok::RightParen {
                        return Err(self.err(
                            PosRange::new(tok.pos, tok.end()),
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                Tok::RightParen => {
                    self.advance();
                    return Ok(args);
                }
                _ => return Err(self.unexpected(&tok, "", "")),
            }
        }
    }

    fn parse_aggregation(&mut self) -> PResult<Expr> {
        let op_tok = self.advance();
        let op = agg_op(op_tok.typ).expect("called for aggregation operators only");
        let mut grouping = Vec::new();
        let mut without = false;
        let mut modifier_first = false;
        if matches!(self.peek_typ()?, Tok::By | Tok::Without) {
            without = self.advance().typ == Tok::Without;
            grouping = self.parse_grouping_labels()?;
            modifier_first = true;
            let tok = self.peek()?.clone();
            if tok.typ != Tok::LeftParen {
                return Err(self.unexpected(&tok, "aggregation", ""));
            }
        }
        let args = self.parse_call_body()?;
        if !modifier_first && matches!(self.peek_typ()?, Tok::By | Tok::Without) {
            without = self.advance().typ == Tok::Without;
            grouping = self.parse_grouping_labels()?;
        }
        let pos = PosRange::new(op_tok.pos, self.last_closing);
        if args.is_empty() {
            return Err(self.err(pos, "no arguments for aggregate expression provided"));
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(self.err(
                pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let mut args = args.into_iter();
        let param = if op.has_param() {
            Some(Box::new(args.next().expect("two arguments")))
        } else {
            None
        };
        let expr = Box::new(args.next().expect("one argument"));
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            pos,
        }))
    }

    /// Range, subquery, `offset` and `@` modifiers after an expression.
    fn parse_postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            match self.peek_typ()? {
                Tok::LeftBracket => e = self.parse_range(e)?,
                Tok::Offset => e = self.parse_offset(e)?,
                Tok::At => e = self.parse_at(e)?,
                _ => return Ok(e),
            }
        }
    }

    fn parse_duration_item(&mut self, tok: &Item) -> PResult<i64> {
        let d = parse_duration(&tok.val)
            .map_err(|msg| self.err(PosRange::new(tok.pos, tok.end()), msg))?;
        if d == 0 {
            return Err(self.err(
                PosRange::new(tok.pos, tok.end()),
                "duration must be greater than 0",
            ));
        }
        Ok(d)
    }

    fn parse_range(&mut self, e: Expr) -> PResult<Expr> {
        let open = self.advance();
        let tok = self.peek()?.clone();
        if tok.typ != Tok::Duration {
            return Err(self.unexpected(&tok, "subquery selector", "duration"));
        }
        self.advance();
        let range = self.parse_duration_item(&tok)?;
        let tok = self.peek()?.clone();
        match tok.typ {
            Tok::RightBracket => {
                self.advance();
                let msg = match &e {
                    Expr::Vector(vs) if vs.offset != 0 => {
                        Some("no offset modifiers allowed before range")
                    }
                    Expr::Vector(vs) if vs.at.is_some() => {
                        Some("no @ modifiers allowed before range")
                    }
                    Expr::Vector(_) => None,
                    _ => Some("ranges only allowed for vector selectors"),
                };
                if let Some(msg) = msg {
                    return Err(self.err(PosRange::new(open.pos, tok.end()), msg));
                }
                let Expr::Vector(vs) = e else {
                    unreachable!("checked above")
                };
                Ok(Expr::Matrix(Box::new(MatrixSelector {
                    vs: *vs,
                    range,
                    end: self.last_closing,
                })))
            }
            Tok::Colon => {
                self.advance();
                let mut step = 0;
                let mut tok = self.peek()?.clone();
                if tok.typ == Tok::Duration {
                    self.advance();
                    step = self.parse_duration_item(&tok)?;
                    tok = self.peek()?.clone();
                    if tok.typ != Tok::RightBracket {
                        return Err(self.unexpected(&tok, "subquery selector", "\"]\""));
                    }
                } else if tok.typ != Tok::RightBracket {
                    return Err(self.unexpected(&tok, "subquery selector", "duration or \"]\""));
                }
                self.advance();
                Ok(Expr::Subquery(SubqueryExpr {
                    expr: Box::new(e),
                    range,
                    step,
                    offset: 0,
                    at: None,
                    end: tok.pos + 1,
                }))
            }
            _ => Err(self.unexpected(&tok, "subquery or range", "\":\" or \"]\"")),
        }
    }

    fn parse_offset(&mut self, mut e: Expr) -> PResult<Expr> {
        self.advance();
        let mut neg = false;
        if self.peek_typ()? == Tok::Sub {
            self.advance();
            neg = true;
        }
        let tok = self.peek()?.clone();
        if tok.typ != Tok::Duration {
            return Err(self.unexpected(&tok, "offset", "duration"));
        }
        self.advance();
        let d = self.parse_duration_item(&tok)?;
        let offset = if neg { -d } else { d };
        let pos = e.pos();
        let end = self.last_closing;
        let (slot, end_slot) = match &mut e {
            Expr::Vector(vs) => (&mut vs.offset, &mut vs.pos.end),
            Expr::Matrix(ms) => (&mut ms.vs.offset, &mut ms.end),
            Expr::Subquery(sq) => (&mut sq.offset, &mut sq.end),
            _ => {
                return Err(self.err(
                    pos,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if *slot != 0 {
            return Err(self.err(pos, "offset may not be set multiple times"));
        }
        *slot = offset;
        *end_slot = end;
        Ok(e)
    }

    fn parse_at(&mut self, mut e: Expr) -> PResult<Expr> {
        self.advance();
        let tok = self.peek()?.clone();
        let at = match tok.typ {
            Tok::Number | Tok::Add | Tok::Sub => {
                let mut neg = false;
                let mut num = tok.clone();
                if tok.typ != Tok::Number {
                    self.advance();
                    neg = tok.typ == Tok::Sub;
                    num = self.peek()?.clone();
                    if num.typ != Tok::Number {
                        return Err(self.unexpected(&num, "@", "timestamp"));
                    }
                }
                self.advance();
                let mut v = parse_number(&num.val)
                    .map_err(|m| self.err(PosRange::new(num.pos, num.end()), m))?;
                if neg {
                    v = -v;
                }
                if !v.is_finite() || v >= i64::MAX as f64 || v <= i64::MIN as f64 {
                    return Err(self.err(
                        e.pos(),
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            literal::go_format_f(v)
                        ),
                    ));
                }
                AtModifier::Timestamp((v * 1000.0).round() as i64)
            }
            Tok::Start | Tok::End => {
                self.advance();
                let open = self.peek()?.clone();
                if open.typ != Tok::LeftParen {
                    return Err(self.unexpected(&open, "@", "timestamp"));
                }
                self.advance();
                let close = self.peek()?.clone();
                if close.typ != Tok::RightParen {
                    return Err(self.unexpected(&close, "@", "timestamp"));
                }
                self.advance();
                if tok.typ == Tok::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            _ => return Err(self.unexpected(&tok, "@", "timestamp")),
        };
        let pos = e.pos();
        let end = self.last_closing;
        let (slot, end_slot) = match &mut e {
            Expr::Vector(vs) => (&mut vs.at, &mut vs.pos.end),
            Expr::Matrix(ms) => (&mut ms.vs.at, &mut ms.end),
            Expr::Subquery(sq) => (&mut sq.at, &mut sq.end),
            _ => {
                return Err(self.err(
                    pos,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if slot.is_some() {
            return Err(self.err(pos, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        *end_slot = end;
        Ok(e)
    }
}

#[cfg(test)]
mod tests;
