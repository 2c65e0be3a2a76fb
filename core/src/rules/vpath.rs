//! Virtual property paths in numeric form, as rule conditions write them inside
//! `HL7.{…}` / `Document.{…}`, evaluated on the message's zero-copy scan.
//!
//! ```text
//! path   = segment [sel] [":" field [sel] ["." component ["." subcomponent]]]
//! sel    = "(" n ")" | "()" | "(*)"       n-th, every one, how many
//! {MSH}            the whole first MSH segment
//! {PID:3.1}        component 1 of the first repetition of PID-3
//! {PID:3(2).1}     component 1 of repetition 2
//! {PID:3}          the whole field, every repetition as written (with `~`)
//! {OBX(2):5}       OBX-5 of the second OBX
//! {PID:3()}        every repetition, as IRIS returns them: `<a><b><c>`
//! {OBX():5}        OBX-5 of every OBX, likewise
//! {OBX(*)}         how many OBX segments; {PID:3(*)} how many repetitions
//! ```
//!
//! Values are raw (escape sequences kept), as IRIS's `GetValueAt` returns them. A missing
//! segment, field or component is the empty string. Named paths (`{PID:PatientName}`) and
//! message-structure group paths (`{PIDgrp.PV1grp.PV1:2}`) need HL7 schema tables: they are
//! load-time errors here that say so.

use hie_hl7::{Delimiters, Message, Path, Segment};

use super::value::Val;

/// Which instance(s) of a repeating segment or field a path selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sel {
    /// Not given: the first segment; for a field, every repetition as written (the first
    /// when a component is named).
    Default,
    /// `(n)`, 1-based.
    Nth(u32),
    /// `()`: every instance, as `<a><b>`.
    All,
    /// `(*)`: how many.
    Count,
}

/// A compiled numeric path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VPath {
    segment: [u8; 3],
    occurrence: Sel,
    field: Option<FieldSel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSel {
    field: u32,
    repetition: Sel,
    component: Option<u32>,
    subcomponent: Option<u32>,
}

impl VPath {
    /// Parses the text between the braces; `Err` says why hie cannot compile it.
    pub fn parse(text: &str) -> Result<VPath, String> {
        let text = text.trim();
        let (seg_part, field_part) = match text.split_once(':') {
            Some((s, f)) => (s, Some(f)),
            None => (text, None),
        };
        let (seg_name, occurrence) = split_sel(seg_part)?;
        if seg_name.contains('.') || seg_name.ends_with("grp") {
            return Err(format!(
                "{{{text}}}: message-structure group paths need HL7 schema tables, which hie does not have yet"
            ));
        }
        let segment = segment_id(seg_name).ok_or_else(|| {
            format!("{{{text}}}: {seg_name:?} is not a segment id (3 letters or digits)")
        })?;
        let field = field_part.map(|f| parse_field(f, text)).transpose()?;
        Ok(VPath {
            segment,
            occurrence,
            field,
        })
    }

    /// The value at this path in `m`; `scratch` receives made values.
    pub fn eval<'m>(&self, m: &Message<'m>) -> Val<'m> {
        match self.occurrence {
            Sel::Default => self.of_segment(m.find_segment(&self.segment, 1), m.delimiters()),
            Sel::Nth(n) => self.of_segment(m.find_segment(&self.segment, n), m.delimiters()),
            Sel::Count => {
                let n = m.segments().filter(|s| s.id() == self.segment).count();
                Val::number(n as f64)
            }
            Sel::All => {
                let mut out = Vec::new();
                for s in m.segments().filter(|s| s.id() == self.segment) {
                    match self.of_segment(Some(s), m.delimiters()) {
                        // Every repetition of every segment, flattened, as IRIS lists them.
                        Val::Owned(v) if matches!(self.field, Some(f) if f.repetition == Sel::All) => {
                            out.extend_from_slice(&v)
                        }
                        v => {
                            out.push(b'<');
                            out.extend_from_slice(v.bytes());
                            out.push(b'>');
                        }
                    }
                }
                Val::Owned(out)
            }
        }
    }

    /// The value of this path's field part in segment `s` (the foreach form).
    pub fn of_segment<'m>(&self, s: Option<Segment<'m>>, d: &Delimiters) -> Val<'m> {
        let Some(s) = s else {
            return Val::Borrowed(b"");
        };
        let Some(f) = self.field else {
            return Val::Borrowed(s.as_bytes());
        };
        let base = Path::field_of(self.segment, f.field)
            .with_component(f.component)
            .with_subcomponent(f.subcomponent);
        match f.repetition {
            Sel::Default => Val::Borrowed(s.get(&base).unwrap_or_default()),
            Sel::Nth(n) => Val::Borrowed(s.get(&base.with_repetition(Some(n))).unwrap_or_default()),
            Sel::Count | Sel::All => {
                let whole = s
                    .get(&Path::field_of(self.segment, f.field))
                    .unwrap_or_default();
                let reps = if whole.is_empty() {
                    0
                } else {
                    memchr::memchr_iter(d.repetition, whole).count() as u32 + 1
                };
                if f.repetition == Sel::Count {
                    return Val::number(f64::from(reps));
                }
                let mut out = Vec::new();
                for r in 1..=reps {
                    out.push(b'<');
                    out.extend_from_slice(
                        s.get(&base.with_repetition(Some(r))).unwrap_or_default(),
                    );
                    out.push(b'>');
                }
                Val::Owned(out)
            }
        }
    }

    /// A path of the current segment of a `foreach` (`Segment.{5.1}`): field part only.
    pub fn parse_segment_relative(text: &str) -> Result<VPath, String> {
        let f = parse_field(text.trim(), text)?;
        Ok(VPath {
            segment: *b"???",
            occurrence: Sel::Default,
            field: Some(f),
        })
    }

    /// The segment id and occurrence this path names, for `foreach`.
    pub fn segment_and_occurrence(&self) -> ([u8; 3], Sel, bool) {
        (self.segment, self.occurrence, self.field.is_none())
    }
}

