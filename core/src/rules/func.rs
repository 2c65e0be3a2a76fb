//! The functions of IRIS rules (`Ens.Rule.FunctionSet` / `Ens.Util.FunctionSet`), by
//! their IRIS names and argument defaults; the two-argument tests may also be written
//! infix (`a Contains b`). What each does, from InterSystems' "Utility Functions for Use
//! in Productions" and the ObjectScript functions they call:
//!
//! ```text
//! Contains(v,s)  DoesNotContain        v holds s ($FIND / [)
//! StartsWith(v,p)  DoesNotStartWith    v begins with p
//! In(v,list)  NotIn                    v equals an item of the comma list
//! InFile(v,file)                       v equals a line of the file (read at load)
//! IntersectsList(a,b,sa="><",sb=",")   an item of list a is an item of list b; a in
//!   DoesNotIntersectList                 the `<x><y>` form of a `()` path by default
//! Matches(v,pat)  DoesNotMatch         ObjectScript pattern match (v?pat), see pattern
//! RegexMatch(v,re)                     the whole of v matches re ($MATCH); `regex` crate
//! Like(v,pat)                          SQL LIKE: % any run, _ one character
//! Exists(table,key)                    the lookup table has key
//! Lookup(table,key,default="",onEmpty=0)  the table's value for key, else default (an
//!                                      empty key gives "" unless onEmpty is true)
//! Length(v,delim)                      characters ($LENGTH), or pieces with a delimiter
//! ToUpper(v) ToLower(v)
//! Piece(v,delim=",",from=1,to=from)    $PIECE
//! SubString(v,start=1,end=length)      $EXTRACT, in characters
//! Strip(v,action,remove="",keep="")    $ZSTRIP: action * < > = then classes A N P C W L U E
//! ReplaceStr(v,find,with)              $REPLACE, every occurrence
//! ConvertDateTime(v,in="%Q",out="%Q")  see datetime
//! CurrentDateTime(format="%Q")         local time
//! Round(v,digits=0)                    half away from zero
//! Min(a,..) Max(a,..)                  numeric
//! ```
//! Literal patterns, regular expressions, files, lookup-table names and date formats are
//! checked when the rule loads; a bad one is a load error. A non-literal pattern or
//! regular expression that does not compile at run time makes the test false.

use std::collections::HashSet;

use super::datetime;
use super::expr::{Env, Expr, Scope};
use super::pattern::Pattern;
use super::value::{Val, to_num};

/// A function of the rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Contains,
    DoesNotContain,
    StartsWith,
    DoesNotStartWith,
    In,
    NotIn,
    InFile,
    IntersectsList,
    DoesNotIntersectList,
    Matches,
    DoesNotMatch,
    RegexMatch,
    Like,
    Exists,
    Lookup,
    Length,
    ToUpper,
    ToLower,
    Piece,
    SubString,
    Strip,
    ReplaceStr,
    ConvertDateTime,
    CurrentDateTime,
    Round,
    Min,
    Max,
}

/// (function, name, least arguments, most arguments, may be written infix)
const TABLE: &[(Func, &str, usize, usize, bool)] = &[
    (Func::Contains, "Contains", 2, 2, true),
    (Func::DoesNotContain, "DoesNotContain", 2, 2, true),
    (Func::StartsWith, "StartsWith", 2, 2, true),
    (Func::DoesNotStartWith, "DoesNotStartWith", 2, 2, true),
    (Func::In, "In", 2, 2, true),
    (Func::NotIn, "NotIn", 2, 2, true),
    (Func::InFile, "InFile", 2, 2, true),
    (Func::IntersectsList, "IntersectsList", 2, 4, true),
    (
        Func::DoesNotIntersectList,
        "DoesNotIntersectList",
        2,
        4,
        true,
    ),
    (Func::Matches, "Matches", 2, 2, true),
    (Func::DoesNotMatch, "DoesNotMatch", 2, 2, true),
    (Func::RegexMatch, "RegexMatch", 2, 2, true),
    (Func::Like, "Like", 2, 2, true),
    (Func::Exists, "Exists", 2, 2, false),
    (Func::Lookup, "Lookup", 2, 4, false),
    (Func::Length, "Length", 1, 2, false),
    (Func::ToUpper, "ToUpper", 1, 1, false),
    (Func::ToLower, "ToLower", 1, 1, false),
    (Func::Piece, "Piece", 1, 4, false),
    (Func::SubString, "SubString", 1, 3, false),
    (Func::Strip, "Strip", 1, 4, false),
    (Func::ReplaceStr, "ReplaceStr", 3, 3, false),
    (Func::ConvertDateTime, "ConvertDateTime", 1, 4, false),
    (Func::CurrentDateTime, "CurrentDateTime", 0, 1, false),
    (Func::Round, "Round", 1, 2, false),
    (Func::Min, "Min", 1, usize::MAX, false),
    (Func::Max, "Max", 1, usize::MAX, false),
];

