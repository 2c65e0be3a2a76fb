//! Virtual property paths as rule conditions write them inside `HL7.{…}` /
//! `Document.{…}`, evaluated on the message's zero-copy scan.
//!
//! ```text
//! path   = segpath [":" field [sel] ["." component ["." subcomponent]]]
//! segpath= segment [sel] | group [sel] {"." group [sel]} ["." segment [sel]]
//! sel    = "(" n ")" | "()" | "(*)"       n-th, every one, how many
//! {MSH}            the whole first MSH segment
//! {PID:3.1}        component 1 of the first repetition of PID-3
//! {PID:3(2).1}     component 1 of repetition 2
//! {PID:3}          the whole field, every repetition as written (with `~`)
//! {OBX(2):5}       OBX-5 of the second OBX
//! {PID:3()}        every repetition, as IRIS returns them: `<a><b><c>`
//! {OBX():5}        OBX-5 of every OBX, likewise
//! {OBX(*)}         how many OBX segments; {PID:3(*)} how many repetitions
//! {MSH:MessageType.TriggerEvent}            named field and component (schema tables)
//! {PID:PatientIdentifierList(1).IDNumber}   named, with a repetition
//! {PIDgrp.PV1grp.PV1:PatientClass}          a segment in the message structure's groups
//! {PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX:5}  repetitions of groups
//! {ORCgrp(1)}                                a whole group: its segments, `\r` between
//! ```
//!
//! Values are raw (escape sequences kept), as IRIS's `GetValueAt` returns them. A missing
//! segment, field or component is the empty string.
//!
//! Names and groups use the HL7 schema tables of `hie_hl7::schema` (2.3 to 2.5.1): a name
//! is resolved when the rule loads, for every version (a name no version knows is a load
//! error), and the message's MSH-12 picks the version when it is evaluated (a version hie
//! has no tables for reads as 2.5.1, the latest it has; a name that version does not
//! know is read with the first version that knows it). Groups place the message's
//! segments in its structure (MSH-9.3, or the structure of MSH-9.1/MSH-9.2 in that
//! version), once per message, on first use. IRIS resolves both through the message's
//! DocType, which may name a custom schema category: hie knows the standard's only.

use std::cell::RefCell;

use hie_hl7::schema::{self, Placed, Schema, Step};
use hie_hl7::{Delimiters, Message, Path, Segment};

use super::msh::MshFields;
use super::value::Val;

/// The version whose tables read a message of a version hie has none for.
const FALLBACK_VERSION: &str = "2.5.1";

/// Which instance(s) of a repeating segment, group or field a path selects.
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

