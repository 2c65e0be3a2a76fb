//! The condition and value language of IRIS rules: lexer, parser, compiled tree, and its
//! evaluation on a message's zero-copy scan.
//!
//! ```text
//! or      = and { ("||" | "OR") and }
//! and     = not { ("&&" | "AND" | "&") not }
//! not     = ("!" | "NOT" | "'") not | compare
//! compare = concat { op concat }      op: = != '= < > <= >= '< '> [ ] '[ ']  and the
//!                                     infix functions (a Contains b, a In "x,y", ...)
//! concat  = sum { "_" sum }
//! sum     = product { ("+" | "-") product }
//! product = unary { ("*" | "/" | "\" | "#") unary }
//! unary   = ("-" | "+") unary | primary
//! primary = number | "string" ("" inside is a quote) | "(" or ")"
//!         | ROOT.{path}  (ROOT: HL7, Document; Segment inside foreach)
//!         | property (Source, HL7.Name, HL7.DocType, ..) | variable set by <assign>
//!         | [..]Function(args)
//! ```
//!
//! Precedence: IRIS's rule editor writes fully parenthesised conditions; hie gives the
//! usual order above (logical below comparison below concatenation below arithmetic).
//! `[` is ObjectScript's contains and `]` its follows (sorts after). `AND`/`OR`/`NOT`
//! and function names are matched ignoring case. Operands of `&&` and `||` are evaluated
//! left to right and only as needed. Comparison rules: [`super::value`].
//!
//! A tree is compiled once when the rule loads (patterns, regular expressions, files and
//! lookup tables named by literals are resolved then); evaluating it allocates only for
//! values an operator or function makes (a concatenation, `ToUpper`, a `()` list).

use hie_hl7::{Message, Segment};

use super::func::{Func, Prepared};
use super::lookup::Lookups;
use super::value::{Val, canonical, to_num};
use super::vpath::{Groups, VPath};

/// What a rule set knows of a message besides its content.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'e> {
    /// The sending item's name.
    pub source: &'e str,
    /// The message class (`EnsLib.HL7.Message`).
    pub msg_class: &'e str,
    /// The schema category of its DocType (e.g. `2.5`).
    pub category: &'e str,
    /// Message type and trigger, `ADT_A08` (IRIS's `Name`).
    pub name: &'e str,
    /// The message structure, `ADT_A01`.
    pub structure: &'e str,
}

/// What an expression reads when it is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Env<'e> {
    pub msg: &'e Message<'e>,
    pub facts: &'e Facts<'e>,
    /// Values of the variables `<assign>` set, by slot.
    pub vars: &'e [Vec<u8>],
    /// The current segment of a `foreach`.
    pub segment: Option<Segment<'e>>,
    pub lookups: &'e Lookups,
    /// The message's placement in its structure's groups, made on first use.
    pub groups: &'e Groups,
}

/// A property of the message or the routing context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    Source,
    MsgClass,
    Name,
    DocType,
    DocTypeCategory,
    DocTypeName,
    TypeVersion,
    Identifier,
    SegCount,
    ParentId,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Contains,
    NotContains,
    Follows,
    NotFollows,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
}

/// A compiled expression.
#[derive(Debug)]
pub enum Expr {
    Lit(Box<[u8]>),
    Prop(Prop),
    Path(VPath),
    /// `Segment.{..}`: a field of the current `foreach` segment.
    SegPath(VPath),
    Var(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Box<[Expr]>, Prepared),
}

/// What compiling an expression may resolve: variables, lookup tables, files.
pub struct Scope<'a> {
    /// Names of the variables `<assign>` sets in this class (index = slot).
    pub vars: &'a [String],
    pub lookups: &'a Lookups,
    /// Reads a file named by `InFile` (its lines), at load time.
    pub read_lines: &'a dyn Fn(&str) -> Result<Vec<String>, String>,
    /// Inside a `foreach` over this segment (`Segment.{..}` reads the current one).
    pub foreach_segment: Option<[u8; 3]>,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("vars", &self.vars)
            .finish_non_exhaustive()
    }
}