/// What a call resolved when it was compiled.
#[derive(Debug)]
pub enum Prepared {
    None,
    Pattern(Pattern),
    Regex(regex::bytes::Regex),
    Lines(HashSet<Vec<u8>>),
}

fn entry(f: Func) -> &'static (Func, &'static str, usize, usize, bool) {
    TABLE.iter().find(|e| e.0 == f).unwrap_or(&TABLE[0])
}

fn literal(e: Option<&Expr>) -> Option<&str> {
    match e {
        Some(Expr::Lit(b)) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

impl Func {
    /// The function named `name`, ignoring case.
    pub fn by_name(name: &str) -> Option<Func> {
        TABLE
            .iter()
            .find(|e| e.1.eq_ignore_ascii_case(name))
            .map(|e| e.0)
    }

    /// True when IRIS lets it be written between its two arguments.
    pub fn infix(self) -> bool {
        entry(self).4
    }

    /// Checks the arguments and resolves what literals name.
    pub fn prepare(self, args: &[Expr], scope: &Scope<'_>) -> Result<Prepared, String> {
        let (_, name, min, max, _) = *entry(self);
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!(
                "{name} takes {want} argument(s), not {}",
                args.len()
            ));
        }
        let second = literal(args.get(1));
        Ok(match self {
            Func::Matches | Func::DoesNotMatch => match second {
                Some(p) => Prepared::Pattern(Pattern::parse(p)?),
                None => Prepared::None,
            },
            Func::RegexMatch => match second {
                Some(re) => Prepared::Regex(anchored(re).map_err(|e| format!("RegexMatch: {e}"))?),
                None => Prepared::None,
            },
            Func::InFile => {
                let file = second.ok_or("InFile needs the file name as a literal string (hie reads the file when the rule loads)")?;
                let lines =
                    (scope.read_lines)(file).map_err(|e| format!("InFile {file:?}: {e}"))?;
                Prepared::Lines(lines.into_iter().map(String::into_bytes).collect())
            }
            Func::Exists | Func::Lookup => {
                if let Some(t) = literal(args.first())
                    && !scope.lookups.has(t)
                {
                    return Err(format!(
                        "{name}: lookup table {t:?} was not found (hie loads lookup tables from the rule folders)"
                    ));
                }
                Prepared::None
            }
            Func::ConvertDateTime => {
                for i in [1, 2] {
                    if let Some(f) = literal(args.get(i)).filter(|f| !f.is_empty()) {
                        datetime::check_format(f)?;
                    }
                }
                Prepared::None
            }
            Func::CurrentDateTime => {
                if let Some(f) = literal(args.first()).filter(|f| !f.is_empty()) {
                    datetime::check_format(f)?;
                }
                Prepared::None
            }
            _ => Prepared::None,
        })
    }

    /// Calls the function.
    pub fn eval<'e>(self, args: &'e [Expr], prepared: &'e Prepared, env: &Env<'e>) -> Val<'e> {
        let arg = |i: usize| args.get(i).map_or(Val::Borrowed(b""), |a| a.eval(env));
        match self {
            Func::Contains => Val::bool(contains(arg(0).bytes(), arg(1).bytes())),
            Func::DoesNotContain => Val::bool(!contains(arg(0).bytes(), arg(1).bytes())),
            Func::StartsWith => Val::bool(arg(0).bytes().starts_with(arg(1).bytes())),
            Func::DoesNotStartWith => Val::bool(!arg(0).bytes().starts_with(arg(1).bytes())),
            Func::In => Val::bool(in_list(arg(0).bytes(), arg(1).bytes())),
            Func::NotIn => Val::bool(!in_list(arg(0).bytes(), arg(1).bytes())),
            Func::InFile => {
                Val::bool(matches!(prepared, Prepared::Lines(l) if l.contains(arg(0).bytes())))
            }
            Func::IntersectsList => Val::bool(intersects(args, env)),
            Func::DoesNotIntersectList => Val::bool(!intersects(args, env)),
            Func::Matches => Val::bool(pattern_match(prepared, arg(0).bytes(), &arg(1))),
            Func::DoesNotMatch => Val::bool(!pattern_match(prepared, arg(0).bytes(), &arg(1))),
            Func::RegexMatch => Val::bool(match prepared {
                Prepared::Regex(re) => re.is_match(arg(0).bytes()),
                _ => anchored(&arg(1).text()).is_ok_and(|re| re.is_match(arg(0).bytes())),
            }),
            Func::Like => Val::bool(like(arg(0).bytes(), arg(1).bytes())),
            Func::Exists => {
                let (t, k) = (arg(0), arg(1));
                Val::bool(
                    env.lookups
                        .table(&t.text())
                        .is_some_and(|t| t.contains_key(k.text().as_ref())),
                )
            }
            Func::Lookup => lookup(args, env),
            Func::Length => length(&arg(0), args.get(1).map(|d| d.eval(env))),
            Func::ToUpper => Val::Owned(arg(0).text().to_uppercase().into_bytes()),
            Func::ToLower => Val::Owned(arg(0).text().to_lowercase().into_bytes()),
            Func::Piece => piece(args, env),
            Func::SubString => substring(args, env),
            Func::Strip => strip(args, env),
            Func::ReplaceStr => {
                let (v, f, w) = (arg(0), arg(1), arg(2));
                if f.bytes().is_empty() {
                    return v;
                }
                Val::Owned(
                    v.text()
                        .replace(f.text().as_ref(), w.text().as_ref())
                        .into_bytes(),
                )
            }
            Func::ConvertDateTime => convert_date_time(args, env),
            Func::CurrentDateTime => {
                let f = arg(0);
                let f = if f.bytes().is_empty() {
                    "%Q".into()
                } else {
                    f.text()
                };
                let mut out = String::new();
                datetime::format(&datetime::now_local(), &f, &mut out);
                Val::Owned(out.into_bytes())
            }
            Func::Round => {
                let digits = if args.len() > 1 {
                    to_num(arg(1).bytes()) as i32
                } else {
                    0
                };
                let scale = 10f64.powi(digits.clamp(0, 15));
                let v = arg(0).num() * scale;
                Val::number(v.abs().round().copysign(v) / scale)
            }
            Func::Min | Func::Max => {
                let nums = args.iter().map(|a| a.eval(env).num());
                let n = if self == Func::Min {
                    nums.fold(f64::INFINITY, f64::min)
                } else {
                    nums.fold(f64::NEG_INFINITY, f64::max)
                };
                Val::number(n)
            }
        }
    }
}

