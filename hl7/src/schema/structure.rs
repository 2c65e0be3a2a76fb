//! A message structure (`ADT_A01`, `ORU_R01`) as a tree of segments, groups and
//! choices, stored flat in preorder so the generated tables are plain statics.
//!
//! Node 0 is the message itself; a node's children follow it, each child's subtree
//! ending at its `end` index. Names are IRIS's: a segment by its id (`PID`), a group
//! after its first child + `grp` (`PIDgrp`, `ORCgrp`, `PIDgrpgrp` when the first
//! child is the group `PIDgrp`), a choice (HL7's `<OBR|RQD|...>`) after its first
//! alternative + `union` (`OBRunion`, whose group is `OBRuniongrp`). A second sibling
//! group with the same first child is numbered (`ORCgrp2`).

/// What a node of a structure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A segment (its name is the segment id).
    Segment,
    /// A sequence of children (the message itself is one).
    Group,
    /// Exactly one of its children (HL7's `<A|B|C>`).
    Choice,
}

const KIND_MASK: u8 = 3;
const KIND_GROUP: u8 = 1;
const KIND_CHOICE: u8 = 2;
const FLAG_REQUIRED: u8 = 4;
const FLAG_REPEATING: u8 = 8;

/// One node: name, kind and cardinality flags, and the index past its subtree.
#[derive(Debug)]
pub struct Node(pub(super) &'static str, pub(super) u8, pub(super) u16);

impl Node {
    /// IRIS's name of the node (`PID`, `PIDgrp`, `OBRunion`); "" for the root.
    pub fn name(&self) -> &'static str {
        self.0
    }

    /// Segment, group or choice.
    pub fn kind(&self) -> NodeKind {
        match self.1 & KIND_MASK {
            KIND_GROUP => NodeKind::Group,
            KIND_CHOICE => NodeKind::Choice,
            _ => NodeKind::Segment,
        }
    }

    /// Whether the structure requires at least one occurrence.
    pub fn required(&self) -> bool {
        self.1 & FLAG_REQUIRED != 0
    }

    /// Whether the node may occur more than once.
    pub fn repeating(&self) -> bool {
        self.1 & FLAG_REPEATING != 0
    }

    pub(super) fn end(&self) -> usize {
        usize::from(self.2)
    }
}

/// One message structure of one HL7 version.
#[derive(Debug)]
pub struct Structure {
    pub(super) name: &'static str,
    pub(super) nodes: &'static [Node],
}

impl Structure {
    /// The structure's name (`ADT_A01`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// All nodes in preorder; node 0 is the message.
    pub fn nodes(&self) -> &'static [Node] {
        self.nodes
    }

    /// The children of node `parent`, as indices into [`Structure::nodes`].
    pub fn children(&self, parent: usize) -> Children {
        let end = self.nodes.get(parent).map_or(parent, Node::end);
        Children {
            nodes: self.nodes,
            next: parent + 1,
            end,
        }
    }

    /// The children of node `parent` from its child `first` on (`first` must be a
    /// child of `parent`, or `parent + 1`).
    pub(super) fn children_from(&self, parent: usize, first: usize) -> Children {
        let end = self.nodes.get(parent).map_or(parent, Node::end);
        Children {
            nodes: self.nodes,
            next: first,
            end,
        }
    }

    /// Whether segment `id` is node `at` or, for a group, its first child's first
    /// segment (without skipping optional children); for a choice, any alternative's.
    pub(super) fn starts_first(&self, at: usize, id: &[u8; 3]) -> bool {
        let node = &self.nodes[at];
        match node.kind() {
            NodeKind::Segment => is_id(node.0, id),
            NodeKind::Choice => self.children(at).any(|c| self.starts_first(c, id)),
            NodeKind::Group => self
                .children(at)
                .next()
                .is_some_and(|c| self.starts_first(c, id)),
        }
    }

    /// Whether segment `id` can be the first segment of node `at` (for a group: of
    /// its first children up to and including the first required one).
    pub(super) fn starts(&self, at: usize, id: &[u8; 3]) -> bool {
        let node = &self.nodes[at];
        match node.kind() {
            NodeKind::Segment => is_id(node.0, id),
            NodeKind::Choice => self.children(at).any(|c| self.starts(c, id)),
            NodeKind::Group => {
                for c in self.children(at) {
                    if self.starts(c, id) {
                        return true;
                    }
                    if self.nodes[c].required() {
                        return false;
                    }
                }
                false
            }
        }
    }
}

/// Whether segment name `name` is `id` (an array compare, not a call to memcmp: it runs
/// for every candidate node of every segment placed).
fn is_id(name: &str, id: &[u8; 3]) -> bool {
    matches!(name.as_bytes(), &[a, b, c] if [a, b, c] == *id)
}

/// Iterator over a node's children (indices into the structure's nodes).
#[derive(Debug, Clone)]
pub struct Children {
    nodes: &'static [Node],
    next: usize,
    end: usize,
}

impl Iterator for Children {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        // A malformed end (never in generated tables) still moves forward.
        self.next = self.nodes[at].end().max(at + 1);
        Some(at)
    }
}
