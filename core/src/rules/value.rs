//! Values of the condition language and ObjectScript's rules for them.
//!
//! Every value is a string (ObjectScript has no other type); a number is a string in
//! canonical form. Where the rules come from (InterSystems ObjectScript reference,
//! operators): `=` compares strings exactly (`"01"="1"` is false); `<`, `>`, `<=`, `>=`
//! read both sides as numbers first (`"22" > "100"` is false); a string read as a number
//! takes its longest numeric prefix (`"12abc"` is 12, `"abc"` is 0); a value is true when
//! it reads as a non-zero number. Canonical numbers have no leading zeros, no trailing
//! fractional zeros, and no `0` before the point (`.5`, `-.5`).

use std::borrow::Cow;

/// A value: borrowed from the message or a literal, or made by an operator or function.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl<'a> Val<'a> {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Val::Borrowed(b) => b,
            Val::Owned(v) => v,
        }
    }

    /// The value as text (lossy for bytes that are not UTF-8).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }

    /// The value read as a number.
    pub fn num(&self) -> f64 {
        to_num(self.bytes())
    }

    /// The value read as a truth value.
    pub fn truth(&self) -> bool {
        let b = self.bytes();
        // Fast paths for what conditions yield.
        match b {
            b"1" => true,
            b"0" | b"" => false,
            _ => to_num(b) != 0.0,
        }
    }

    /// A truth value as ObjectScript writes it.
    pub fn bool(b: bool) -> Val<'static> {
        Val::Borrowed(if b { b"1" } else { b"0" })
    }

    /// A number in canonical form (small counts without allocating).
    pub fn number(n: f64) -> Val<'static> {
        if n >= 0.0 && n < SMALL_INTS.len() as f64 && n.fract() == 0.0 {
            return Val::Borrowed(SMALL_INTS[n as usize].as_bytes());
        }
        Val::Owned(canonical(n).into_bytes())
    }
}

/// 0..=99 in canonical form: lengths, counts and small sums need no allocation.
const SMALL_INTS: [&str; 100] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48",
    "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64",
    "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80",
    "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
    "97", "98", "99",
];

/// The longest numeric prefix of `b` as a number (0 when there is none).
pub fn to_num(b: &[u8]) -> f64 {
    // Digits only, up to 15 of them (exact in an f64): what counts, lengths and most
    // field values are; read without the float parser.
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64;
    }
    let mut i = 0;
    let mut negative = false;
    while i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative ^= b[i] == b'-';
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == start || &b[start..i] == b"." {
        return 0.0;
    }
    let mut end = i;
    if i < b.len() && (b[i] == b'E' || b[i] == b'e') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let digits = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > digits {
            end = j;
        }
    }
    let text = std::str::from_utf8(&b[start..end]).unwrap_or("0");
    let n: f64 = text.parse().unwrap_or(0.0);
    if negative { -n } else { n }
}

/// True when `b` is a number in canonical form (reads back to itself).
pub fn is_canonical_number(b: &[u8]) -> bool {
    !b.is_empty() && canonical(to_num(b)).as_bytes() == b
}

/// `n` in ObjectScript's canonical form.
pub fn canonical(n: f64) -> String {
    if n == 0.0 || !n.is_finite() {
        return "0".into();
    }
    if n.fract() == 0.0 && n.abs() < 1e18 {
        return format!("{}", n as i64);
    }
    let mut s = format!("{n}");
    if s.contains('e') {
        return s;
    }
    if let Some(rest) = s.strip_prefix("0.") {
        s = format!(".{rest}");
    } else if let Some(rest) = s.strip_prefix("-0.") {
        s = format!("-.{rest}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_their_longest_numeric_prefix() {
        assert_eq!(to_num(b"12abc"), 12.0);
        assert_eq!(to_num(b"abc"), 0.0);
        assert_eq!(to_num(b"-3.5"), -3.5);
        assert_eq!(to_num(b"--2"), 2.0);
        assert_eq!(to_num(b"1E3x"), 1000.0);
        assert_eq!(to_num(b".5"), 0.5);
        assert_eq!(to_num(b"."), 0.0);
        assert_eq!(to_num(b"007"), 7.0);
        assert_eq!(to_num(b"123456789012345"), 123456789012345.0);
        assert_eq!(to_num(b"1234567890123456789"), 1234567890123456789.0);
    }

    #[test]
    fn canonical_numbers_have_no_leading_zero_before_the_point() {
        assert_eq!(canonical(0.5), ".5");
        assert_eq!(canonical(-0.25), "-.25");
        assert_eq!(canonical(10.0), "10");
        assert_eq!(canonical(1.5), "1.5");
        assert!(is_canonical_number(b"12"));
        assert!(!is_canonical_number(b"012"));
    }

    #[test]
    fn truth_is_a_non_zero_number() {
        assert!(Val::Borrowed(b"1").truth());
        assert!(Val::Borrowed(b"2x").truth());
        assert!(!Val::Borrowed(b"abc").truth());
        assert!(!Val::Borrowed(b"").truth());
    }
}