/// `re` as $MATCH reads it: the whole value must match.
fn anchored(re: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::Regex::new(&format!("^(?:{re})$"))
}

fn contains(v: &[u8], s: &[u8]) -> bool {
    memchr::memmem::find(v, s).is_some()
}

fn in_list(v: &[u8], list: &[u8]) -> bool {
    list.split(|&b| b == b',').any(|item| item == v)
}

fn pattern_match(prepared: &Prepared, v: &[u8], pattern: &Val<'_>) -> bool {
    match prepared {
        Prepared::Pattern(p) => p.matches(v),
        _ => Pattern::parse(&pattern.text()).is_ok_and(|p| p.matches(v)),
    }
}

/// The items of a list `v` split on `sep`; `><` reads IRIS's `<a><b>` form.
fn items<'v>(v: &'v [u8], sep: &[u8]) -> Vec<&'v [u8]> {
    if sep.is_empty() {
        return vec![v];
    }
    let mut v = v;
    if sep == b"><" {
        v = v.strip_prefix(b"<").unwrap_or(v);
        v = v.strip_suffix(b">").unwrap_or(v);
    }
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(i) = memchr::memmem::find(rest, sep) {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

fn intersects<'e>(args: &'e [Expr], env: &Env<'e>) -> bool {
    let a = args[0].eval(env);
    let b = args[1].eval(env);
    let sa = args.get(2).map(|e| e.eval(env));
    let sb = args.get(3).map(|e| e.eval(env));
    let sa = sa.as_ref().map_or(&b"><"[..], |v| {
        if v.bytes().is_empty() {
            b"><"
        } else {
            v.bytes()
        }
    });
    let sb = sb.as_ref().map_or(&b","[..], |v| {
        if v.bytes().is_empty() {
            b","
        } else {
            v.bytes()
        }
    });
    let right = items(b.bytes(), sb);
    items(a.bytes(), sa)
        .iter()
        .any(|x| !x.is_empty() && right.contains(x))
}

/// SQL LIKE: `%` any run of characters, `_` one character.
fn like(v: &[u8], p: &[u8]) -> bool {
    let (mut vi, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == b'_' || p[pi] == v[vi]) && p[pi] != b'%' {
            vi += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'%' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'%')
}

fn lookup<'e>(args: &'e [Expr], env: &Env<'e>) -> Val<'e> {
    let table = args[0].eval(env);
    let key = args[1].eval(env);
    let default = args.get(2).map_or(Val::Borrowed(b""), |d| d.eval(env));
    if key.bytes().is_empty() {
        let on_empty = args.get(3).is_some_and(|a| a.eval(env).truth());
        return if on_empty {
            default
        } else {
            Val::Borrowed(b"")
        };
    }
    match env
        .lookups
        .table(&table.text())
        .and_then(|t| t.get(key.text().as_ref()))
    {
        Some(v) => Val::Owned(v.clone().into_bytes()),
        None => default,
    }
}