/// Compiles `text`; `Err` is (1-based character position, why).
pub fn compile(text: &str, scope: &Scope<'_>) -> Result<Expr, (usize, String)> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        scope,
        end: text.chars().count() + 1,
    };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err((
            t.pos,
            format!(
                "unexpected {} after a complete expression",
                t.kind.describe()
            ),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num(String),
    Str(String),
    Ident(String),
    Path(String, String),
    Sym(&'static str),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Num(n) => format!("number {n}"),
            Kind::Str(s) => format!("string {s:?}"),
            Kind::Ident(i) => format!("name {i}"),
            Kind::Path(r, p) => format!("path {r}.{{{p}}}"),
            Kind::Sym(s) => format!("{s:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based character position.
    pos: usize,
}

const SYMBOLS: &[&str] = &[
    "'=", "'<", "'>", "'[", "']", "!=", "<=", ">=", "&&", "||", "'", "!", "=", "<", ">", "[", "]",
    "_", "+", "-", "*", "/", "\\", "#", "(", ")", ",", "&",
];

fn lex(text: &str) -> Result<Vec<Token>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        s.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                    None => return Err((pos, "a string is not closed".into())),
                }
            }
            out.push(Token {
                kind: Kind::Str(s),
                pos,
            });
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len()
                && matches!(chars[i], 'E' | 'e')
                && chars
                    .get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '-' || *d == '+')
            {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Token {
                kind: Kind::Num(chars[start..i].iter().collect()),
                pos,
            });
        } else if c.is_alphabetic() || c == '%' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '%'
                    || (chars[i] == '.' && chars.get(i + 1) != Some(&'{')))
            {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'.') && chars.get(i + 1) == Some(&'{') {
                let open = i + 2;
                let Some(close) = chars[open..].iter().position(|&c| c == '}') else {
                    return Err((pos, format!("{name}.{{ is not closed by }}")));
                };
                let inner: String = chars[open..open + close].iter().collect();
                out.push(Token {
                    kind: Kind::Path(name, inner),
                    pos,
                });
                i = open + close + 1;
            } else {
                out.push(Token {
                    kind: Kind::Ident(name),
                    pos,
                });
            }
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err((pos, format!("{c:?} is not part of the rule language")));
            };
            out.push(Token {
                kind: Kind::Sym(sym),
                pos,
            });
            i += sym.chars().count();
        }
    }
    Ok(out)
}

struct Parser<'t, 's> {
    tokens: &'t [Token],
    at: usize,
    scope: &'s Scope<'s>,
    end: usize,
}

