//! A message's segments placed in the groups of its structure (IRIS's "DocType"
//! view), and the group paths that address them (`PIDgrpgrp(1).ORCgrp(2).OBR`).
//!
//! Placement is greedy, in message order, one segment at a time: the segment goes
//! to the first place at or after the current position where the structure allows
//! it, looking first in the innermost open group (a repetition of the current
//! child, then the later children), then outwards (a new repetition of an open
//! group, then the children after it). A group is entered only by a segment that can
//! start it: one of its children up to and including the first required one.
//! Required segments the message lacks are skipped (placement never fails; checking
//! is for validation, not for addressing).
//!
//! Segments the structure does not expect there (a Z-segment, a segment out of
//! order) stay in the current group instance, after the segments placed before
//! them, and are addressed by their own id inside that group (`ORCgrp(1).ZDS`).
//! IRIS's documentation says a Z-segment needs a custom schema to be addressed
//! by name and does not say where an unexpected one goes; hie keeps it addressable
//! where it stands, and the position in the structure does not move.
//!
//! Limits: a placement holds one entry per segment and per group instance, so its
//! size is bounded by the message's segment count (itself bounded by the scanner).

use super::structure::{NodeKind, Structure};

const NONE: u32 = u32::MAX;
/// An entry that is a segment the structure does not expect there.
const UNEXPECTED: u16 = u16::MAX;

/// One step of a group path: `ORCgrp(1)`, `OBXgrp()` (index None = every
/// repetition), `OBX` (a segment; index None = first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    /// Group or segment name, as IRIS writes it (`PIDgrp`, `OBX`); compared ignoring
    /// ASCII case.
    pub name: &'a str,
    /// 1-based repetition; None = every repetition of a group, the first of a segment.
    pub index: Option<usize>,
}

/// One placed segment or group instance.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Structure node, or [`UNEXPECTED`].
    node: u16,
    /// Segment id (segments only).
    id: [u8; 3],
    /// Index of the segment in the message, or [`NONE`] for a group instance.
    segment: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// Where placement stands in one open group instance.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The group's (or choice's, or message's) structure node.
    node: usize,
    /// The child placed last, if any, and how many times in this instance.
    child: Option<usize>,
    reps: usize,
    /// The instance's entry.
    entry: u32,
}

/// A message's segments placed in its structure's groups.
#[derive(Debug, Default, Clone)]
pub struct Placed {
    structure: Option<&'static Structure>,
    entries: Vec<Entry>,
    stack: Vec<Frame>,
    unexpected: usize,
}

/// Places the segments (their 3-letter ids in message order) in `structure`'s groups.
/// Segments the structure does not expect stay in the group instance being filled
/// (module header).
pub fn place(structure: &'static Structure, segment_ids: &[[u8; 3]]) -> Placed {
    let mut placed = Placed::default();
    placed.place(structure, segment_ids);
    placed
}

impl Placed {
    /// Places `segment_ids` anew, reusing this value's buffers.
    pub fn place(&mut self, structure: &'static Structure, segment_ids: &[[u8; 3]]) {
        self.structure = Some(structure);
        self.entries.clear();
        self.stack.clear();
        self.unexpected = 0;
        self.entries.push(Entry {
            node: 0,
            id: [0; 3],
            segment: NONE,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        });
        self.stack.push(Frame {
            node: 0,
            child: None,
            reps: 0,
            entry: 0,
        });
        for (k, id) in segment_ids.iter().enumerate() {
            self.place_one(structure, u32::try_from(k).unwrap_or(NONE), id);
        }
    }