fn length<'e>(v: &Val<'e>, delim: Option<Val<'e>>) -> Val<'e> {
    match delim {
        Some(d) if !d.bytes().is_empty() => Val::number(items(v.bytes(), d.bytes()).len() as f64),
        // Characters; without a copy unless the bytes are not UTF-8.
        _ => Val::number(match std::str::from_utf8(v.bytes()) {
            Ok(t) => t.chars().count(),
            Err(_) => v.text().chars().count(),
        } as f64),
    }
}

fn piece<'e>(args: &'e [Expr], env: &Env<'e>) -> Val<'e> {
    let v = args[0].eval(env);
    let d = args.get(1).map_or(Val::Borrowed(b","), |d| d.eval(env));
    let d = if d.bytes().is_empty() {
        Val::Borrowed(b",")
    } else {
        d
    };
    let from = args
        .get(2)
        .map(|a| a.eval(env).num())
        .filter(|_| args.len() > 2)
        .unwrap_or(1.0)
        .max(1.0) as usize;
    let to = args
        .get(3)
        .map_or(from, |a| a.eval(env).num().max(0.0) as usize);
    let parts = items(v.bytes(), d.bytes());
    if from > parts.len() || to < from {
        return Val::Borrowed(b"");
    }
    let to = to.min(parts.len());
    Val::Owned(parts[from - 1..to].join(d.bytes()))
}

fn substring<'e>(args: &'e [Expr], env: &Env<'e>) -> Val<'e> {
    let v = args[0].eval(env);
    let text = v.text();
    let start = args
        .get(1)
        .map_or(1.0, |a| {
            let s = a.eval(env);
            if s.bytes().is_empty() { 1.0 } else { s.num() }
        })
        .max(1.0) as usize;
    let len = text.chars().count();
    let end = args.get(2).map_or(len, |a| {
        let e = a.eval(env);
        if e.bytes().is_empty() {
            len
        } else {
            e.num().max(0.0) as usize
        }
    });
    if end < start {
        return Val::Borrowed(b"");
    }
    Val::Owned(
        text.chars()
            .skip(start - 1)
            .take(end + 1 - start)
            .collect::<String>()
            .into_bytes(),
    )
}

fn in_classes(classes: &str, c: char) -> bool {
    classes.chars().any(|k| match k.to_ascii_uppercase() {
        'A' => c.is_alphabetic(),
        'N' => c.is_ascii_digit(),
        'P' => c.is_ascii_punctuation(),
        'C' => c.is_control(),
        'W' => c.is_whitespace(),
        'L' => c.is_lowercase(),
        'U' => c.is_uppercase(),
        'E' => true,
        _ => false,
    })
}

fn strip<'e>(args: &'e [Expr], env: &Env<'e>) -> Val<'e> {
    let v = args[0].eval(env);
    let action = args
        .get(1)
        .map_or(Val::Borrowed(b""), |a| a.eval(env))
        .text()
        .into_owned();
    let remove = args
        .get(2)
        .map_or(Val::Borrowed(b""), |a| a.eval(env))
        .text()
        .into_owned();
    let keep = args
        .get(3)
        .map_or(Val::Borrowed(b""), |a| a.eval(env))
        .text()
        .into_owned();
    let modes: String = action
        .chars()
        .take_while(|c| matches!(c, '*' | '<' | '>' | '='))
        .collect();
    let classes = &action[modes.len()..];
    let hit = |c: char| !keep.contains(c) && (in_classes(classes, c) || remove.contains(c));
    let text = v.text();
    let mut chars: Vec<char> = text.chars().collect();
    if modes.contains('*') {
        chars.retain(|&c| !hit(c));
    }
    if modes.contains('<') {
        let n = chars.iter().take_while(|&&c| hit(c)).count();
        chars.drain(..n);
    }
    if modes.contains('>') {
        while chars.last().is_some_and(|&c| hit(c)) {
            chars.pop();
        }
    }
    if modes.contains('=') {
        chars.dedup_by(|a, b| a == b && hit(*a));
    }
    Val::Owned(chars.into_iter().collect::<String>().into_bytes())
}

fn convert_date_time<'e>(args: &'e [Expr], env: &Env<'e>) -> Val<'e> {
    let v = args[0].eval(env);
    let fmt = |i: usize| {
        let f = args
            .get(i)
            .map(|a| a.eval(env).text().into_owned())
            .unwrap_or_default();
        if f.is_empty() { "%Q".to_owned() } else { f }
    };
    let (informat, outformat) = (fmt(1), fmt(2));
    match datetime::parse(&v.text(), &informat) {
        Some(m) => {
            let mut out = String::new();
            datetime::format(&m, &outformat, &mut out);
            Val::Owned(out.into_bytes())
        }
        None => v,
    }
}
