//! ObjectScript pattern match (`value?pattern`), the `Matches` function of rules.
//!
//! ```text
//! pattern = atom+              the whole value must match
//! atom    = count item
//! count   = n | n.m | n. | .m | .     exactly n, n to m, at least n, at most m, any
//! item    = codes | "literal" | "(" pattern {"," pattern} ")"
//! codes   = one or more of A (letters) C (control) E (anything) L (lower case)
//!           N (digits) P (punctuation) U (upper case), in either case
//! ```
//! `3N1"-"4N` matches `555-1234`; `1.A` one or more letters. Characters are bytes; the
//! classes are ASCII's (as in IRIS's default locale for these codes).

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    atoms: Vec<Atom>,
}

#[derive(Debug, Clone, PartialEq)]
struct Atom {
    min: usize,
    max: usize,
    item: Item,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A bit set of codes.
    Codes(u8),
    Literal(Vec<u8>),
    Alt(Vec<Pattern>),
}

const A: u8 = 1;
const C: u8 = 2;
const E: u8 = 4;
const L: u8 = 8;
const N: u8 = 16;
const P: u8 = 32;
const U: u8 = 64;

/// Steps a match may take before it gives up (a pathological pattern on a long value).
const MATCH_STEPS_MAX: usize = 100_000;

impl Pattern {
    /// Compiles `text`; `Err` says where it is not a pattern.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let b = text.as_bytes();
        let mut at = 0;
        let p = parse_seq(b, &mut at, false)?;
        if at != b.len() {
            return Err(format!(
                "pattern {text:?}: unexpected {:?} at {}",
                b[at] as char,
                at + 1
            ));
        }
        Ok(p)
    }

    /// True when the whole of `value` matches.
    pub fn matches(&self, value: &[u8]) -> bool {
        let mut steps = 0;
        match_at(&self.atoms, value, 0, &mut steps).contains(&value.len())
    }
}

fn parse_seq(b: &[u8], at: &mut usize, in_alt: bool) -> Result<Pattern, String> {
    let mut atoms = Vec::new();
    while *at < b.len() && !(in_alt && matches!(b[*at], b',' | b')')) {
        atoms.push(parse_atom(b, at)?);
    }
    if atoms.is_empty() {
        return Err(format!("empty pattern at {}", *at + 1));
    }
    Ok(Pattern { atoms })
}

fn number(b: &[u8], at: &mut usize) -> Option<usize> {
    let start = *at;
    while *at < b.len() && b[*at].is_ascii_digit() {
        *at += 1;
    }
    std::str::from_utf8(&b[start..*at]).ok()?.parse().ok()
}

fn parse_atom(b: &[u8], at: &mut usize) -> Result<Atom, String> {
    let first = number(b, at);
    let (min, max) = if *at < b.len() && b[*at] == b'.' {
        *at += 1;
        let second = number(b, at);
        (first.unwrap_or(0), second.unwrap_or(usize::MAX))
    } else {
        let n = first.ok_or_else(|| format!("a count is missing at {}", *at + 1))?;
        (n, n)
    };
    let item = match b.get(*at) {
        Some(b'"') => {
            *at += 1;
            let mut lit = Vec::new();
            loop {
                match b.get(*at) {
                    Some(b'"') if b.get(*at + 1) == Some(&b'"') => {
                        lit.push(b'"');
                        *at += 2;
                    }
                    Some(b'"') => {
                        *at += 1;
                        break;
                    }
                    Some(&c) => {
                        lit.push(c);
                        *at += 1;
                    }
                    None => return Err("a literal is not closed".into()),
                }
            }
            Item::Literal(lit)
        }
        Some(b'(') => {
            *at += 1;
            let mut alts = vec![parse_seq(b, at, true)?];
            while b.get(*at) == Some(&b',') {
                *at += 1;
                alts.push(parse_seq(b, at, true)?);
            }
            if b.get(*at) != Some(&b')') {
                return Err("an alternation is not closed".into());
            }
            *at += 1;
            Item::Alt(alts)
        }
        _ => {
            let mut codes = 0u8;
            while let Some(c) = b.get(*at) {
                codes |= match c.to_ascii_uppercase() {
                    b'A' => A,
                    b'C' => C,
                    b'E' => E,
                    b'L' => L,
                    b'N' => N,
                    b'P' => P,
                    b'U' => U,
                    _ => break,
                };
                *at += 1;
            }
            if codes == 0 {
                return Err(format!(
                    "a pattern code (A C E L N P U), literal or ( is missing at {}",
                    *at + 1
                ));
            }
            Item::Codes(codes)
        }
    };
    Ok(Atom { min, max, item })
}