    /// The structure the segments were placed in.
    pub fn structure(&self) -> Option<&'static Structure> {
        self.structure
    }

    /// How many segments were not where the structure expects them.
    pub fn unexpected(&self) -> usize {
        self.unexpected
    }

    /// Indices (into the message's segments) of the segments at `path`, in order
    /// (a path that ends in a group yields all the segments of that group instance).
    pub fn find(&self, path: &[Step<'_>], out: &mut Vec<usize>) {
        if self.entries.is_empty() {
            return;
        }
        self.visit(0, path, &mut |placed, e| placed.collect(e, out));
    }

    /// How many repetitions of the group/segment at `path` exist (for `(*)` /
    /// foreach); the last step's index is not used.
    pub fn count(&self, path: &[Step<'_>]) -> usize {
        let Some((last, parents)) = path.split_last() else {
            return 0;
        };
        if self.entries.is_empty() {
            return 0;
        }
        let mut n = 0;
        let mut count_in = |placed: &Placed, e: u32| {
            n += placed
                .children(e)
                .filter(|&c| placed.is(c, last.name))
                .count();
        };
        if parents.is_empty() {
            count_in(self, 0);
        } else {
            self.visit(0, parents, &mut count_in);
        }
        n
    }

    /// The path of segment `segment` (its index in the message) as IRIS writes it,
    /// with a repetition index on repeating groups and segments and on unexpected
    /// segments (`PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX`); None when not placed.
    /// For diagnostics and tests: it allocates.
    pub fn path_of(&self, segment: usize) -> Option<String> {
        let target = self
            .entries
            .iter()
            .position(|e| e.segment as usize == segment)?;
        let mut steps = Vec::new();
        self.path_to(0, target as u32, &mut steps)
            .then(|| steps.join("."))
    }

    fn path_to(&self, at: u32, target: u32, out: &mut Vec<String>) -> bool {
        let mut seen: Vec<((u16, [u8; 3]), usize)> = Vec::new();
        for c in self.children(at) {
            let entry = &self.entries[c as usize];
            let key = (
                entry.node,
                if entry.node == UNEXPECTED {
                    entry.id
                } else {
                    [0; 3]
                },
            );
            let rep = match seen.iter_mut().find(|(k, _)| *k == key) {
                Some(s) => {
                    s.1 += 1;
                    s.1
                }
                None => {
                    seen.push((key, 1));
                    1
                }
            };
            if c != target && entry.segment != NONE {
                continue;
            }
            out.push(self.step_text(c, rep));
            if c == target || self.path_to(c, target, out) {
                return true;
            }
            out.pop();
        }
        false
    }

    fn step_text(&self, e: u32, rep: usize) -> String {
        let entry = &self.entries[e as usize];
        match self.structure.filter(|_| entry.node != UNEXPECTED) {
            Some(s) => {
                let node = &s.nodes[usize::from(entry.node)];
                if node.repeating() {
                    format!("{}({rep})", node.name())
                } else {
                    node.name().to_string()
                }
            }
            None => format!("{}({rep})", String::from_utf8_lossy(&entry.id)),
        }
    }

    fn place_one(&mut self, structure: &Structure, k: u32, id: &[u8; 3]) {
        for depth in (0..self.stack.len()).rev() {
            if let Some((child, reps)) = fit(structure, &self.stack[depth], id) {
                self.stack.truncate(depth + 1);
                self.enter(structure, child, reps, k, id);
                return;
            }
        }
        // Nowhere ahead: the segment stays in the innermost open group.
        self.unexpected += 1;
        let parent = self.stack.last().map_or(0, |f| f.entry);
        self.push_entry(parent, UNEXPECTED, *id, k);
    }

    /// Places segment `k` as (an occurrence of) `child` of the top frame, opening the
    /// groups between them.
    fn enter(&mut self, structure: &Structure, child: usize, reps: usize, k: u32, id: &[u8; 3]) {
        let (mut child, mut reps) = (child, reps);
        loop {
            let top = self.stack.len() - 1;
            self.stack[top].child = Some(child);
            self.stack[top].reps = reps;
            let parent = self.stack[top].entry;
            let node = u16::try_from(child).unwrap_or(UNEXPECTED);
            if structure.nodes[child].kind() == NodeKind::Segment {
                self.push_entry(parent, node, *id, k);
                return;
            }
            let entry = self.push_entry(parent, node, [0; 3], NONE);
            let frame = Frame {
                node: child,
                child: None,
                reps: 0,
                entry,
            };
            self.stack.push(frame);
            // `starts` said the group can begin with this segment, so a child fits.
            match fit(structure, &frame, id) {
                Some(next) => (child, reps) = next,
                None => {
                    debug_assert!(
                        false,
                        "a group was entered by a segment that cannot start it"
                    );
                    self.unexpected += 1;
                    self.push_entry(entry, UNEXPECTED, *id, k);
                    return;
                }
            }
        }
    }

    fn push_entry(&mut self, parent: u32, node: u16, id: [u8; 3], segment: u32) -> u32 {
        let at = self.entries.len() as u32;
        self.entries.push(Entry {
            node,
            id,
            segment,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        });
        let p = &mut self.entries[parent as usize];
        let last = p.last_child;
        p.last_child = at;
        if last == NONE {
            p.first_child = at;
        } else {
            self.entries[last as usize].next_sibling = at;
        }
        at
    }

    /// Calls `f` on each entry that `path` reaches from entry `at`.
    fn visit(&self, at: u32, path: &[Step<'_>], f: &mut dyn FnMut(&Placed, u32)) {
        let Some((step, rest)) = path.split_first() else {
            f(self, at);
            return;
        };
        let mut n = 0;
        for c in self.children(at).filter(|&c| self.is(c, step.name)) {
            n += 1;
            let is_segment = self.entries[c as usize].segment != NONE;
            match step.index {
                Some(i) if i != n => continue,
                Some(_) => {
                    self.visit(c, rest, f);
                    return;
                }
                None if is_segment => {
                    self.visit(c, rest, f);
                    return;
                }
                None => self.visit(c, rest, f),
            }
        }
    }

    /// Pushes the message indices of all segments at or under entry `e`.
    fn collect(&self, e: u32, out: &mut Vec<usize>) {
        let entry = &self.entries[e as usize];
        if entry.segment != NONE {
            out.push(entry.segment as usize);
        }
        for c in self.children(e) {
            self.collect(c, out);
        }
    }

    fn children(&self, e: u32) -> impl Iterator<Item = u32> + '_ {
        let first = self.entries[e as usize].first_child;
        std::iter::successors((first != NONE).then_some(first), move |&c| {
            let next = self.entries[c as usize].next_sibling;
            (next != NONE).then_some(next)
        })
    }

    fn is(&self, e: u32, name: &str) -> bool {
        let entry = &self.entries[e as usize];
        match self.structure.filter(|_| entry.node != UNEXPECTED) {
            Some(s) => s.nodes[usize::from(entry.node)]
                .name()
                .eq_ignore_ascii_case(name),
            None => name.as_bytes().eq_ignore_ascii_case(&entry.id),
        }
    }
}

/// The first child of `frame`'s group, at or after its current one, that segment
/// `id` can be (or start): the current child again if it may repeat, else a later
/// child; a choice whose alternative is chosen offers only that alternative.
fn fit(structure: &Structure, frame: &Frame, id: &[u8; 3]) -> Option<(usize, usize)> {
    let nodes = structure.nodes;
    let choice = nodes[frame.node].kind() == NodeKind::Choice;
    for c in structure.children(frame.node) {
        match frame.child {
            Some(cur) if c < cur => continue,
            Some(cur) if c == cur => {
                if nodes[c].repeating() && structure.starts(c, id) {
                    return Some((c, frame.reps + 1));
                }
                if choice {
                    return None;
                }
            }
            _ => {
                if structure.starts(c, id) {
                    return Some((c, 1));
                }
            }
        }
    }
    None
}
