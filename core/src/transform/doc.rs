//! A message as a transform reads and builds it: its segments in order, each the input's
//! bytes until an action edits it ([`Cow`]), so writing the target copies untouched
//! segments (and their terminators) as they came. Field edits go through the HL7 writer's
//! [`splice_segment`]; values are raw ER7, as IRIS's `SetValueAt` takes them.

use std::borrow::Cow;

use hie_hl7::schema::{Placed, Step as PStep, Structure, place};
use hie_hl7::writer::splice_segment;
use hie_hl7::{Delimiters, Message, Path};

use super::path::{DPath, FieldRef, Idx, Step};

/// One segment: its bytes (terminator excluded) and what followed it in the input.
#[derive(Debug, Clone)]
struct Seg<'s> {
    body: Cow<'s, [u8]>,
    /// The terminator (and blank lines) after it in the input; `None` for a new segment.
    tail: Option<&'s [u8]>,
}

/// A message being read or built.
#[derive(Debug, Clone)]
pub struct Doc<'s> {
    pub delims: Delimiters,
    prefix: &'s [u8],
    segs: Vec<Seg<'s>>,
    term: &'static [u8],
    structure: Option<&'static Structure>,
    placed: Option<Placed>,
}

/// Why an edit cannot be made.
pub type EditError = String;