fn in_class(codes: u8, c: u8) -> bool {
    (codes & E != 0)
        || (codes & A != 0 && c.is_ascii_alphabetic())
        || (codes & U != 0 && c.is_ascii_uppercase())
        || (codes & L != 0 && c.is_ascii_lowercase())
        || (codes & N != 0 && c.is_ascii_digit())
        || (codes & P != 0 && (c.is_ascii_punctuation() || c == b' '))
        || (codes & C != 0 && c.is_ascii_control())
}

/// Every end position reachable by matching `atoms` from `pos`.
fn match_at(atoms: &[Atom], v: &[u8], pos: usize, steps: &mut usize) -> Vec<usize> {
    let Some((atom, rest)) = atoms.split_first() else {
        return vec![pos];
    };
    *steps += 1;
    if *steps > MATCH_STEPS_MAX {
        return Vec::new();
    }
    let mut ends = Vec::new();
    let mut frontier = vec![pos];
    for count in 0..=atom.max.min(v.len() - pos.min(v.len())) {
        if count >= atom.min {
            for &p in &frontier {
                for e in match_at(rest, v, p, steps) {
                    if !ends.contains(&e) {
                        ends.push(e);
                    }
                }
            }
        }
        if count == atom.max {
            break;
        }
        let mut next = Vec::new();
        for &p in &frontier {
            for e in one(&atom.item, v, p, steps) {
                if !next.contains(&e) {
                    next.push(e);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    ends
}

/// End positions of one instance of `item` at `pos`.
fn one(item: &Item, v: &[u8], pos: usize, steps: &mut usize) -> Vec<usize> {
    match item {
        Item::Codes(c) => match v.get(pos) {
            Some(&b) if in_class(*c, b) => vec![pos + 1],
            _ => Vec::new(),
        },
        Item::Literal(l) => {
            if v[pos.min(v.len())..].starts_with(l) && !l.is_empty() {
                vec![pos + l.len()]
            } else {
                Vec::new()
            }
        }
        Item::Alt(alts) => {
            let mut out = Vec::new();
            for a in alts {
                for e in match_at(&a.atoms, v, pos, steps) {
                    if e > pos && !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        Pattern::parse(p).unwrap().matches(v.as_bytes())
    }

    #[test]
    fn patterns_match_counts_codes_literals_and_alternations() {
        assert!(m("3N1\"-\"4N", "555-1234"));
        assert!(!m("3N1\"-\"4N", "555-123"));
        assert!(m("1.A", "abc"));
        assert!(!m("1.A", ""));
        assert!(m(".N", ""));
        assert!(m("1U.L", "Smith"));
        assert!(m("1(1\"ADT\",1\"ORM\")1\"^\"1U2N", "ADT^A01"));
        assert!(!m("1(1\"ADT\",1\"ORM\")1\"^\"1U2N", "ORU^R01"));
        assert!(m("2.4AN", "ab12"));
        assert!(!m("2.3AN", "ab12"));
        assert!(m(".E1\"X\"", "abcX"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(Pattern::parse("3Q").is_err());
        assert!(Pattern::parse("N").is_err());
        assert!(Pattern::parse("1\"ab").is_err());
        assert!(Pattern::parse("1(1N,1A").is_err());
    }
}
