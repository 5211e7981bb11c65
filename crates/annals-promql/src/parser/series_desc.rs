//! Series descriptions of test scripts: `metric{label="value"} 0+10x100 _ stale 1x3 _x2`.

use annals::{Labels, LabelsBuilder};

use super::lex::{Item, Lexer, Tok};
use super::{is_metric_identifier, parse_number, unquote, ParseError, PosRange};

/// One value of a described series: `None` for `_` (no sample at that step).
pub(crate) type SeqValue = Option<f64>;

struct P<'a> {
    lex: Lexer<'a>,
    input: &'a str,
    peeked: Option<Item>,
}

impl P<'_> {
    fn peek(&mut self) -> Result<&Item, ParseError> {
        if self.peeked.is_none() {
            let item = self.lex.next_item();
            if item.typ == Tok::Error {
                return Err(ParseError::new(
                    self.input,
                    PosRange::new(item.pos, self.input.len()),
                    item.val,
                ));
            }
            self.peeked = Some(item);
        }
        Ok(self.peeked.as_ref().expect("filled above"))
    }

    fn next(&mut self) -> Result<Item, ParseError> {
        self.peek()?;
        Ok(self.peeked.take().expect("filled above"))
    }

    fn unexpected(&self, tok: &Item, context: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {} in {context}", tok.desc());
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        ParseError::new(self.input, PosRange::new(tok.pos, tok.end()), msg)
    }

    fn number(&mut self, tok: &Item) -> Result<f64, ParseError> {
        parse_number(&tok.val)
            .map_err(|e| ParseError::new(self.input, PosRange::new(tok.pos, tok.end()), e))
    }

    fn uint(&mut self) -> Result<u64, ParseError> {
        let tok = self.next()?;
        if tok.typ != Tok::Number {
            return Err(self.unexpected(&tok, "series values", "number"));
        }
        tok.val.parse().map_err(|e| {
            ParseError::new(
                self.input,
                PosRange::new(tok.pos, tok.end()),
                format!("invalid repetition in series values: {e}"),
            )
        })
    }
}

/// Parses a series description into its labels and values.
pub(crate) fn parse_series_desc(input: &str) -> Result<(Labels, Vec<SeqValue>), ParseError> {
    let mut p = P {
        lex: Lexer::new_series_desc(input),
        input,
        peeked: None,
    };
    let mut b = LabelsBuilder::new();
    let mut any = false;
    let tok = p.peek()?.clone();
    if is_metric_identifier(tok.typ) {
        p.next()?;
        b.set("__name__", &tok.val);
        any = true;
    }
    if p.peek()?.typ == Tok::LeftBrace {
        p.next()?;
        loop {
            let tok = p.next()?;
            match tok.typ {
                Tok::RightBrace => break,
                Tok::Identifier => {
                    let eq = p.next()?;
                    if eq.typ != Tok::Eql {
                        return Err(p.unexpected(&eq, "label set", "\"=\""));
                    }
                    let val = p.next()?;
                    if val.typ != Tok::String {
                        return Err(p.unexpected(&val, "label set", "string"));
                    }
                    let v = unquote(&val.val).map_err(|e| {
                        ParseError::new(input, PosRange::new(val.pos, val.end()), e)
                    })?;
                    b.set(&tok.val, &v);
                    any |= !v.is_empty();
                    let sep = p.next()?;
                    match sep.typ {
                        Tok::Comma => {}
                        Tok::RightBrace => break,
                        _ => return Err(p.unexpected(&sep, "label set", "\",\" or \"}\"")),
                    }
                }
                _ => return Err(p.unexpected(&tok, "label set", "identifier or \"}\"")),
            }
        }
    }
    let labels = if any {
        b.build()
            .map_err(|e| ParseError::new(input, PosRange::default(), e.to_string()))?
    } else {
        Labels::empty()
    };
    let mut values = Vec::new();
    loop {
        let tok = p.next()?;
        match tok.typ {
            Tok::Eof => break,
            Tok::Space => continue,
            Tok::Blank => {
                if p.peek()?.typ == Tok::Times {
                    p.next()?;
                    let n = p.uint()?;
                    values.extend(std::iter::repeat_n(None, n as usize));
                } else {
                    values.push(None);
                }
            }
            Tok::Identifier if tok.val == "stale" => {
                let v = f64::from_bits(crate::value::STALE_NAN_BITS);
                series_tail(&mut p, &mut values, v)?;
            }
            Tok::Number => {
                let v = p.number(&tok)?;
                series_tail(&mut p, &mut values, v)?;
            }
            Tok::Add | Tok::Sub => {
                let num = p.next()?;
                if num.typ != Tok::Number {
                    return Err(p.unexpected(&num, "series values", ""));
                }
                let mut v = p.number(&num)?;
                if tok.typ == Tok::Sub {
                    v = -v;
                }
                series_tail(&mut p, &mut values, v)?;
            }
            _ => return Err(p.unexpected(&tok, "series values", "")),
        }
    }
    Ok((labels, values))
}

/// After a value: nothing, `xN` (N+1 copies) or `±dxN` (N+1 values stepping by d).
fn series_tail(p: &mut P<'_>, values: &mut Vec<SeqValue>, v: f64) -> Result<(), ParseError> {
    match p.peek()?.typ {
        Tok::Times => {
            p.next()?;
            let n = p.uint()?;
            values.extend(std::iter::repeat_n(Some(v), n as usize + 1));
        }
        Tok::Add | Tok::Sub => {
            let sign = p.next()?;
            let num = p.next()?;
            if num.typ != Tok::Number {
                return Err(p.unexpected(&num, "series values", ""));
            }
            let mut d = p.number(&num)?;
            if sign.typ == Tok::Sub {
                d = -d;
            }
            let times = p.next()?;
            if times.typ != Tok::Times {
                return Err(p.unexpected(&times, "series values", "\"x\""));
            }
            let n = p.uint()?;
            let mut cur = v;
            for _ in 0..=n {
                values.push(Some(cur));
                cur += d;
            }
        }
        _ => values.push(Some(v)),
    }
    Ok(())
}
