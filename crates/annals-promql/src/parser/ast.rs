//! The syntax tree of a PromQL expression, with the source positions of its nodes.

use annals::Matcher;

use crate::functions::Function;

/// A byte range `[start, end)` of the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PosRange {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl PosRange {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        PosRange { start, end }
    }
}

/// The type an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// No value (only for malformed trees).
    None,
    /// A float.
    Scalar,
    /// A string.
    String,
    /// An instant vector: one sample per series.
    Vector,
    /// A range vector: samples over a time range per series.
    Matrix,
}

impl ValueType {
    /// The internal name (`vector`, `matrix`, ...), as Prometheus's `ValueType`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::None => "none",
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        }
    }

    /// The name the documentation uses (`instant vector`, `range vector`, ...).
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            t => t.name(),
        }
    }
}

/// Binary operators, with set operators and comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Whether this is a comparison (`==`, `!=`, `>`, `<`, `>=`, `<=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    /// Whether this is a set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Whether the result drops the metric name (arithmetic operators).
    pub(crate) fn drops_metric_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow | BinOp::Mod
        )
    }

    /// Binding strength, higher binds tighter (Prometheus's yacc precedence table).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `count_values`
    CountValues,
    /// `quantile`
    Quantile,
}

impl AggOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
        }
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggOp::Topk | AggOp::Bottomk | AggOp::CountValues | AggOp::Quantile
        )
    }
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtModifier {
    /// `@ <timestamp>`, in milliseconds.
    Timestamp(i64),
    /// `@ start()`: the start of the query range.
    Start,
    /// `@ end()`: the end of the query range.
    End,
}

/// An instant vector selector: `name{matchers} @ t offset d`.
#[derive(Debug, Clone)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers, including the one for the metric name (appended last).
    pub matchers: Vec<Matcher>,
    /// The `offset` modifier in milliseconds (negative for `offset -d`), 0 if absent.
    pub offset: i64,
    /// The `@` modifier.
    pub at: Option<AtModifier>,
    /// Where the selector is written.
    pub pos: PosRange,
}

/// A range vector selector: `selector[range]`.
#[derive(Debug, Clone)]
pub struct MatrixSelector {
    /// The selector (its offset and `@` apply to the range).
    pub vs: VectorSelector,
    /// The range in milliseconds.
    pub range: i64,
    /// Where the whole expression ends.
    pub end: usize,
}

/// A subquery: `expr[range:step] @ t offset d`.
#[derive(Debug, Clone)]
pub struct SubqueryExpr {
    /// The inner expression.
    pub expr: Box<Expr>,
    /// The range in milliseconds.
    pub range: i64,
    /// The step in milliseconds; 0 means the default (the query step, or 1 m).
    pub step: i64,
    /// The `offset` modifier in milliseconds.
    pub offset: i64,
    /// The `@` modifier.
    pub at: Option<AtModifier>,
    /// Where the whole expression ends.
    pub end: usize,
}

/// A function call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The function.
    pub func: &'static Function,
    /// The arguments.
    pub args: Vec<Expr>,
    /// Where the call is written.
    pub pos: PosRange,
}

/// An aggregation: `op by (labels) (param, expr)`.
#[derive(Debug, Clone)]
pub struct AggregateExpr {
    /// The operator.
    pub op: AggOp,
    /// The aggregated vector.
    pub expr: Box<Expr>,
    /// The parameter of `topk`, `bottomk`, `quantile`, `count_values`.
    pub param: Option<Box<Expr>>,
    /// The `by`/`without` labels.
    pub grouping: Vec<String>,
    /// Whether the grouping is `without`.
    pub without: bool,
    /// Where the aggregation is written.
    pub pos: PosRange,
}

/// The cardinality of a vector match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// One-to-one (the default).
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// How the two vectors of a binary expression are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// The cardinality.
    pub card: Cardinality,
    /// The `on`/`ignoring` labels.
    pub matching_labels: Vec<String>,
    /// Whether the labels are `on` (else `ignoring`).
    pub on: bool,
    /// The `group_left`/`group_right` labels.
    pub include: Vec<String>,
}

/// A binary expression.
#[derive(Debug, Clone)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinOp,
    /// The left operand.
    pub lhs: Box<Expr>,
    /// The right operand.
    pub rhs: Box<Expr>,
    /// Matching between two instant vectors (`None` when a side is a scalar).
    pub matching: Option<VectorMatching>,
    /// The `bool` modifier of comparisons.
    pub return_bool: bool,
}

/// A PromQL expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A number literal.
    Number {
        /// The value.
        val: f64,
        /// Where it is written.
        pos: PosRange,
    },
    /// A string literal.
    String {
        /// The unquoted value.
        val: String,
        /// Where it is written.
        pos: PosRange,
    },
    /// An instant vector selector.
    Vector(Box<VectorSelector>),
    /// A range vector selector.
    Matrix(Box<MatrixSelector>),
    /// A subquery.
    Subquery(SubqueryExpr),
    /// A function call.
    Call(Call),
    /// An aggregation.
    Aggregate(AggregateExpr),
    /// A binary expression.
    Binary(BinaryExpr),
    /// A parenthesised expression.
    Paren {
        /// The inner expression.
        expr: Box<Expr>,
        /// Where it is written, parentheses included.
        pos: PosRange,
    },
    /// A unary minus or plus.
    Unary {
        /// Whether it is a minus.
        neg: bool,
        /// The operand.
        expr: Box<Expr>,
        /// Where the operator is.
        start: usize,
    },
    /// A subtree whose value is the same at every step (set by query preparation, never by
    /// the parser): it is evaluated once and repeated.
    StepInvariant(Box<Expr>),
}

impl Expr {
    /// The type of the expression's value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number { .. } => ValueType::Scalar,
            Expr::String { .. } => ValueType::String,
            Expr::Vector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::Matrix(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::StepInvariant(expr) => {
                expr.value_type()
            }
        }
    }

    /// Where the expression is written.
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::Number { pos, .. } | Expr::String { pos, .. } | Expr::Paren { pos, .. } => *pos,
            Expr::Vector(vs) => vs.pos,
            Expr::Matrix(ms) => PosRange::new(ms.vs.pos.start, ms.end),
            Expr::Subquery(sq) => PosRange::new(sq.expr.pos().start, sq.end),
            Expr::Call(c) => c.pos,
            Expr::Aggregate(a) => a.pos,
            Expr::Binary(b) => PosRange::new(b.lhs.pos().start, b.rhs.pos().end),
            Expr::Unary { expr, start, .. } => PosRange::new(*start, expr.pos().end),
            Expr::StepInvariant(e) => e.pos(),
        }
    }

    /// The expression without enclosing parentheses and step-invariance markers.
    pub(crate) fn unwrap_parens(&self) -> &Expr {
        let mut e = self;
        loop {
            match e {
                Expr::Paren { expr, .. } | Expr::StepInvariant(expr) => e = expr,
                _ => return e,
            }
        }
    }

    /// Calls `f` on this node and every node below it, parents first.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Number { .. } | Expr::String { .. } | Expr::Vector(_) | Expr::Matrix(_) => {}
            Expr::Subquery(sq) => sq.expr.walk(f),
            Expr::Call(c) => c.args.iter().for_each(|a| a.walk(f)),
            Expr::Aggregate(a) => {
                a.expr.walk(f);
                if let Some(p) = &a.param {
                    p.walk(f);
                }
            }
            Expr::Binary(b) => {
                b.lhs.walk(f);
                b.rhs.walk(f);
            }
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } | Expr::StepInvariant(expr) => {
                expr.walk(f)
            }
        }
    }
}