impl<'s> Doc<'s> {
    /// An empty message (`create="new"`): standard delimiters, CR terminators.
    pub fn new(structure: Option<&'static Structure>) -> Doc<'s> {
        Doc {
            delims: Delimiters::STANDARD,
            prefix: b"",
            segs: Vec::new(),
            term: b"\r",
            structure,
            placed: None,
        }
    }

    /// The segments of `m`, as spans of its bytes (`create="copy"`, and every source).
    pub fn of(m: &Message<'s>, structure: Option<&'static Structure>) -> Doc<'s> {
        let bytes = m.as_bytes();
        let mut segs = Vec::with_capacity(m.segment_count());
        let mut prefix: &[u8] = b"";
        for (i, s) in m.segments().enumerate() {
            if i == 0 {
                prefix = &bytes[..s.offset()];
            }
            let end = s.offset() + s.as_bytes().len();
            let next = m.segment(i + 1).map_or(bytes.len(), |n| n.offset());
            segs.push(Seg {
                body: Cow::Borrowed(s.as_bytes()),
                tail: Some(&bytes[end..next]),
            });
        }
        let term: &'static [u8] = match segs.first().and_then(|s| s.tail) {
            Some(t) if t.starts_with(b"\r\n") => b"\r\n",
            Some(t) if t.starts_with(b"\n") => b"\n",
            _ => b"\r",
        };
        Doc {
            delims: *m.delimiters(),
            prefix,
            segs,
            term,
            structure,
            placed: None,
        }
    }

    /// Adds a segment at the end.
    pub fn push(&mut self, body: Vec<u8>) {
        self.segs.push(Seg {
            body: Cow::Owned(body),
            tail: None,
        });
        self.changed();
    }

    /// Writes the message.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix);
        let last = self.segs.len().saturating_sub(1);
        for (i, s) in self.segs.iter().enumerate() {
            out.extend_from_slice(&s.body);
            match s.tail {
                // The input's last segment had no terminator: one is needed before more.
                Some(t) if t.is_empty() && i < last => out.extend_from_slice(self.term),
                Some(t) => out.extend_from_slice(t),
                None => out.extend_from_slice(self.term),
            }
        }
    }

    /// How many segments.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Whether the message has no segment.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Segment `i`'s bytes.
    pub fn segment(&self, i: usize) -> &[u8] {
        &self.segs[i].body
    }

    fn id(&self, i: usize) -> [u8; 3] {
        let b = &self.segs[i].body;
        let mut id = [b' '; 3];
        for (k, c) in b.iter().take(3).enumerate() {
            id[k] = *c;
        }
        id
    }

    fn changed(&mut self) {
        self.placed = None;
    }

    /// The segments placed in the structure's groups, on first use after a change;
    /// `None` when hie has no structure for the document.
    fn placed(&mut self) -> Option<&Placed> {
        let structure = self.structure?;
        if self.placed.is_none() {
            let ids: Vec<[u8; 3]> = (0..self.segs.len()).map(|i| self.id(i)).collect();
            self.placed = Some(place(structure, &ids));
        }
        self.placed.as_ref()
    }

    /// Indices of the segments `path` addresses (`vars` give `(key)` indexes); for a
    /// whole group, every segment of the instance(s).
    pub fn find(&mut self, path: &DPath, vars: &[Vec<u8>]) -> Vec<usize> {
        let mut out = Vec::new();
        if !path.grouped() {
            let id = path.segment.unwrap_or_default();
            let all: Vec<usize> = (0..self.segs.len()).filter(|&i| self.id(i) == id).collect();
            match resolve(path.steps[0].idx, vars) {
                Some(n) => out.extend(all.get(n.saturating_sub(1) as usize).copied()),
                None => out = all,
            }
            return out;
        }
        if let Some(placed) = self.placed() {
            placed.find(&placement_steps(&path.steps, vars), &mut out);
        }
        out
    }

    /// The first segment `path` addresses (without allocating for a segment path).
    pub fn first(&mut self, path: &DPath, vars: &[Vec<u8>]) -> Option<usize> {
        if !path.grouped()
            && let Some(n) = resolve(path.steps[0].idx, vars)
        {
            let id = path.segment.unwrap_or_default();
            return (0..self.segs.len())
                .filter(|&i| self.id(i) == id)
                .nth(n.saturating_sub(1) as usize);
        }
        self.find(path, vars).first().copied()
    }

    /// How many instances the path's last `()` step has (for `foreach` and `(*)`).
    pub fn count(&mut self, path: &DPath, vars: &[Vec<u8>]) -> usize {
        if let Some(f) = path.field {
            let Some(i) = self.first(path, vars) else {
                return 0;
            };
            let whole = field_value(
                &self.segs[i].body,
                &self.delims,
                &FieldRef {
                    rep: Idx::Default,
                    component: None,
                    subcomponent: None,
                    ..f
                },
            );
            return if whole.is_empty() {
                0
            } else {
                memchr::memchr_iter(self.delims.repetition, whole).count() + 1
            };
        }
        if !path.grouped() {
            let id = path.segment.unwrap_or_default();
            return (0..self.segs.len()).filter(|&i| self.id(i) == id).count();
        }
        let mut steps = path.steps.clone();
        if let Some(last) = steps.last_mut() {
            last.idx = Idx::Default;
        }
        self.placed()
            .map_or(0, |p| p.count(&placement_steps(&steps, vars)))
    }

    /// The value at `path`: a segment's bytes, a field part, or the empty string.
    pub fn get(&mut self, path: &DPath, vars: &[Vec<u8>], out: &mut Vec<u8>) {
        out.clear();
        if path.steps.last().is_some_and(|s| s.idx == Idx::Count) {
            out.extend_from_slice(self.count(path, vars).to_string().as_bytes());
            return;
        }
        let Some(f) = path.field else {
            let found = self.find(path, vars);
            for (k, &i) in found.iter().enumerate() {
                if k > 0 {
                    out.extend_from_slice(self.term);
                }
                out.extend_from_slice(&self.segs[i].body);
            }
            return;
        };
        let Some(i) = self.first(path, vars) else {
            return;
        };
        let rep = match f.rep {
            Idx::Count => {
                let n = self.count(path, vars);
                out.extend_from_slice(n.to_string().as_bytes());
                return;
            }
            Idx::Default => None,
            r => resolve(r, vars),
        };
        let f = FieldRef {
            rep: rep.map_or(Idx::Default, Idx::Nth),
            ..f
        };
        out.extend_from_slice(field_value(&self.segs[i].body, &self.delims, &f));
    }

    /// The segments of a whole-segment or whole-group path, as owned bytes.
    pub fn segments_at(&mut self, path: &DPath, vars: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.find(path, vars)
            .into_iter()
            .map(|i| self.segs[i].body.to_vec())
            .collect()
    }

    /// Replaces the segment(s) `path` addresses with `new` (creating them at the end when
    /// the target has none there); `append` adds after the last instance instead.
    pub fn put_segments(
        &mut self,
        path: &DPath,
        vars: &[Vec<u8>],
        new: Vec<Vec<u8>>,
        append: bool,
    ) -> Result<(), EditError> {
        for s in &new {
            check_segment(s)?;
        }
        if self.segs.is_empty()
            && let Some(first) = new.first()
            && first.starts_with(b"MSH")
        {
            self.delims =
                Delimiters::of_header(first).map_err(|e| format!("the MSH value: {e}"))?;
        }
        let next = path.steps.last().is_some_and(|s| s.idx == Idx::All);
        let found = if append || next {
            Vec::new()
        } else {
            self.find(path, vars)
        };
        let at = match found.first() {
            Some(&first) => {
                for &i in found.iter().rev() {
                    self.segs.remove(i);
                }
                first
            }
            None if append || next => {
                let same = self.find_all_like(path, vars);
                same.last().map_or(self.segs.len(), |l| l + 1)
            }
            None => self.segs.len(),
        };
        for (k, body) in new.into_iter().enumerate() {
            self.segs.insert(
                at + k,
                Seg {
                    body: Cow::Owned(body),
                    tail: None,
                },
            );
        }
        self.changed();
        Ok(())
    }

    /// Inserts `new` before the `before`-th (1-based) instance of the path's segment.
    pub fn insert_segment(
        &mut self,
        path: &DPath,
        vars: &[Vec<u8>],
        before: usize,
        new: Vec<u8>,
    ) -> Result<(), EditError> {
        check_segment(&new)?;
        let same = self.find_all_like(path, vars);
        let at = same
            .get(before.saturating_sub(1))
            .copied()
            .unwrap_or_else(|| same.last().map_or(self.segs.len(), |l| l + 1));
        self.segs.insert(
            at,
            Seg {
                body: Cow::Owned(new),
                tail: None,
            },
        );
        self.changed();
        Ok(())
    }

    /// Every instance of the path's segment or group (its last index taken as `()`).
    fn find_all_like(&mut self, path: &DPath, vars: &[Vec<u8>]) -> Vec<usize> {
        let mut all = path.clone();
        all.field = None;
        if let Some(l) = all.steps.last_mut() {
            l.idx = Idx::All;
        }
        self.find(&all, vars)
    }

    /// Removes the segment(s) `path` addresses.
    pub fn remove(&mut self, path: &DPath, vars: &[Vec<u8>]) {
        let found = self.find(path, vars);
        for &i in found.iter().rev() {
            if i > 0 || self.id(0) != *b"MSH" {
                self.segs.remove(i);
            }
        }
        self.changed();
    }

    /// Sets the field part of `path` to `raw` (creating the segment, at the end, when the
    /// target lacks it); `append` adds a repetition instead.
    pub fn set_field(
        &mut self,
        path: &DPath,
        vars: &[Vec<u8>],
        raw: &[u8],
        append: bool,
    ) -> Result<(), EditError> {
        if let Some(at) = memchr::memchr2(b'\r', b'\n', raw) {
            return Err(format!("the value holds a segment terminator at byte {at}"));
        }
        let Some(mut f) = path.field else {
            return Err("not a field path".into());
        };
        let id = path.segment.unwrap_or_default();
        // `{NTE():1}` in a target: a new segment, after the last of its kind.
        let next = path.steps.last().is_some_and(|s| s.idx == Idx::All);
        let found = if next { None } else { self.first(path, vars) };
        let i = match found {
            Some(i) => i,
            None if next => {
                let mut seg = path.clone();
                seg.field = None;
                self.put_segments(&seg, vars, vec![id.to_vec()], true)?;
                match self.find(path, vars).last() {
                    Some(&i) => i,
                    None => return Err("the segment could not be placed".into()),
                }
            }
            None => {
                let mut seg = path.clone();
                seg.field = None;
                self.put_segments(&seg, vars, vec![id.to_vec()], false)?;
                match self.find(path, vars).first() {
                    Some(&i) => i,
                    None => return Err("the segment could not be placed".into()),
                }
            }
        };
        let count = || {
            let whole = field_value(
                &self.segs[i].body,
                &self.delims,
                &FieldRef {
                    rep: Idx::Default,
                    component: None,
                    subcomponent: None,
                    ..f
                },
            );
            if whole.is_empty() {
                0
            } else {
                memchr::memchr_iter(self.delims.repetition, whole).count() + 1
            }
        };
        let rep = match f.rep {
            _ if append => Some(count() as u32 + 1),
            Idx::All => Some(count() as u32 + 1),
            Idx::Default => None,
            r => resolve(r, vars),
        };
        f.rep = rep.map_or(Idx::Default, Idx::Nth);
        let p = Path::field_of(id, f.field)
            .with_repetition(rep)
            .with_component(f.component)
            .with_subcomponent(f.subcomponent);
        let d = self.delims;
        let body = self.segs[i].body.to_mut();
        splice_segment(body, &d, &p, raw).map_err(|e| e.to_string())
    }
}

