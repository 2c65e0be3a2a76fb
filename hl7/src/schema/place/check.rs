//! What a placement says about a message against its structure, for validation
//! (IRIS's `Validation` flag `m`): the segments the structure does not expect where they
//! stand, and the required segments and groups a group instance lacks.
//!
//! Placement never fails ([`super`]): an unexpected segment stays where it stands and a
//! missing required child is skipped. These reads find both in the placed tree without
//! placing again; they allocate only to name what they find.

use super::{NONE, Placed, UNEXPECTED};
use crate::schema::structure::{NodeKind, Structure};

/// A required segment or group that a group instance of the message lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// IRIS's name of the missing node (`EVN`, `ORCgrp`).
    pub name: &'static str,
    /// For a group: the segment that would start it (its first required segment, or
    /// its first segment when none is required); for a segment, its own id.
    pub first_segment: &'static str,
    /// The group instance that lacks it, as a path (`PIDgrpgrp(1).ORCgrp(2)`); empty
    /// for the message itself.
    pub within: String,
    /// The first segment of the message (by index) placed after where it belongs in
    /// that instance; `None` when nothing of the instance comes after it.
    pub before: Option<usize>,
}

impl Placed {
    /// The segments (index in the message, id) the structure does not expect where
    /// they stand, in message order.
    pub fn unexpected_segments(&self) -> impl Iterator<Item = (usize, [u8; 3])> + '_ {
        self.entries
            .iter()
            .filter(|e| e.node == UNEXPECTED && e.segment != NONE)
            .map(|e| (e.segment as usize, e.id))
    }

    /// The first required child missing from a group instance: the message's own
    /// children first, then each group instance in the order placement opened it.
    pub fn first_missing(&self) -> Option<Missing> {
        let structure = self.structure?;
        (0..self.entries.len() as u32)
            .filter(|&e| self.is_group_instance(structure, e))
            .find_map(|e| self.missing_in(structure, e))
    }

    /// Whether entry `e` is the message or an instance of a group (not a choice: a
    /// choice instance exists only once one alternative is placed).
    fn is_group_instance(&self, structure: &Structure, e: u32) -> bool {
        let entry = &self.entries[e as usize];
        entry.segment == NONE
            && entry.node != UNEXPECTED
            && structure.nodes[usize::from(entry.node)].kind() == NodeKind::Group
    }

    fn missing_in(&self, structure: &'static Structure, e: u32) -> Option<Missing> {
        let node = usize::from(self.entries[e as usize].node);
        let absent = structure.children(node).find(|&c| {
            structure.nodes[c].required()
                && !self
                    .children(e)
                    .any(|x| usize::from(self.entries[x as usize].node) == c)
        })?;
        let before = self
            .children(e)
            .find(|&x| {
                let n = self.entries[x as usize].node;
                n != UNEXPECTED && usize::from(n) > absent
            })
            .and_then(|x| self.first_segment_under(x));
        let within = if e == 0 {
            String::new()
        } else {
            let mut steps = Vec::new();
            self.path_to(0, e, &mut steps);
            steps.join(".")
        };
        Some(Missing {
            name: structure.nodes[absent].name(),
            first_segment: first_segment_of(structure, absent),
            within,
            before,
        })
    }

    /// The message index of the first segment at or under entry `e`.
    fn first_segment_under(&self, e: u32) -> Option<usize> {
        let entry = &self.entries[e as usize];
        if entry.segment != NONE {
            return Some(entry.segment as usize);
        }
        self.children(e).find_map(|c| self.first_segment_under(c))
    }
}

/// The segment that starts node `at`: itself, or for a group its first required child's
/// (its first child's when none is required), for a choice its first alternative's.
fn first_segment_of(structure: &Structure, at: usize) -> &'static str {
    let node = &structure.nodes[at];
    if node.kind() == NodeKind::Segment {
        return node.name();
    }
    let mut children = structure.children(at);
    let first = children.clone().next();
    let pick = match node.kind() {
        NodeKind::Group => children.find(|&c| structure.nodes[c].required()).or(first),
        _ => first,
    };
    pick.map_or("", |c| first_segment_of(structure, c))
}

#[cfg(test)]
mod tests {
    use crate::schema::{place, schema};

    fn ids(list: &str) -> Vec<[u8; 3]> {
        list.split_whitespace()
            .map(|s| s.as_bytes().try_into().unwrap())
            .collect()
    }

    fn placed(version: &str, structure: &str, list: &str) -> super::Placed {
        let st = schema(version).unwrap().structure(structure).unwrap();
        place(st, &ids(list))
    }

    #[test]
    fn a_complete_message_lacks_nothing_and_has_nothing_unexpected() {
        let p = placed("2.5", "ORU_R01", "MSH PID PV1 ORC OBR OBX OBX NTE");
        assert_eq!(p.first_missing(), None);
        assert_eq!(p.unexpected_segments().count(), 0);
    }

    #[test]
    fn a_missing_required_segment_is_named_with_the_segment_after_it() {
        // ADT_A01 requires EVN between MSH and PID.
        let m = placed("2.3.1", "ADT_A01", "MSH PID PV1")
            .first_missing()
            .unwrap();
        assert_eq!((m.name, m.first_segment, m.before), ("EVN", "EVN", Some(1)));
        assert_eq!(m.within, "");
        // PV1 is required after PID; nothing follows it.
        let m = placed("2.3.1", "ADT_A01", "MSH EVN PID")
            .first_missing()
            .unwrap();
        assert_eq!((m.name, m.before), ("PV1", None));
    }

    #[test]
    fn a_missing_required_group_is_named_by_the_segment_that_starts_it() {
        // ORU_R01 requires its patient-result group, which an OBR starts.
        let m = placed("2.5", "ORU_R01", "MSH").first_missing().unwrap();
        assert_eq!((m.name, m.first_segment), ("PIDgrpgrp", "OBR"));
        // Inside an order, the OBR is required: an ORC alone lacks it.
        let m = placed("2.5", "ORU_R01", "MSH PID ORC OBX")
            .first_missing()
            .unwrap();
        assert_eq!(
            (m.name, m.within.as_str()),
            ("OBR", "PIDgrpgrp(1).ORCgrp(1)")
        );
        assert_eq!(m.before, Some(3));
    }

    #[test]
    fn unexpected_segments_are_listed_in_message_order() {
        let p = placed("2.3", "ORU_R01", "MSH PID PV1 ORC OBR OBX OBX ZDR ZPR");
        let found: Vec<_> = p.unexpected_segments().collect();
        assert_eq!(found, [(7, *b"ZDR"), (8, *b"ZPR")]);
        let p = placed("2.3.1", "ADT_A01", "MSH EVN PID PV1 NK1 NK1 IN1");
        let found: Vec<_> = p.unexpected_segments().map(|(k, _)| k).collect();
        assert_eq!(found, [4, 5]);
    }

    #[test]
    fn an_empty_placement_finds_nothing() {
        let p = super::Placed::default();
        assert_eq!(p.first_missing(), None);
        assert_eq!(p.unexpected_segments().count(), 0);
    }
}
