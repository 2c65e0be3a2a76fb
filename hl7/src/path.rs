//! Field paths: parsed once (at configuration time), then reused for every lookup.
//!
//! ```text
//! path     = segment [occ] ("-" | ":") field [rep] ["." component ["." subcomponent]]
//! segment  = 3 × (A-Z | 0-9)              e.g. PID, OBX, ZPD
//! occ, rep = "[" n "]" | "(" n ")"        1-based; "OBX[3]" is the third OBX
//! n        = 1..=4294967295
//!
//! PID-3            field 3, all repetitions          (HL7 numbering: MSH-1 is "|")
//! PID-3.1          component 1 of the first repetition
//! PID-3[2].1.2     repetition 2, component 1, sub-component 2
//! OBX[3]-5         field 5 of the third OBX
//! PID:3(2).1       the IRIS virtual-property form of PID-3[2].1
//! ```
//!
//! A [`Path`] is `Copy`: 24 bytes, no heap. It does not know the message's delimiters, so
//! the same path works on messages with any separators. `Display` prints the canonical
//! `-`/`[]` form, which parses back to an equal path.

use crate::error::PathError;
use std::fmt;
use std::str::FromStr;

/// A parsed field path; see the module documentation for the syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    segment: [u8; 3],
    occurrence: u32,
    field: u32,
    repetition: Option<u32>,
    component: Option<u32>,
    subcomponent: Option<u32>,
}

impl Path {
    /// Parses `text`, e.g. `PID-3[2].1.2`, `OBX[3]-5` or `PID:3(2).1`.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        Parser {
            s: text.as_bytes(),
            at: 0,
        }
        .path()
    }

    /// A path to a whole field of the first `segment`, e.g. `Path::field_of(*b"MSH", 10)`.
    /// `field` 0 is taken as 1.
    pub const fn field_of(segment: [u8; 3], field: u32) -> Path {
        Path {
            segment,
            occurrence: 1,
            field: if field == 0 { 1 } else { field },
            repetition: None,
            component: None,
            subcomponent: None,
        }
    }

    /// The same path narrowed to component `c` (`None` for the whole repetition).
    pub const fn with_component(mut self, c: Option<u32>) -> Path {
        self.component = c;
        self
    }

    /// The same path narrowed to repetition `r` (`None` for all repetitions).
    pub const fn with_repetition(mut self, r: Option<u32>) -> Path {
        self.repetition = r;
        self
    }

    /// The same path narrowed to sub-component `s` of its component (`None` for the whole
    /// component). A sub-component without a component means component 1.
    pub const fn with_subcomponent(mut self, s: Option<u32>) -> Path {
        self.subcomponent = s;
        if s.is_some() && self.component.is_none() {
            self.component = Some(1);
        }
        self
    }

    /// The same path on occurrence `n` (1-based) of its segment.
    pub const fn with_occurrence(mut self, n: u32) -> Path {
        self.occurrence = if n == 0 { 1 } else { n };
        self
    }

    /// The segment id, e.g. `b"PID"`.
    #[inline]
    pub fn segment_id(&self) -> &[u8] {
        &self.segment
    }
    /// Which occurrence of the segment (1-based).
    #[inline]
    pub fn segment_occurrence(&self) -> u32 {
        self.occurrence
    }
    /// Field number (HL7 numbering).
    #[inline]
    pub fn field(&self) -> u32 {
        self.field
    }
    /// Repetition (1-based), or `None` for the whole field.
    #[inline]
    pub fn repetition(&self) -> Option<u32> {
        self.repetition
    }
    /// Component (1-based), or `None`.
    #[inline]
    pub fn component(&self) -> Option<u32> {
        self.component
    }
    /// Sub-component (1-based), or `None`.
    #[inline]
    pub fn subcomponent(&self) -> Option<u32> {
        self.subcomponent
    }
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Path, PathError> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.segment {
            write!(f, "{}", b as char)?;
        }
        if self.occurrence != 1 {
            write!(f, "[{}]", self.occurrence)?;
        }
        write!(f, "-{}", self.field)?;
        if let Some(r) = self.repetition {
            write!(f, "[{r}]")?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

struct Parser<'s> {
    s: &'s [u8],
    at: usize,
}

