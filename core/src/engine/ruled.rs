//! A router's rule outcomes as the WAL keeps them (`Ruled` records) and as a user reads
//! them back (`hie ctl show`): which rule set ran, which rules fired, and each send as
//! `target` or `target via transform`.
//!
//! [`RuleNotes`] collects the outcomes of one batch in buffers a router reuses from batch
//! to batch (the encoded lists in one byte buffer, the rule-set names in one string), so
//! recording them costs no allocation per message once the buffers have grown; the
//! records borrow from those buffers until the batch's WAL commit is submitted.

use std::fmt::Write;
use std::ops::Range;

use hie_persist::{Record, Targets};

use crate::rules::{CompiledRules, Outcome};

/// The rule outcomes of one batch of a router.
#[derive(Debug, Default)]
pub struct RuleNotes {
    /// Each note's message and its spans in `sets` and `lists`.
    notes: Vec<Note>,
    /// Rule-set names, one after the other.
    sets: String,
    /// The fired-rule and decision lists, encoded as `Targets::Encoded` wants them.
    lists: Vec<u8>,
    /// One fired rule's text, formatted before it is encoded.
    line: String,
}

#[derive(Debug)]
struct Note {
    message_id: u64,
    rule_set: Range<usize>,
    fired: (u16, Range<usize>),
    decisions: (u16, Range<usize>),
}

/// The rule-set name a `Ruled` record gives a rule set without a name (an empty name is
/// a message no rule set was in force for).
pub const UNNAMED: &str = "(unnamed)";

/// What a `Ruled` record lists when a `delete` action removed the message.
pub const DELETED: &str = "deleted by a delete action";

impl RuleNotes {
    /// Forgets the last batch's notes, keeping the buffers.
    pub fn clear(&mut self) {
        self.notes.clear();
        self.sets.clear();
        self.lists.clear();
    }

    /// Notes what `rules` decided for message `message_id` (`outcome`).
    pub fn note(&mut self, message_id: u64, rules: &CompiledRules, outcome: &Outcome) {
        let start = self.sets.len();
        self.sets.push_str(match outcome.rule_set.as_deref() {
            Some("") => UNNAMED,
            Some(name) => name,
            None => "",
        });
        let rule_set = start..self.sets.len();
        let at = self.lists.len();
        for fired in outcome.fired.iter().take(LIST_MAX) {
            self.line.clear();
            let _ = match fired.when {
                Some(w) => write!(self.line, "{} (when {w})", fired.rule),
                None => write!(self.line, "{} (otherwise)", fired.rule),
            };
            Targets::push_encoded(&mut self.lists, &[&self.line]);
        }
        let fired = (count(outcome.fired.len()), at..self.lists.len());
        let at = self.lists.len();
        for d in outcome.decisions.iter().take(LIST_MAX - 1) {
            let target = rules.targets()[d.target as usize].as_str();
            match rules.transforms().get(d.transform as usize) {
                Some(dtl) => Targets::push_encoded(&mut self.lists, &[target, " via ", dtl]),
                None => Targets::push_encoded(&mut self.lists, &[target]),
            }
        }
        let mut n = outcome.decisions.len().min(LIST_MAX - 1);
        if outcome.deleted {
            Targets::push_encoded(&mut self.lists, &[DELETED]);
            n += 1;
        }
        let decisions = (count(n), at..self.lists.len());
        self.notes.push(Note {
            message_id,
            rule_set,
            fired,
            decisions,
        });
    }

    /// Appends a `Ruled` record of router `router` for each note to `records`.
    pub fn records<'r>(&'r self, router: &'r str, records: &mut Vec<Record<'r>>) {
        let list = |(count, span): &(u16, Range<usize>)| Targets::Encoded {
            count: *count,
            bytes: &self.lists[span.clone()],
        };
        records.extend(self.notes.iter().map(|n| Record::Ruled {
            message_id: n.message_id,
            router,
            rule_set: &self.sets[n.rule_set.clone()],
            fired: list(&n.fired),
            decisions: list(&n.decisions),
        }));
    }
}

/// Most entries a list of a `Ruled` record holds (its u16 count): a rule class has far
/// fewer rules and sends, and more are left out rather than failing the batch.
const LIST_MAX: usize = u16::MAX as usize;

fn count(n: usize) -> u16 {
    n.min(LIST_MAX) as u16
}

/// A `Ruled` record as `hie ctl show` prints it: `R: rule set S, fired A (when 1), B
/// (otherwise) → Out, File via T`.
pub fn text_of(record: &Record<'_>) -> Option<String> {
    let Record::Ruled {
        router,
        rule_set,
        fired,
        decisions,
        ..
    } = record
    else {
        return None;
    };
    let join = |list: &Targets<'_>| list.iter().collect::<Vec<_>>().join(", ");
    let set = if rule_set.is_empty() {
        "no rule set in force".to_owned()
    } else {
        format!("rule set {rule_set}")
    };
    let fired = if fired.is_empty() {
        "no rule fired".to_owned()
    } else {
        format!("fired {}", join(fired))
    };
    let sent = if decisions.is_empty() {
        "no route".to_owned()
    } else {
        join(decisions)
    };
    Some(format!("{router}: {set}, {fired} → {sent}"))
}