fn segment_id(name: &str) -> Option<[u8; 3]> {
    let b = name.as_bytes();
    (b.len() == 3 && b.iter().all(u8::is_ascii_alphanumeric)).then(|| [b[0], b[1], b[2]])
}

/// `NAME(sel)` → (`NAME`, sel).
fn split_sel(text: &str) -> Result<(&str, Sel), String> {
    let Some(open) = text.find('(') else {
        return Ok((text, Sel::Default));
    };
    let Some(inner) = text[open + 1..].strip_suffix(')') else {
        return Err(format!("{text:?}: a selector `(..)` is not closed"));
    };
    let sel = match inner.trim() {
        "" => Sel::All,
        "*" => Sel::Count,
        n => match n.parse::<u32>() {
            Ok(n) if n > 0 => Sel::Nth(n),
            _ => {
                return Err(format!(
                    "{text:?}: {n:?} is not a 1-based index, (), or (*)"
                ));
            }
        },
    };
    Ok((&text[..open], sel))
}

fn parse_field(text: &str, whole: &str) -> Result<FieldSel, String> {
    let mut parts = text.split('.');
    let (field, repetition) = split_sel(parts.next().unwrap_or_default())?;
    let number = |p: &str| -> Result<u32, String> {
        match p.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ if p.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => Err(format!(
                "{{{whole}}}: the named part {p:?} needs HL7 field-name tables, which hie does not have yet; write the numeric form"
            )),
            _ => Err(format!(
                "{{{whole}}}: {p:?} is not a 1-based field or component number"
            )),
        }
    };
    let field = number(field)?;
    let component = parts.next().map(number).transpose()?;
    let subcomponent = parts.next().map(number).transpose()?;
    if parts.next().is_some() {
        return Err(format!(
            "{{{whole}}}: more than field.component.subcomponent"
        ));
    }
    Ok(FieldSel {
        field,
        repetition,
        component,
        subcomponent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &[u8] = b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01^ORU_R01|C1|P|2.5\r\
PID|1||111^^^H^MR~222^^^S^SS||DOE^JOHN\rOBX|1|NM|HR||72\rOBX|2|NM|BP||120\r";

    fn at(path: &str) -> String {
        let m = Message::scan(ORU).unwrap();
        VPath::parse(path).unwrap().eval(&m).text().into_owned()
    }

    #[test]
    fn numeric_paths_read_fields_components_and_repetitions() {
        assert_eq!(at("MSH:9.2"), "R01");
        assert_eq!(at("PID:3.1"), "111");
        assert_eq!(at("PID:3(2).1"), "222");
        assert_eq!(at("PID:3"), "111^^^H^MR~222^^^S^SS");
        assert_eq!(at("OBX(2):5"), "120");
        assert_eq!(at("PID:5.2"), "JOHN");
        assert_eq!(at("PV1:2"), "");
        assert_eq!(at("MSH:3"), "LAB");
    }

    #[test]
    fn empty_parentheses_list_every_instance_and_star_counts_them() {
        assert_eq!(at("PID:3().1"), "<111><222>");
        assert_eq!(at("OBX():5"), "<72><120>");
        assert_eq!(at("OBX(*)"), "2");
        assert_eq!(at("PID:3(*)"), "2");
        assert_eq!(at("PID"), "PID|1||111^^^H^MR~222^^^S^SS||DOE^JOHN");
    }

    #[test]
    fn named_and_group_paths_say_they_need_schema_tables() {
        let e = VPath::parse("MSH:MessageType.TriggerEvent").unwrap_err();
        assert!(e.contains("field-name tables"), "{e}");
        let e = VPath::parse("PIDgrp.PV1grp.PV1:2").unwrap_err();
        assert!(e.contains("group paths"), "{e}");
        assert!(VPath::parse("PID:0").is_err());
        assert!(VPath::parse("PI:3").is_err());
    }
}
