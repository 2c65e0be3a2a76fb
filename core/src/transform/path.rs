//! Virtual-property paths of a transform, `source.{…}` and `target.{…}`, compiled at load
//! with the HL7 schema tables of the doc type's version ([`hie_hl7::schema`]).
//!
//! ```text
//! path  = [group "." ..] segment [":" field ["." component ["." subcomponent]]]
//!       | field ["." component ..]            in a segment-level DTL (EnsLib.HL7.Segment)
//! group = NAME [idx]   (PIDgrpgrp(1), ORCgrp(k1), OBXgrp())   segment = ID [idx]
//! field = (number | name) [idx]     component, subcomponent = number | name
//! idx   = "(" n ")" | "(" key ")" | "()" | "(*)"
//! ```
//!
//! Names (`PatientName`, `familylastname`, `ReceivingApplication`) are resolved with the
//! tables of the doc type's category when it is an HL7 version hie has tables for; a
//! custom category (`Demo.HL7.MsgRouter.Schema`) is read with the tables of the other
//! side's version (IRIS's custom schemas extend a standard one; hie does not read custom
//! schema definitions). Group paths are placed with the doc type's structure.
//! In a target, `()` on a segment or group is the next, new instance and on a field the
//! next repetition; in a source it is every instance.

use hie_hl7::schema::Schema;

/// Which instance(s) a step selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idx {
    /// Not written: the first (the whole field for a field).
    Default,
    /// `(n)`.
    Nth(u32),
    /// `(key)`: the value of a `foreach` key or variable, by slot.
    Var(usize),
    /// `()`.
    All,
    /// `(*)`: how many.
    Count,
}

/// One group or segment step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub idx: Idx,
}

/// The field part of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef {
    pub field: u32,
    pub rep: Idx,
    pub component: Option<u32>,
    pub subcomponent: Option<u32>,
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DPath {
    /// Group steps, then the segment (when the path names one).
    pub steps: Vec<Step>,
    /// The segment id when the last step is a segment; `None` for a whole group.
    pub segment: Option<[u8; 3]>,
    pub field: Option<FieldRef>,
}

impl DPath {
    /// Whether the path goes through a message-structure group.
    pub fn grouped(&self) -> bool {
        self.steps.len() > 1 || self.segment.is_none()
    }
}

/// What parsing a path may use.
pub struct PathCtx<'a> {
    /// The tables for named parts.
    pub schema: Option<&'static Schema>,
    /// Whether group paths can be placed (the doc type names a known structure).
    pub has_structure: bool,
    /// The segment of a segment-level DTL (`2.5:MSH`): paths are field parts.
    pub segment_doc: Option<[u8; 3]>,
    /// The slot of a variable used as an index.
    pub var: &'a dyn Fn(&str) -> Option<usize>,
}

impl std::fmt::Debug for PathCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathCtx")
            .field("has_structure", &self.has_structure)
            .finish_non_exhaustive()
    }
}

/// Parses the text between the braces.
pub fn parse(text: &str, ctx: &PathCtx<'_>) -> Result<DPath, String> {
    let text = text.trim();
    if let Some(seg) = ctx.segment_doc {
        let field = parse_field(text, seg, text, ctx)?;
        return Ok(DPath {
            steps: vec![Step {
                name: String::from_utf8_lossy(&seg).into_owned(),
                idx: Idx::Default,
            }],
            segment: Some(seg),
            field: Some(field),
        });
    }
    let (left, right) = match text.split_once(':') {
        Some((l, r)) => (l, Some(r)),
        None => (text, None),
    };
    let mut steps = Vec::new();
    for part in left.split('.') {
        let (name, idx) = split_idx(part, text, ctx)?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{{{text}}}: {part:?} is no segment or group name"));
        }
        steps.push(Step {
            name: name.to_owned(),
            idx,
        });
    }
    let last = steps.last().map(|s| s.name.as_bytes()).unwrap_or_default();
    let segment = (last.len() == 3).then(|| [last[0], last[1], last[2]]);
    let path_grouped = steps.len() > 1 || segment.is_none();
    if path_grouped && !ctx.has_structure {
        return Err(format!(
            "{{{text}}}: a group path needs a doc type whose structure hie has tables for"
        ));
    }
    let field = match (right, segment) {
        (Some(f), Some(seg)) => Some(parse_field(f, seg, text, ctx)?),
        (Some(_), None) => return Err(format!("{{{text}}}: a field of a group, not of a segment")),
        (None, _) => None,
    };
    Ok(DPath {
        steps,
        segment,
        field,
    })
}

fn split_idx<'t>(part: &'t str, whole: &str, ctx: &PathCtx<'_>) -> Result<(&'t str, Idx), String> {
    let part = part.trim();
    let Some(open) = part.find('(') else {
        return Ok((part, Idx::Default));
    };
    let Some(inner) = part[open + 1..].strip_suffix(')') else {
        return Err(format!("{{{whole}}}: the index in {part:?} is not closed"));
    };
    let idx = match inner.trim() {
        "" => Idx::All,
        "*" => Idx::Count,
        n => match n.parse::<u32>() {
            Ok(n) if n > 0 => Idx::Nth(n),
            Ok(_) => return Err(format!("{{{whole}}}: indexes start at 1")),
            Err(_) => match (ctx.var)(n) {
                Some(slot) => Idx::Var(slot),
                None => {
                    return Err(format!(
                        "{{{whole}}}: index {n:?} is no number and no foreach key or variable of this transform"
                    ));
                }
            },
        },
    };
    Ok((&part[..open], idx))
}

fn parse_field(
    text: &str,
    seg: [u8; 3],
    whole: &str,
    ctx: &PathCtx<'_>,
) -> Result<FieldRef, String> {
    let seg_name = String::from_utf8_lossy(&seg).into_owned();
    let mut parts = text.split('.');
    let (field_name, rep) = split_idx(parts.next().unwrap_or_default(), whole, ctx)?;
    let named = |name: &str, found: Option<u16>| -> Result<u32, String> {
        if let Ok(n) = name.trim().parse::<u32>() {
            return if n > 0 {
                Ok(n)
            } else {
                Err(format!("{{{whole}}}: numbers start at 1"))
            };
        }
        let Some(schema) = ctx.schema else {
            return Err(format!(
                "{{{whole}}}: the named part {name:?} needs the doc type's HL7 version (sourceDocType / targetDocType naming 2.3, 2.3.1, 2.4, 2.5 or 2.5.1); write the numeric form or name the doc type"
            ));
        };
        found.map(u32::from).ok_or_else(|| {
            format!(
                "{{{whole}}}: {name:?} is no {seg_name} part in HL7 {}",
                schema.version()
            )
        })
    };
    let field = named(
        field_name,
        ctx.schema.and_then(|s| s.field(&seg_name, field_name)),
    )?;
    let f16 = u16::try_from(field).unwrap_or(u16::MAX);
    let component = parts
        .next()
        .map(|c| {
            named(
                c,
                ctx.schema
                    .and_then(|s| s.component(&seg_name, f16, c.trim())),
            )
        })
        .transpose()?;
    let c16 = component.map_or(0, |c| u16::try_from(c).unwrap_or(u16::MAX));
    let subcomponent = parts
        .next()
        .map(|s| {
            named(
                s,
                ctx.schema
                    .and_then(|t| t.subcomponent(&seg_name, f16, c16, s.trim())),
            )
        })
        .transpose()?;
    if parts.next().is_some() {
        return Err(format!(
            "{{{whole}}}: more than field.component.subcomponent"
        ));
    }
    Ok(FieldRef {
        field,
        rep,
        component,
        subcomponent,
    })
}