impl Parser<'_> {
    fn path(mut self) -> Result<Path, PathError> {
        if self.s.is_empty() {
            return Err(PathError::Empty);
        }
        let segment = self.segment_id()?;
        let occurrence = self.index()?.unwrap_or(1);
        match self.peek() {
            Some(b'-' | b':') => self.at += 1,
            Some(c) => {
                return Err(PathError::Unexpected {
                    at: self.at,
                    found: c as char,
                });
            }
            None => return Err(PathError::NumberExpected { at: self.at }),
        }
        let field = self.number()?;
        let repetition = self.index()?;
        let mut levels = [None, None];
        for level in &mut levels {
            match self.peek() {
                Some(b'.') => {
                    self.at += 1;
                    *level = Some(self.number()?);
                }
                Some(c) => {
                    return Err(PathError::Unexpected {
                        at: self.at,
                        found: c as char,
                    });
                }
                None => break,
            }
        }
        match self.peek() {
            None => {}
            Some(b'.') => return Err(PathError::TooDeep { at: self.at }),
            Some(c) => {
                return Err(PathError::Unexpected {
                    at: self.at,
                    found: c as char,
                });
            }
        }
        Ok(Path {
            segment,
            occurrence,
            field,
            repetition,
            component: levels[0],
            subcomponent: levels[1],
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn segment_id(&mut self) -> Result<[u8; 3], PathError> {
        let id = self.s.get(..3).ok_or(PathError::BadSegmentId { at: 0 })?;
        if let Some(i) = id
            .iter()
            .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit()))
        {
            return Err(PathError::BadSegmentId { at: i });
        }
        self.at = 3;
        Ok([id[0], id[1], id[2]])
    }

    /// An optional `[n]` or `(n)`.
    fn index(&mut self) -> Result<Option<u32>, PathError> {
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return Ok(None),
        };
        self.at += 1;
        let n = self.number()?;
        if self.peek() != Some(close) {
            return Err(PathError::Unclosed { at: self.at });
        }
        self.at += 1;
        Ok(Some(n))
    }

    fn number(&mut self) -> Result<u32, PathError> {
        let start = self.at;
        let digits = self.s[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(PathError::NumberExpected { at: start });
        }
        let mut n: u32 = 0;
        for &b in &self.s[start..start + digits] {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u32::from(b - b'0')))
                .ok_or(PathError::NumberTooLarge { at: start })?;
        }
        if n == 0 {
            return Err(PathError::ZeroIndex { at: start });
        }
        self.at += digits;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn standard_and_iris_forms_parse_to_the_same_path() {
        assert_eq!(p("PID-3[2].1"), p("PID:3(2).1"));
        assert_eq!(p("MSH-9.2"), p("MSH:9.2"));
        let x = p("OBX[3]-5[2].4.1");
        assert_eq!(x.segment_id(), b"OBX");
        assert_eq!(
            (
                x.segment_occurrence(),
                x.field(),
                x.repetition(),
                x.component(),
                x.subcomponent()
            ),
            (3, 5, Some(2), Some(4), Some(1))
        );
        assert_eq!(p("OBX(3):5"), p("OBX[3]-5"));
        assert_eq!(p("ZPD-1"), Path::field_of(*b"ZPD", 1));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "PID-3",
            "PID-3.1",
            "PID-3[2].1.2",
            "OBX[3]-5",
            "MSH-10",
            "IN1[2]-4[3]",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
        assert_eq!(p("PID:3(2).1").to_string(), "PID-3[2].1");
    }

    #[test]
    fn malformed_paths_say_where() {
        assert_eq!(Path::parse(""), Err(PathError::Empty));
        assert_eq!(Path::parse("pid-3"), Err(PathError::BadSegmentId { at: 0 }));
        assert_eq!(Path::parse("PI"), Err(PathError::BadSegmentId { at: 0 }));
        assert_eq!(Path::parse("PID"), Err(PathError::NumberExpected { at: 3 }));
        assert_eq!(
            Path::parse("PID-"),
            Err(PathError::NumberExpected { at: 4 })
        );
        assert_eq!(Path::parse("PID-0"), Err(PathError::ZeroIndex { at: 4 }));
        assert_eq!(Path::parse("PID-3[2"), Err(PathError::Unclosed { at: 7 }));
        assert_eq!(
            Path::parse("PID-3.1.2.3"),
            Err(PathError::TooDeep { at: 9 })
        );
        assert_eq!(
            Path::parse("PID-3x"),
            Err(PathError::Unexpected { at: 5, found: 'x' })
        );
        assert_eq!(
            Path::parse("PID/3"),
            Err(PathError::Unexpected { at: 3, found: '/' })
        );
        assert_eq!(
            Path::parse("PID-99999999999"),
            Err(PathError::NumberTooLarge { at: 4 })
        );
        assert_eq!(
            Path::parse("PID-3."),
            Err(PathError::NumberExpected { at: 6 })
        );
    }

    #[test]
    fn builders_narrow_a_field_path() {
        let x = Path::field_of(*b"PID", 3)
            .with_repetition(Some(2))
            .with_subcomponent(Some(2));
        assert_eq!(x, p("PID-3[2].1.2"));
        assert_eq!(Path::field_of(*b"OBX", 5).with_occurrence(3), p("OBX[3]-5"));
    }
}
