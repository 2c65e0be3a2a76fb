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
//! is for validation, not for addressing). One exception to "innermost first": a fit
//! that opens a group only by skipping its optional first children gives way to an
//! outer group that takes the segment as (the first segment of) its own child. In
//! OML_O21, an ORC after an order's SPM starts the next order (`ORCgrp(2)`) rather
//! than a prior result nested in the order (whose optional PID, PV1 and AL1 come
//! before its ORC); a prior result that starts with its PID still nests.
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

mod check;
pub use check::Missing;

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
    /// Segments placed so far (a prefix of the message's).
    placed: usize,
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
        self.begin(structure);
        self.extend(segment_ids, segment_ids.len());
    }

    /// Starts a placement in `structure` with no segment placed yet (then
    /// [`Placed::extend`]), reusing this value's buffers.
    ///
    /// Placing more segments only adds entries after those placed (placement is greedy,
    /// in message order, and never looks ahead): a placed segment keeps its path. So a
    /// path that names one segment with an index at every step has its answer once that
    /// segment is placed, and a reader may place only as far as it needs.
    pub fn begin(&mut self, structure: &'static Structure) {
        self.structure = Some(structure);
        self.placed = 0;
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
    }

    /// Places the segments of `segment_ids` (all of the message's, in order) from the
    /// first not placed yet up to, not including, `upto` (at most all of them).
    pub fn extend(&mut self, segment_ids: &[[u8; 3]], upto: usize) {
        let Some(structure) = self.structure else {
            return;
        };
        let upto = upto.min(segment_ids.len());
        for (k, id) in segment_ids.iter().enumerate().take(upto).skip(self.placed) {
            self.place_one(structure, u32::try_from(k).unwrap_or(NONE), id);
        }
        self.placed = self.placed.max(upto);
    }

    /// How many of the message's segments are placed.
    pub fn placed(&self) -> usize {
        self.placed
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
        for c in self.children(at) {
            let entry = &self.entries[c as usize];
            if c != target && entry.segment != NONE {
                continue;
            }
            out.push(self.step_text(at, c));
            if c == target || self.path_to(c, target, out) {
                return true;
            }
            out.pop();
        }
        false
    }

    /// Child `c` of `parent` as a path step, its index counted the way `find`
    /// counts: among the siblings of the same name.
    fn step_text(&self, parent: u32, c: u32) -> String {
        let entry = &self.entries[c as usize];
        let (name, repeating) = match self.structure.filter(|_| entry.node != UNEXPECTED) {
            Some(s) => {
                let node = &s.nodes[usize::from(entry.node)];
                (node.name().to_string(), node.repeating())
            }
            None => (String::from_utf8_lossy(&entry.id).into_owned(), true),
        };
        let earlier = self.children(parent).take_while(|&x| x != c);
        let rep = earlier.filter(|&x| self.is(x, &name)).count() + 1;
        if repeating || rep > 1 {
            format!("{name}({rep})")
        } else {
            name
        }
    }

    fn place_one(&mut self, structure: &Structure, k: u32, id: &[u8; 3]) {
        // The innermost fit, unless it only opens a group by skipping optional
        // children and an outer group takes the segment directly (module header).
        let mut chosen = None;
        for depth in (0..self.stack.len()).rev() {
            let Some((child, reps)) = fit(structure, &self.stack[depth], id) else {
                continue;
            };
            if structure.starts_first(child, id) {
                chosen = Some((depth, child, reps));
                break;
            }
            chosen = chosen.or(Some((depth, child, reps)));
        }
        if let Some((depth, child, reps)) = chosen {
            self.stack.truncate(depth + 1);
            self.enter(structure, child, reps, k, id);
            return;
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
    let first = frame.child.unwrap_or(frame.node + 1);
    for c in structure.children_from(frame.node, first) {
        match frame.child {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema;

    fn ids(list: &str) -> Vec<[u8; 3]> {
        list.split_whitespace()
            .map(|s| s.as_bytes().try_into().unwrap())
            .collect()
    }

    fn placed(version: &str, structure: &str, list: &str) -> Placed {
        let st = schema(version).unwrap().structure(structure).unwrap();
        place(st, &ids(list))
    }

    fn paths(p: &Placed, n: usize) -> Vec<String> {
        (0..n).map(|k| p.path_of(k).unwrap_or_default()).collect()
    }

    /// `PIDgrpgrp(1).ORCgrp()` -> steps.
    fn steps(path: &str) -> Vec<Step<'_>> {
        path.split('.')
            .map(|s| match s.split_once('(') {
                Some((name, rest)) => Step {
                    name,
                    index: rest.trim_end_matches(')').parse().ok(),
                },
                None => Step {
                    name: s,
                    index: None,
                },
            })
            .collect()
    }

    fn find(p: &Placed, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        p.find(&steps(path), &mut out);
        out
    }

    #[test]
    fn placing_a_few_segments_at_a_time_gives_the_whole_placement() {
        let list = "MSH PID PV1 ORC OBR NTE OBX NTE OBX ZDS OBX ORC OBR OBX SPM OBX DSC";
        let whole = placed("2.5.1", "ORU_R01", list);
        let n = ids(list).len();
        for step in 1..=n {
            let st = schema("2.5.1").unwrap().structure("ORU_R01").unwrap();
            let mut part = Placed::default();
            part.begin(st);
            let mut paths_so_far = Vec::new();
            while part.placed() < n {
                part.extend(&ids(list), part.placed() + step);
                // What is placed keeps its path as more is placed.
                let now = paths(&part, part.placed());
                assert_eq!(now[..paths_so_far.len()], paths_so_far[..], "step {step}");
                paths_so_far = now;
            }
            assert_eq!(paths(&part, n), paths(&whole, n), "step {step}");
            assert_eq!(part.unexpected(), whole.unexpected());
        }
    }

    #[test]
    fn oru_r01_segments_go_to_iris_groups() {
        // 037_hl7_2_oru_r01.hl7 (2.5).
        let p = placed("2.5", "ORU_R01", "MSH PID PV1 ORC OBR OBX OBX NTE");
        assert_eq!(
            paths(&p, 8),
            [
                "MSH",
                "PIDgrpgrp(1).PIDgrp.PID",
                "PIDgrpgrp(1).PIDgrp.PV1grp.PV1",
                "PIDgrpgrp(1).ORCgrp(1).ORC",
                "PIDgrpgrp(1).ORCgrp(1).OBR",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).NTE(1)",
            ]
        );
        assert_eq!(p.unexpected(), 0);
        assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX"), [6]);
        assert_eq!(find(&p, "PIDgrpgrp().ORCgrp().OBXgrp().OBX"), [5, 6]);
        assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1)"), [3, 4, 5, 6, 7]);
        assert_eq!(find(&p, "PIDgrp.PV1grp.PV1"), Vec::<usize>::new());
        assert_eq!(find(&p, "PIDgrpgrp(1).PIDgrp.PV1grp.PV1"), [2]);
        assert_eq!(find(&p, "MSH"), [0]);
        assert_eq!(find(&p, "msh"), [0]);
        assert_eq!(p.count(&steps("PIDgrpgrp(1).ORCgrp(1).OBXgrp")), 2);
        assert_eq!(p.count(&steps("PIDgrpgrp")), 1);
        assert_eq!(p.count(&steps("PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).NTE")), 1);
        assert_eq!(p.count(&[]), 0);
    }

    #[test]
    fn a_new_order_or_patient_opens_a_new_group_repetition() {
        let p = placed("2.5", "ORU_R01", "MSH PID ORC OBR OBX OBR OBX PID OBR OBX");
        assert_eq!(
            paths(&p, 10)[2..],
            [
                "PIDgrpgrp(1).ORCgrp(1).ORC",
                "PIDgrpgrp(1).ORCgrp(1).OBR",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
                // ORC is optional: an OBR starts the next order.
                "PIDgrpgrp(1).ORCgrp(2).OBR",
                "PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).OBX",
                "PIDgrpgrp(2).PIDgrp.PID",
                "PIDgrpgrp(2).ORCgrp(1).OBR",
                "PIDgrpgrp(2).ORCgrp(1).OBXgrp(1).OBX",
            ]
        );
        assert_eq!(p.count(&steps("PIDgrpgrp")), 2);
        assert_eq!(p.count(&steps("PIDgrpgrp(1).ORCgrp")), 2);
        assert_eq!(p.count(&steps("PIDgrpgrp().ORCgrp")), 3);
        assert_eq!(find(&p, "PIDgrpgrp(2).PIDgrp.PID"), [7]);
        assert_eq!(find(&p, "PIDgrpgrp().PIDgrp.PID"), [1, 7]);
        assert_eq!(find(&p, "PIDgrpgrp(3)"), Vec::<usize>::new());
    }

    #[test]
    fn missing_required_segments_are_skipped() {
        // No PID, no ORC: the order group still opens on OBR.
        let p = placed("2.5", "ORU_R01", "MSH OBR OBX");
        assert_eq!(
            paths(&p, 3),
            [
                "MSH",
                "PIDgrpgrp(1).ORCgrp(1).OBR",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX"
            ]
        );
        assert_eq!(p.unexpected(), 0);
    }

    #[test]
    fn orm_o01_patient_visit_path_of_the_corpus_rule_resolves() {
        // ABCRoutingRule (2.3.1-based ORM_O01): `HL7.{PIDgrp.PV1grp.PV1:PatientClass}`.
        for version in ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"] {
            let p = placed(version, "ORM_O01", "MSH PID PV1 ORC OBR");
            assert_eq!(find(&p, "PIDgrp.PV1grp.PV1"), [2], "{version}");
            assert_eq!(find(&p, "PIDgrp.PID"), [1], "{version}");
        }
    }

    #[test]
    fn the_iris_documentation_example_paths_resolve() {
        // IRIS "Virtual Property Paths": "an NTE segment in a 2.3:ORM_O01 message might
        // be identified as ORCgrp(1).OBRuniongrp.OBXgrp(3).NTE(1)", and "PIDgrp.PID".
        let p = placed("2.3", "ORM_O01", "MSH PID ORC OBR OBX OBX OBX NTE");
        assert_eq!(
            p.path_of(7).unwrap(),
            "ORCgrp(1).OBRuniongrp.OBXgrp(3).NTE(1)"
        );
        assert_eq!(p.path_of(1).unwrap(), "PIDgrp.PID");
        assert_eq!(find(&p, "ORCgrp(1).OBRuniongrp.OBXgrp(3).NTE(1)"), [7]);
        assert_eq!(p.unexpected(), 0);
    }

    #[test]
    fn a_choice_takes_one_alternative() {
        // OrderReqToORMO01.cls: ORCgrp(1).OBRuniongrp.OBRunion.OBR, PIDgrp.PV1grp.PV1.
        let p = placed("2.5", "ORM_O01", "MSH NTE PID PV1 ORC OBR NTE OBX ORC RXO");
        assert_eq!(
            paths(&p, 10),
            [
                "MSH",
                "NTE(1)",
                "PIDgrp.PID",
                "PIDgrp.PV1grp.PV1",
                "ORCgrp(1).ORC",
                "ORCgrp(1).OBRuniongrp.OBRunion.OBR",
                "ORCgrp(1).OBRuniongrp.NTE(1)",
                "ORCgrp(1).OBRuniongrp.OBXgrp(1).OBX",
                "ORCgrp(2).ORC",
                "ORCgrp(2).OBRuniongrp.OBRunion.RXO",
            ]
        );
        assert_eq!(find(&p, "ORCgrp(1).OBRuniongrp.OBRunion.OBR"), [5]);
        assert_eq!(
            find(&p, "ORCgrp(2).OBRuniongrp.OBRunion.OBR"),
            Vec::<usize>::new()
        );
        assert_eq!(find(&p, "ORCgrp(2).OBRuniongrp.OBRunion"), [9]);
        // A second alternative in one order is not expected there.
        let p = placed("2.5", "ORM_O01", "MSH ORC OBR RXO");
        assert_eq!(
            p.path_of(3).unwrap(),
            "ORCgrp(1).OBRuniongrp.OBRunion.RXO(1)"
        );
        assert_eq!(p.unexpected(), 1);
    }

    #[test]
    fn an_order_segment_starts_the_next_order_before_a_nested_prior_result() {
        // 066_hapi_example_oml_o21_msg10.hl7 (2.5), then a prior result with its PID.
        let list = "MSH PID ORC TQ1 OBR SPM ORC OBR PID PV1 ORC OBR OBX";
        let p = placed("2.5", "OML_O21", list);
        assert_eq!(
            paths(&p, 13),
            [
                "MSH",
                "PIDgrp.PID",
                "ORCgrp(1).ORC",
                "ORCgrp(1).TQ1grp(1).TQ1",
                "ORCgrp(1).OBRgrp.OBR",
                "ORCgrp(1).OBRgrp.SPMgrp(1).SPM",
                "ORCgrp(2).ORC",
                "ORCgrp(2).OBRgrp.OBR",
                "ORCgrp(2).OBRgrp.PIDgrpgrp(1).PIDgrp.PID",
                "ORCgrp(2).OBRgrp.PIDgrpgrp(1).PV1grp.PV1",
                "ORCgrp(2).OBRgrp.PIDgrpgrp(1).ORCgrp(1).ORC",
                "ORCgrp(2).OBRgrp.PIDgrpgrp(1).ORCgrp(1).OBR",
                "ORCgrp(2).OBRgrp.PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
            ]
        );
        assert_eq!(p.unexpected(), 0);
        assert_eq!(p.count(&steps("ORCgrp")), 2);
    }

    #[test]
    fn unexpected_segments_stay_in_the_current_group() {
        // 032_hl7parser_sample_oru_r01_lab.hl7 (2.3) ends in ZDR ZPR after the OBXs.
        let p = placed("2.3", "ORU_R01", "MSH PID PV1 ORC OBR OBX OBX ZDR ZPR");
        assert_eq!(p.unexpected(), 2);
        assert_eq!(
            paths(&p, 9)[7..],
            [
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).ZDR(1)",
                "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).ZPR(1)",
            ]
        );
        assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).ZDR"), [7]);
        assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2)"), [6, 7, 8]);
        // The position does not move: a later expected segment still places.
        let p = placed("2.5", "ORU_R01", "MSH PID ZPI PV1 OBR");
        assert_eq!(
            paths(&p, 5)[2..],
            [
                "PIDgrpgrp(1).PIDgrp.ZPI(1)",
                "PIDgrpgrp(1).PIDgrp.PV1grp.PV1",
                "PIDgrpgrp(1).ORCgrp(1).OBR",
            ]
        );
    }

    #[test]
    fn out_of_order_segments_keep_their_name_where_they_stand() {
        // ADT_A01 2.3.1 has NK1 before PV1; here it comes after.
        let p = placed("2.3.1", "ADT_A01", "MSH EVN PID PV1 NK1 NK1 IN1 IN2 IN1");
        assert_eq!(
            paths(&p, 9)[3..],
            [
                "PV1",
                "NK1(1)",
                "NK1(2)",
                "IN1grp(1).IN1",
                "IN1grp(1).IN2",
                "IN1grp(2).IN1"
            ]
        );
        assert_eq!(p.unexpected(), 2);
        assert_eq!(find(&p, "NK1(2)"), [5]);
        assert_eq!(find(&p, "NK1"), [4]);
        assert_eq!(p.count(&steps("NK1")), 2);
        assert_eq!(p.count(&steps("IN1grp")), 2);
        assert_eq!(find(&p, "IN1grp(1)"), [6, 7]);
    }

    #[test]
    fn odd_input_places_without_panicking() {
        let st = schema("2.5").unwrap().structure("ADT_A01").unwrap();
        let p = place(st, &[]);
        assert_eq!(p.path_of(0), None);
        assert_eq!(find(&p, "MSH"), Vec::<usize>::new());
        assert_eq!(p.count(&steps("MSH")), 0);
        let p = place(st, &[[0xff, 0, b'|'], *b"MSH", *b"MSH"]);
        assert_eq!(p.unexpected(), 2);
        assert_eq!(paths(&p, 3), ["\u{fffd}\0|(1)", "MSH", "MSH(2)"]);
        assert_eq!(find(&p, "MSH(2)"), [2]);
        assert_eq!(find(&p, "MSH"), [1]);
        assert_eq!(Placed::default().count(&steps("MSH")), 0);
        let mut out = Vec::new();
        Placed::default().find(&steps("MSH"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn placing_again_reuses_the_value() {
        let st = schema("2.5").unwrap().structure("ORU_R01").unwrap();
        let mut p = place(st, &ids("MSH PID OBR OBX OBX"));
        p.place(st, &ids("MSH OBR"));
        assert_eq!(paths(&p, 2), ["MSH", "PIDgrpgrp(1).ORCgrp(1).OBR"]);
        assert_eq!(p.path_of(2), None);
        assert_eq!(p.structure().map(Structure::name), Some("ORU_R01"));
    }
}