/// A `(n)` / `(key)` index as a number; `None` for "every" (or not written).
fn resolve(idx: Idx, vars: &[Vec<u8>]) -> Option<u32> {
    match idx {
        Idx::Default => Some(1),
        Idx::Nth(n) => Some(n),
        Idx::Var(slot) => {
            let v = vars.get(slot).map_or(&[][..], |v| v);
            Some(crate::rules::value::to_num(v).max(1.0) as u32)
        }
        Idx::All | Idx::Count => None,
    }
}

fn check_segment(s: &[u8]) -> Result<(), EditError> {
    if let Some(at) = memchr::memchr2(b'\r', b'\n', s) {
        return Err(format!("the segment value holds a terminator at byte {at}"));
    }
    if s.len() < 3
        || !s[..3]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "the segment value {:?} does not start with a segment id",
            String::from_utf8_lossy(&s[..s.len().min(20)])
        ));
    }
    Ok(())
}

/// The bytes of a field part in a segment (raw, escape sequences kept).
pub fn field_value<'b>(seg: &'b [u8], d: &Delimiters, f: &FieldRef) -> &'b [u8] {
    let header =
        seg.len() > 3 && matches!(&seg[..3], b"MSH" | b"FHS" | b"BHS") && seg[3] == d.field;
    if header && f.field == 1 {
        return &seg[3..4];
    }
    let element = if header { f.field - 1 } else { f.field };
    let Some(mut v) = nth(seg, d.field, element + 1) else {
        return b"";
    };
    if header && f.field == 2 {
        return v;
    }
    let rep = match f.rep {
        Idx::Nth(n) => Some(n),
        _ if f.component.is_some() => Some(1),
        _ => None,
    };
    for (sep, n) in [
        (d.repetition, rep),
        (d.component, f.component),
        (d.subcomponent, f.subcomponent),
    ] {
        if let Some(n) = n {
            v = nth(v, sep, n).unwrap_or_default();
        }
    }
    v
}

/// The `n`-th (1-based) element of `hay` split on `sep`.
fn nth(hay: &[u8], sep: u8, n: u32) -> Option<&[u8]> {
    hay.split(|&b| b == sep).nth(n as usize - 1)
}

/// A DTL path's group steps as placement reads them, with `vars` resolving indexes.
fn placement_steps<'s>(steps: &'s [Step], vars: &[Vec<u8>]) -> Vec<PStep<'s>> {
    steps
        .iter()
        .map(|s| PStep {
            name: &s.name,
            index: resolve(s.idx, vars).map(|n| n as usize),
        })
        .collect()
}