/// A compiled path.
#[derive(Debug, Clone, PartialEq)]
pub struct VPath {
    segs: Segs,
    field: Option<FieldRef>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segs {
    /// A segment by id and occurrence.
    Plain { id: [u8; 3], occurrence: Sel },
    /// Steps through the structure's groups; the last is a segment or a group.
    Group {
        steps: Vec<(String, Sel)>,
        id: Option<[u8; 3]>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSel {
    field: u32,
    repetition: Sel,
    component: Option<u32>,
    subcomponent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
enum FieldRef {
    Numeric(FieldSel),
    /// Per version of the schema tables (in `schema::versions()` order): the numbers, or
    /// `None` where that version does not know a name.
    Named(Vec<(&'static str, Option<FieldSel>)>),
}

/// What paths read of a message, made on first use and reused until the next message:
/// its placement in its structure's groups, its schema tables and its MSH's fields.
#[derive(Debug, Default)]
pub struct Groups {
    state: RefCell<GroupState>,
    /// The schema tables of the message, looked up once (`None` until then).
    schema: std::cell::Cell<Option<Option<&'static Schema>>>,
    /// The MSH's field boundaries.
    pub(super) msh: MshFields,
}

#[derive(Debug, Default)]
struct GroupState {
    ready: bool,
    /// The message has a structure hie knows (and `placed` is begun in it).
    structured: bool,
    placed: Option<Placed>,
    ids: Vec<[u8; 3]>,
}

impl Groups {
    /// Forgets the placement (a new message).
    pub fn reset(&self) {
        self.state.borrow_mut().ready = false;
        self.schema.set(None);
        self.msh.reset();
    }

    /// The schema tables that read `m` (cached for the message).
    fn schema(&self, m: &Message<'_>) -> Option<&'static Schema> {
        if let Some(s) = self.schema.get() {
            return s;
        }
        let s = schema_of(m, &self.msh);
        self.schema.set(Some(s));
        s
    }
}

/// The schema tables that read `m` (by its MSH-12).
fn schema_of(m: &Message<'_>, msh: &MshFields) -> Option<&'static Schema> {
    let version = std::str::from_utf8(msh.field(m, 12).unwrap_or_default()).unwrap_or("");
    schema::schema(version).or_else(|| schema::schema(FALLBACK_VERSION))
}

impl VPath {
    /// Parses the text between the braces; `Err` says why hie cannot compile it.
    pub fn parse(text: &str) -> Result<VPath, String> {
        let text = text.trim();
        let (seg_part, field_part) = match text.split_once(':') {
            Some((s, f)) => (s, Some(f)),
            None => (text, None),
        };
        let segs = parse_segs(seg_part, text)?;
        let seg_id = match &segs {
            Segs::Plain { id, .. } => Some(*id),
            Segs::Group { id, .. } => *id,
        };
        let field = match field_part {
            None => None,
            Some(f) => {
                let id = seg_id.ok_or_else(|| {
                    format!("{{{text}}}: a field of a group needs a segment after the group")
                })?;
                Some(parse_field(f, text, id)?)
            }
        };
        Ok(VPath { segs, field })
    }

    /// A path of the current segment of a `foreach` (`Segment.{5.1}`): field part only,
    /// numeric (names need the segment id, which the foreach's path gives).
    pub fn parse_segment_relative(text: &str, id: [u8; 3]) -> Result<VPath, String> {
        let field = parse_field(text.trim(), text, id)?;
        Ok(VPath {
            segs: Segs::Plain {
                id,
                occurrence: Sel::Default,
            },
            field: Some(field),
        })
    }

    /// The segment id this path's last step names (`None` for a group).
    pub fn segment_id(&self) -> Option<[u8; 3]> {
        match &self.segs {
            Segs::Plain { id, .. } => Some(*id),
            Segs::Group { id, .. } => *id,
        }
    }

    /// True when the path names every instance of a segment and no field
    /// (`{OBX()}`, `{OBXgrp().OBX}`): what a `foreach` runs over.
    pub fn is_every_segment(&self) -> bool {
        self.field.is_none()
            && match &self.segs {
                Segs::Plain { occurrence, .. } => *occurrence == Sel::All,
                Segs::Group { steps, id } => {
                    id.is_some() && steps.iter().any(|(_, s)| *s == Sel::All)
                }
            }
    }

    /// Indices of the segments this path's segment part names, in order.
    pub fn segments(&self, m: &Message<'_>, groups: &Groups, out: &mut Vec<usize>) {
        out.clear();
        match &self.segs {
            Segs::Plain { id, occurrence } => {
                let all = m.segments().filter(|s| s.id() == id).map(|s| s.index());
                match occurrence {
                    Sel::Default => out.extend(all.take(1)),
                    Sel::Nth(n) => out.extend(all.skip(*n as usize - 1).take(1)),
                    Sel::All | Sel::Count => out.extend(all),
                }
            }
            Segs::Group { steps, id } => group_segments(steps, id.is_some(), m, groups, out),
        }
    }

    /// The value at this path in `m`.
    pub fn eval<'m>(&self, m: &Message<'m>, groups: &Groups) -> Val<'m> {
        let d = m.delimiters();
        if let Segs::Plain { id, occurrence } = &self.segs {
            // The common case, without a buffer: one segment by id.
            let n = match occurrence {
                Sel::Default => Some(1),
                Sel::Nth(n) => Some(*n),
                _ => None,
            };
            if let Some(n) = n {
                return self.of_segment(m.find_segment(id, n), m, groups, d);
            }
            if *occurrence == Sel::Count && self.field.is_none() {
                return Val::number(m.segments().filter(|s| s.id() == id).count() as f64);
            }
        }
        if let (Segs::Group { steps, id: None }, true) = (&self.segs, self.count_of_segments()) {
            return Val::number(group_count(steps, m, groups) as f64);
        }
        let mut found = Vec::new();
        self.segments(m, groups, &mut found);
        if self.count_of_segments() {
            return Val::number(found.len() as f64);
        }
        if self.segment_id().is_none() {
            // A whole group: its segments, as they stand in the message.
            let parts: Vec<&[u8]> = found
                .iter()
                .filter_map(|&i| m.segment(i))
                .map(|s| s.as_bytes())
                .collect();
            return Val::Owned(parts.join(&b'\r'));
        }
        if !self.selects_many() {
            return self.of_segment(found.first().and_then(|&i| m.segment(i)), m, groups, d);
        }
        let mut out = Vec::new();
        for &i in &found {
            match self.of_segment(m.segment(i), m, groups, d) {
                // Every repetition of every segment, flattened, as IRIS lists them.
                Val::Owned(v)
                    if self
                        .field_sel(m, groups)
                        .is_some_and(|f| f.repetition == Sel::All) =>
                {
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

    fn count_of_segments(&self) -> bool {
        self.field.is_none()
            && match &self.segs {
                Segs::Plain { occurrence, .. } => *occurrence == Sel::Count,
                Segs::Group { steps, .. } => steps.last().is_some_and(|(_, s)| *s == Sel::Count),
            }
    }

    fn selects_many(&self) -> bool {
        match &self.segs {
            Segs::Plain { occurrence, .. } => *occurrence == Sel::All,
            Segs::Group { steps, .. } => steps.iter().any(|(_, s)| *s == Sel::All),
        }
    }

    fn field_sel(&self, m: &Message<'_>, groups: &Groups) -> Option<FieldSel> {
        match self.field.as_ref()? {
            FieldRef::Numeric(f) => Some(*f),
            FieldRef::Named(per_version) => {
                // The message's version, else the first version that knows the names
                // (a rule written against 2.3.1's `familylastname` reads a 2.5 message:
                // field and component numbers do not move between these versions).
                let version = groups.schema(m).map(Schema::version);
                // Both names are the tables' own statics: compared by address first.
                per_version
                    .iter()
                    .find(|(v, _)| version.is_some_and(|w| std::ptr::eq(*v, w) || *v == w))
                    .and_then(|(_, f)| *f)
                    .or_else(|| per_version.iter().find_map(|(_, f)| *f))
            }
        }
    }

    /// The value of this path's field part in segment `s` (also the foreach form).
    pub fn of_segment<'m>(
        &self,
        s: Option<Segment<'m>>,
        m: &Message<'m>,
        groups: &Groups,
        d: &Delimiters,
    ) -> Val<'m> {
        let Some(s) = s else {
            return Val::Borrowed(b"");
        };
        if self.field.is_none() {
            return Val::Borrowed(s.as_bytes());
        }
        let Some(f) = self.field_sel(m, groups) else {
            return Val::Borrowed(b"");
        };
        let base = Path::field_of([0; 3], f.field)
            .with_component(f.component)
            .with_subcomponent(f.subcomponent);
        // The MSH's fields from 3 on through the message's cache of its boundaries.
        let get = |p: &Path| {
            if s.index() == 0 && f.field >= 3 {
                groups.msh.get(m, p)
            } else {
                s.get(p)
            }
            .unwrap_or_default()
        };
        match f.repetition {
            Sel::Default => Val::Borrowed(get(&base)),
            Sel::Nth(n) => Val::Borrowed(get(&base.with_repetition(Some(n)))),
            Sel::Count | Sel::All => {
                let whole = get(&Path::field_of([0; 3], f.field));
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
                    out.extend_from_slice(get(&base.with_repetition(Some(r))));
                    out.push(b'>');
                }
                Val::Owned(out)
            }
        }
    }
}

/// Segments placed per step when a reader places only as far as it needs.
const PLACE_STEP: usize = 8;

/// Runs `f` on the message's placement in its structure's groups (begun on first use);
/// `None` when hie has no structure for the message. With `early`, `f` answers whether
/// it found what it looks for, and segments are placed [`PLACE_STEP`] at a time until it
/// has (a path naming one segment, indexed at every step: see [`Placed::begin`]);
/// otherwise the whole message is placed first.
fn with_placed(m: &Message<'_>, groups: &Groups, early: bool, mut f: impl FnMut(&Placed) -> bool) {
    let mut state = groups.state.borrow_mut();
    let state = &mut *state;
    if !state.ready {
        state.ready = true;
        begin_placement(m, groups, state);
    }
    let Some(placed) = state.placed.as_mut().filter(|_| state.structured) else {
        return;
    };
    let all = state.ids.len();
    if !early {
        placed.extend(&state.ids, all);
        f(placed);
        return;
    }
    loop {
        if placed.placed() > 0 && f(placed) {
            return;
        }
        if placed.placed() == all {
            if placed.placed() == 0 {
                f(placed);
            }
            return;
        }
        placed.extend(&state.ids, placed.placed() + PLACE_STEP);
    }
}

/// Reads the message's segment ids and structure and begins its placement (nothing
/// placed yet).
fn begin_placement(m: &Message<'_>, groups: &Groups, state: &mut GroupState) {
    state.ids.clear();
    state.ids.extend(m.segment_ids());
    let structure = groups.schema(m).and_then(|sch| {
        let msh9 = |c| {
            let b = groups.msh.component(m, 9, c).unwrap_or_default();
            std::str::from_utf8(b).unwrap_or("")
        };
        let declared = msh9(3);
        let name = if declared.is_empty() {
            sch.structure_of(msh9(1), msh9(2))?
        } else {
            declared
        };
        sch.structure(name)
    });
    state.structured = structure.is_some();
    if let Some(st) = structure {
        state.placed.get_or_insert_with(Placed::default).begin(st);
    }
}

/// The placement's steps for a compiled group path: a step without index is the first
/// instance; `()` (and `(*)`) every one.
fn steps_of(steps: &[(String, Sel)]) -> Vec<Step<'_>> {
    steps
        .iter()
        .map(|(name, sel)| Step {
            name,
            index: match sel {
                Sel::Nth(n) => Some(*n as usize),
                Sel::Default => Some(1),
                Sel::All | Sel::Count => None,
            },
        })
        .collect()
}

/// How many instances the last step of a group path has (`OBXgrp(*)`).
fn group_count(steps: &[(String, Sel)], m: &Message<'_>, groups: &Groups) -> usize {
    let mut n = 0;
    with_placed(m, groups, false, |placed| {
        n = placed.count(&steps_of(steps));
        true
    });
    n
}

/// Segments at a group path, through the message's placement.
fn group_segments(
    steps: &[(String, Sel)],
    ends_in_segment: bool,
    m: &Message<'_>,
    groups: &Groups,
    out: &mut Vec<usize>,
) {
    let last = steps.len() - 1;
    let every_last_segment = ends_in_segment && matches!(steps[last].1, Sel::All | Sel::Count);
    // One segment, indexed at every step: answered as soon as it is placed.
    let one_segment = ends_in_segment
        && steps
            .iter()
            .all(|(_, s)| matches!(s, Sel::Default | Sel::Nth(_)));
    let mut path = steps_of(steps);
    with_placed(m, groups, one_segment, |placed| {
        if !every_last_segment {
            out.clear();
            placed.find(&path, out);
            return !out.is_empty();
        }
        // Every repetition of the last segment in each group instance before it: the
        // k-th of each, k = 1, 2, … until none has a k-th.
        for k in 1.. {
            path[last].index = Some(k);
            let before = out.len();
            placed.find(&path, out);
            if out.len() == before {
                break;
            }
        }
        out.sort_unstable();
        out.dedup();
        true
    });
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

fn parse_segs(text: &str, whole: &str) -> Result<Segs, String> {
    if !text.contains('.') && !text.to_ascii_lowercase().contains("grp") {
        let (name, occurrence) = split_sel(text)?;
        let id = segment_id(name).ok_or_else(|| {
            format!("{{{whole}}}: {name:?} is not a segment id (3 letters or digits)")
        })?;
        return Ok(Segs::Plain { id, occurrence });
    }
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (name, sel) = split_sel(part)?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "{{{whole}}}: {part:?} is not a group or segment name"
            ));
        }
        steps.push((name.to_owned(), sel));
    }
    let last = &steps[steps.len() - 1].0;
    let id = if last.to_ascii_lowercase().ends_with("grp") {
        None
    } else {
        segment_id(last)
    };
    if id.is_none() && !last.to_ascii_lowercase().ends_with("grp") {
        return Err(format!(
            "{{{whole}}}: {last:?} is neither a group (..grp) nor a segment id"
        ));
    }
    Ok(Segs::Group { steps, id })
}

/// A part of a field path: a number, or a name resolved by `resolve` per version.
fn parse_field(text: &str, whole: &str, id: [u8; 3]) -> Result<FieldRef, String> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 3 {
        return Err(format!(
            "{{{whole}}}: more than field.component.subcomponent"
        ));
    }
    let (field, repetition) = split_sel(parts[0])?;
    let numeric = |p: &str| -> Option<u32> { p.trim().parse::<u32>().ok().filter(|&n| n > 0) };
    let bad = |p: &str| format!("{{{whole}}}: {p:?} is not a 1-based number or a name");
    let is_name = |p: &str| p.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    for p in [field].iter().chain(parts[1..].iter()) {
        if numeric(p).is_none() && !is_name(p) {
            return Err(bad(p));
        }
    }
    if parts
        .iter()
        .skip(1)
        .chain([&field])
        .all(|p| numeric(p).is_some())
    {
        return Ok(FieldRef::Numeric(FieldSel {
            field: numeric(field).unwrap_or(1),
            repetition,
            component: parts.get(1).and_then(|p| numeric(p)),
            subcomponent: parts.get(2).and_then(|p| numeric(p)),
        }));
    }
    let seg = std::str::from_utf8(&id).unwrap_or("");
    let per_version: Vec<(&'static str, Option<FieldSel>)> = schema::versions()
        .filter_map(schema::schema)
        .map(|s| {
            let resolved = (|| {
                let f = numeric(field).or_else(|| s.field(seg, field).map(u32::from))?;
                let c = match parts.get(1) {
                    None => None,
                    Some(p) => {
                        Some(numeric(p).or_else(|| s.component(seg, f as u16, p).map(u32::from))?)
                    }
                };
                let sub =
                    match parts.get(2) {
                        None => None,
                        Some(p) => Some(numeric(p).or_else(|| {
                            s.subcomponent(seg, f as u16, c? as u16, p).map(u32::from)
                        })?),
                    };
                Some(FieldSel {
                    field: f,
                    repetition,
                    component: c,
                    subcomponent: sub,
                })
            })();
            (s.version(), resolved)
        })
        .collect();
    if per_version.iter().all(|(_, f)| f.is_none()) {
        return Err(format!(
            "{{{whole}}}: no HL7 version hie has tables for (2.3 to 2.5.1) names {text:?} in segment {seg}"
        ));
    }
    Ok(FieldRef::Named(per_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &[u8] = b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01^ORU_R01|C1|P|2.5\r\
PID|1||111^^^H^MR~222^^^S^SS||DOE^JOHN\rPV1|1|E\rOBR|1\rOBX|1|NM|HR||72\rOBX|2|NM|BP||120\r";

    fn at(path: &str) -> String {
        let m = Message::scan(ORU).unwrap();
        VPath::parse(path)
            .unwrap()
            .eval(&m, &Groups::default())
            .text()
            .into_owned()
    }

    #[test]
    fn numeric_paths_read_fields_components_and_repetitions() {
        assert_eq!(at("MSH:9.2"), "R01");
        assert_eq!(at("PID:3.1"), "111");
        assert_eq!(at("PID:3(2).1"), "222");
        assert_eq!(at("PID:3"), "111^^^H^MR~222^^^S^SS");
        assert_eq!(at("OBX(2):5"), "120");
        assert_eq!(at("PID:5.2"), "JOHN");
        assert_eq!(at("PV2:2"), "");
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
    fn named_paths_resolve_through_the_schema_tables() {
        assert_eq!(at("MSH:MessageType.TriggerEvent"), "R01");
        assert_eq!(at("PID:PatientName(1).FamilyName"), "DOE");
        assert_eq!(at("PID:PatientName(1).familylastname"), "DOE");
        assert_eq!(at("PID:PatientIdentifierList(2).IDNumber"), "222");
        assert_eq!(at("PID:PatientIdentifierList().IDNumber"), "<111><222>");
        assert_eq!(at("MSH:SendingFacility.NamespaceID"), "HOSP");
    }

    #[test]
    fn group_paths_place_the_message_in_its_structure() {
        assert_eq!(at("PIDgrpgrp(1).PIDgrp.PV1grp.PV1:PatientClass"), "E");
        assert_eq!(at("PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX:5"), "120");
        assert_eq!(at("PIDgrpgrp(1).ORCgrp(1).OBXgrp().OBX:5"), "<72><120>");
        assert_eq!(at("PIDgrpgrp(1).ORCgrp(1).OBXgrp(*)"), "2");
    }

    #[test]
    fn a_group_path_answered_early_reads_what_the_whole_placement_reads() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7");
        let paths = [
            "PIDgrpgrp(1).ORCgrp(1).OBR:4.1",
            "PIDgrpgrp(1).ORCgrp(2).OBR:4",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(3).OBX:5",
            "PIDgrpgrp(1).PIDgrp.PV1grp.PV1:2",
            "PIDgrp.PV1grp.PV1:2",
            "ORCgrp(1).ORC:1",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).NTE(2):3",
        ];
        let mut files: Vec<_> = std::fs::read_dir(&corpus)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut read = 0;
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "hl7"))
        {
            let bytes = std::fs::read(file).unwrap();
            for one in hie_hl7::Batch::new(&bytes) {
                let Ok(m) = Message::scan(one) else { continue };
                for p in paths {
                    let path = VPath::parse(p).unwrap();
                    let early = path.eval(&m, &Groups::default()).bytes().to_vec();
                    // A count first places the whole message.
                    let whole_first = Groups::default();
                    VPath::parse("PIDgrpgrp(*)").unwrap().eval(&m, &whole_first);
                    let whole = path.eval(&m, &whole_first).bytes().to_vec();
                    assert_eq!(early, whole, "{p} in {}", file.display());
                    read += usize::from(!early.is_empty());
                }
            }
        }
        assert!(read > 10, "the paths read something in the corpus ({read})");
    }

    #[test]
    fn unknown_names_and_malformed_paths_are_refused() {
        let e = VPath::parse("PID:Colour").unwrap_err();
        assert!(e.contains("no HL7 version"), "{e}");
        assert!(VPath::parse("PID:0").is_err());
        assert!(VPath::parse("PI:3").is_err());
        assert!(VPath::parse("PID:3(x)").is_err());
    }
}