type Parsed = Result<Expr, (usize, String)>;

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn pos(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    fn eat_sym(&mut self, syms: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Token {
                kind: Kind::Sym(s), ..
            }) if syms.contains(s) => {
                let s = *s;
                self.at += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token {
                kind: Kind::Ident(w),
                ..
            }) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Parsed {
        let mut left = self.and()?;
        while self.eat_sym(&["||"]).is_some() || self.eat_word("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Parsed {
        let mut left = self.not()?;
        while self.eat_sym(&["&&", "&"]).is_some() || self.eat_word("AND") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Parsed {
        if self.eat_sym(&["!", "'"]).is_some() || self.eat_word("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Parsed {
        let mut left = self.concat()?;
        loop {
            let op = match self.eat_sym(&[
                "=", "!=", "'=", "<", ">", "<=", ">=", "'<", "'>", "[", "]", "'[", "']",
            ]) {
                Some("=") => Op::Eq,
                Some("!=" | "'=") => Op::Ne,
                Some("<") => Op::Lt,
                Some(">") => Op::Gt,
                Some("<=" | "'>") => Op::Le,
                Some(">=" | "'<") => Op::Ge,
                Some("[") => Op::Contains,
                Some("'[") => Op::NotContains,
                Some("]") => Op::Follows,
                Some("']") => Op::NotFollows,
                _ => {
                    let Some(Token {
                        kind: Kind::Ident(w),
                        pos,
                    }) = self.peek().cloned()
                    else {
                        return Ok(left);
                    };
                    let Some(func) = Func::by_name(&w).filter(|f| f.infix()) else {
                        return Ok(left);
                    };
                    self.at += 1;
                    let right = self.concat()?;
                    left = self.call(func, vec![left, right], pos)?;
                    continue;
                }
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.concat()?));
        }
    }

    fn concat(&mut self) -> Parsed {
        let mut left = self.sum()?;
        while self.eat_sym(&["_"]).is_some() {
            left = Expr::Bin(Op::Concat, Box::new(left), Box::new(self.sum()?));
        }
        Ok(left)
    }

    fn sum(&mut self) -> Parsed {
        let mut left = self.product()?;
        while let Some(s) = self.eat_sym(&["+", "-"]) {
            let op = if s == "+" { Op::Add } else { Op::Sub };
            left = Expr::Bin(op, Box::new(left), Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Parsed {
        let mut left = self.unary()?;
        while let Some(s) = self.eat_sym(&["*", "/", "\\", "#"]) {
            let op = match s {
                "*" => Op::Mul,
                "/" => Op::Div,
                "\\" => Op::IntDiv,
                _ => Op::Mod,
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Parsed {
        match self.eat_sym(&["-", "+"]) {
            Some("-") => Ok(Expr::Neg(Box::new(self.unary()?))),
            Some(_) => Ok(Expr::Bin(
                Op::Add,
                Box::new(Expr::Lit(Box::new(*b"0"))),
                Box::new(self.unary()?),
            )),
            None => self.primary(),
        }
    }

    fn primary(&mut self) -> Parsed {
        let pos = self.pos();
        let Some(t) = self.peek().cloned() else {
            return Err((pos, "the expression ends where a value is expected".into()));
        };
        self.at += 1;
        match t.kind {
            Kind::Num(n) => {
                let v = n
                    .parse::<f64>()
                    .map_err(|_| (pos, format!("{n:?} is not a number")))?;
                Ok(Expr::Lit(canonical(v).into_bytes().into_boxed_slice()))
            }
            Kind::Str(s) => Ok(Expr::Lit(s.into_bytes().into_boxed_slice())),
            Kind::Sym("(") => {
                let e = self.or()?;
                if self.eat_sym(&[")"]).is_none() {
                    return Err((self.pos(), "a ( is not closed".into()));
                }
                Ok(e)
            }
            Kind::Path(root, inner) => self.path(&root, &inner, pos),
            Kind::Ident(name) => {
                if self.eat_sym(&["("]).is_some() {
                    let args = self.args()?;
                    let bare = name.trim_start_matches('.');
                    let func = Func::by_name(bare)
                        .ok_or_else(|| (pos, format!("function {bare} is not one hie knows")))?;
                    return self.call(func, args, pos);
                }
                self.property(&name, pos)
            }
            Kind::Sym(s) => Err((pos, format!("{s:?} where a value is expected"))),
        }
    }

    fn args(&mut self) -> Result<Vec<Expr>, (usize, String)> {
        let mut args = Vec::new();
        if self.eat_sym(&[")"]).is_some() {
            return Ok(args);
        }
        loop {
            // An omitted argument, `f(a,,c)`, is the empty string (its default applies).
            if matches!(
                self.peek(),
                Some(Token {
                    kind: Kind::Sym("," | ")"),
                    ..
                })
            ) {
                args.push(Expr::Lit(Box::new([])));
            } else {
                args.push(self.or()?);
            }
            match self.eat_sym(&[",", ")"]) {
                Some(",") => {}
                Some(_) => return Ok(args),
                None => return Err((self.pos(), "expected , or ) in the arguments".into())),
            }
        }
    }

    fn call(&self, func: Func, args: Vec<Expr>, pos: usize) -> Parsed {
        let prepared = func.prepare(&args, self.scope).map_err(|m| (pos, m))?;
        Ok(Expr::Call(func, args.into_boxed_slice(), prepared))
    }

    fn path(&self, root: &str, inner: &str, pos: usize) -> Parsed {
        match root {
            "HL7" | "Document" => VPath::parse(inner).map(Expr::Path).map_err(|m| (pos, m)),
            "Segment" if self.scope.foreach_segment.is_some() => {
                let id = self.scope.foreach_segment.unwrap_or_default();
                VPath::parse_segment_relative(inner, id)
                    .map(Expr::SegPath)
                    .map_err(|m| (pos, m))
            }
            "Segment" => Err((
                pos,
                "Segment.{..} is only defined inside a <foreach>".into(),
            )),
            other => {
                // A transform (DTL) names its `source.{..}` / `target.{..}` paths as
                // variables, filled before the expression runs.
                let whole = format!("{other}.{{{inner}}}");
                match self.scope.vars.iter().position(|v| *v == whole) {
                    Some(slot) => Ok(Expr::Var(slot)),
                    None => Err((
                        pos,
                        format!("{other}.{{..}}: hie reads paths of HL7 and Document only"),
                    )),
                }
            }
        }
    }

    fn property(&self, name: &str, pos: usize) -> Parsed {
        if let Some(slot) = self.scope.vars.iter().position(|v| v == name) {
            return Ok(Expr::Var(slot));
        }
        let prop = match name {
            "Source" | "source" => Prop::Source,
            "MsgClass" => Prop::MsgClass,
            _ => {
                let Some((root, field)) = name.split_once('.') else {
                    return Err((
                        pos,
                        format!("{name} is no property, variable or function hie knows"),
                    ));
                };
                if root != "HL7" && root != "Document" {
                    return Err((
                        pos,
                        format!("{name}: hie knows properties of HL7 and Document only"),
                    ));
                }
                match field {
                    "Name" => Prop::Name,
                    "DocType" => Prop::DocType,
                    "DocTypeCategory" => Prop::DocTypeCategory,
                    "DocTypeName" => Prop::DocTypeName,
                    "TypeVersion" => Prop::TypeVersion,
                    "Identifier" => Prop::Identifier,
                    "SegCount" => Prop::SegCount,
                    "ParentId" => Prop::ParentId,
                    _ => return Err((pos, format!("{name} is no message property hie knows"))),
                }
            }
        };
        Ok(Expr::Prop(prop))
    }
}

impl Expr {
    /// The value of the expression for the message of `env`.
    pub fn eval<'e>(&'e self, env: &Env<'e>) -> Val<'e> {
        match self {
            Expr::Lit(b) => Val::Borrowed(b),
            Expr::Prop(p) => prop(*p, env),
            Expr::Path(p) => p.eval(env.msg, env.groups),
            Expr::SegPath(p) => {
                p.of_segment(env.segment, env.msg, env.groups, env.msg.delimiters())
            }
            Expr::Var(slot) => Val::Borrowed(env.vars.get(*slot).map_or(&[][..], |v| v)),
            Expr::Not(e) => Val::bool(!e.eval(env).truth()),
            Expr::Neg(e) => Val::number(-e.eval(env).num()),
            Expr::And(a, b) => Val::bool(a.eval(env).truth() && b.eval(env).truth()),
            Expr::Or(a, b) => Val::bool(a.eval(env).truth() || b.eval(env).truth()),
            Expr::Bin(op, a, b) => binary(*op, a.eval(env), b.eval(env)),
            Expr::Call(f, args, prepared) => f.eval(args, prepared, env),
        }
    }

    /// The expression's truth for the message of `env`.
    pub fn truth<'e>(&'e self, env: &Env<'e>) -> bool {
        self.eval(env).truth()
    }
}

fn prop<'e>(p: Prop, env: &Env<'e>) -> Val<'e> {
    let f = env.facts;
    match p {
        Prop::Source => Val::Borrowed(f.source.as_bytes()),
        Prop::MsgClass => Val::Borrowed(f.msg_class.as_bytes()),
        Prop::Name => Val::Borrowed(f.name.as_bytes()),
        Prop::DocTypeCategory => Val::Borrowed(f.category.as_bytes()),
        Prop::DocTypeName => Val::Borrowed(f.structure.as_bytes()),
        Prop::DocType => {
            if f.category.is_empty() || f.structure.is_empty() {
                Val::Borrowed(b"")
            } else {
                Val::Owned(format!("{}:{}", f.category, f.structure).into_bytes())
            }
        }
        Prop::TypeVersion => Val::Borrowed(env.msg.version().unwrap_or_default()),
        Prop::Identifier => Val::Borrowed(env.msg.control_id().unwrap_or_default()),
        Prop::SegCount => Val::number(env.msg.segment_count() as f64),
        Prop::ParentId => Val::Borrowed(b""),
    }
}

fn binary<'e>(op: Op, a: Val<'e>, b: Val<'e>) -> Val<'e> {
    let (x, y) = (a.bytes(), b.bytes());
    match op {
        Op::Eq => Val::bool(x == y),
        Op::Ne => Val::bool(x != y),
        Op::Lt => Val::bool(to_num(x) < to_num(y)),
        Op::Gt => Val::bool(to_num(x) > to_num(y)),
        Op::Le => Val::bool(to_num(x) <= to_num(y)),
        Op::Ge => Val::bool(to_num(x) >= to_num(y)),
        Op::Contains => Val::bool(memchr::memmem::find(x, y).is_some()),
        Op::NotContains => Val::bool(memchr::memmem::find(x, y).is_none()),
        Op::Follows => Val::bool(x > y),
        Op::NotFollows => Val::bool(x <= y),
        Op::Concat => {
            if y.is_empty() {
                return a;
            }
            let mut v = Vec::with_capacity(x.len() + y.len());
            v.extend_from_slice(x);
            v.extend_from_slice(y);
            Val::Owned(v)
        }
        Op::Add => Val::number(to_num(x) + to_num(y)),
        Op::Sub => Val::number(to_num(x) - to_num(y)),
        Op::Mul => Val::number(to_num(x) * to_num(y)),
        Op::Div | Op::IntDiv | Op::Mod if to_num(y) == 0.0 => Val::Borrowed(b""),
        Op::Div => Val::number(to_num(x) / to_num(y)),
        Op::IntDiv => Val::number((to_num(x) / to_num(y)).trunc()),
        Op::Mod => {
            let (n, d) = (to_num(x), to_num(y));
            Val::number(n - d * (n / d).floor())
        }
    }
}
