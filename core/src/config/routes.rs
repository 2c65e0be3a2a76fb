//! Checks of where messages go, before anything starts: the routing graph of a production.
//!
//! - A target (`TargetConfigNames`, `BadMessageHandler`, `AckTargetConfigNames`,
//!   `ResponseTargetConfigNames`) naming no item, or an enabled item naming a disabled one,
//!   is a warning (IRIS loads such productions; a message sent there waits or fails
//!   visibly at run time).
//! - A target that cannot take messages (a business service, which has no queue) is an
//!   error on an enabled item: its messages would be stranded.
//! - A routing cycle (a router that targets itself, or any loop of items) is an error when
//!   every item on it is enabled (one message would go round for ever), a warning otherwise.
//!   The search follows what `hie run` routes by: a router whose rule class compiled sends
//!   where its rules' `send`s name (and to its `BadMessageHandler`), not to its
//!   `TargetConfigNames`. A send every message takes ([`crate::rules::reach`]) is an edge
//!   like `TargetConfigNames`; a cycle through a send only some messages take (under a
//!   rule's conditions) is a warning: IRIS allows a router to send to another, and
//!   `hie run` fails a message that goes round at the hop limit (`ROUTER_HOPS_MAX`). A
//!   rule send's line is its router's `BusinessRuleName`.
//! - The settings an item routes by are its kind's ([`catalog::routed_by`]); what a kind
//!   requires of its own routes (a router with no route at all) is its kind's check
//!   (`items::kinds`, run by [`super::startup`]).
//! - A router's `BusinessRuleName` names a rule class (found by
//!   [`crate::rules::library`]): a class that is not found or does not compile is an error
//!   (naming the rule file, class, rule and line), and its `send` targets are checked as
//!   `TargetConfigNames` is. On a disabled router these are warnings.
//!
//! Cost: linear in items and targets (and in the rules' actions). Names are looked up in
//! one map built here, and each of the two cycle searches (the edges every message
//! takes, then all) visits each item and each target once (an iterative depth-first
//! search, so a long chain cannot overflow the stack); a cycle is walked only when
//! reported, at most `CYCLES_REPORTED_MAX` times.

use std::collections::HashMap;
use std::path::Path;

use super::catalog;
use super::model::{Item, ItemKind, Production};
use super::settings;
use super::validate::Findings;
use crate::envelope::ROUTER_HOPS_MAX;
use crate::rules::library::RouterClass;
use crate::rules::{CompiledRules, RuleError};

/// Settings whose value names other items.
pub const TARGET_SETTINGS: &[&str] = &[
    "TargetConfigNames",
    "BadMessageHandler",
    "AckTargetConfigNames",
    "ResponseTargetConfigNames",
];

/// Items shown in a cycle message before it is cut short.
const CYCLE_NAMES_SHOWN_MAX: usize = 12;

/// Cycles reported one by one; past this, one more finding says there are more (each
/// report walks its cycle, so this keeps a pathological production's check linear).
const CYCLES_REPORTED_MAX: usize = 100;

/// Runs every check of this module.
pub fn check(production: &Production, file: &Path, f: &mut Findings) {
    let index = name_index(production);
    let rules = crate::rules::library::production_rules(production);
    check_targets(production, &index, file, f);
    check_cycles(production, &index, &rules, file, f);
    check_rule_classes(production, &index, &rules, file, f);
}

/// Each router's rule class, by router name ([`crate::rules::library::production_rules`]).
type Rules = [(String, Result<RouterClass, RuleError>)];

/// Item index by name (the first item of a duplicated name, which is an error already).
fn name_index(production: &Production) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(production.items.len());
    for (i, item) in production.items.iter().enumerate() {
        index.entry(item.name.as_str()).or_insert(i);
    }
    index
}

/// Settings of `item` that the engine routes messages by (the others are recorded only):
/// its kind's ([`catalog::routed_by`]), none for an item hie does not run.
fn routed_by(item: &Item) -> Vec<&'static str> {
    item.resolved()
        .map_or_else(Vec::new, |(kind, _)| catalog::routed_by(kind))
}

fn check_targets(
    production: &Production,
    index: &HashMap<&str, usize>,
    file: &Path,
    f: &mut Findings,
) {
    for item in &production.items {
        let routed_by = routed_by(item);
        for setting in TARGET_SETTINGS {
            let Some(raw) = item.host_settings.get(*setting) else {
                continue;
            };
            let routed = routed_by.contains(setting);
            for target in settings::split_list(&raw.value, false) {
                let Some(&t) = index.get(target.as_str()) else {
                    let message =
                        format!("{setting} names {target:?}, which is no item of this production");
                    f.warn(file, raw.line, Some(&item.name), message);
                    continue;
                };
                let t = &production.items[t];
                if routed && t.kind == ItemKind::Service {
                    let message = format!(
                        "{setting} names {target:?}, a business service, which cannot take \
                         messages; name a router or an operation"
                    );
                    if item.enabled {
                        f.error(file, raw.line, Some(&item.name), message);
                    } else {
                        f.warn(file, raw.line, Some(&item.name), message);
                    }
                } else if item.enabled && !t.enabled {
                    let message = format!("{setting} names {target:?}, which is disabled");
                    f.warn(file, raw.line, Some(&item.name), message);
                }
            }
        }
    }
}

/// Each router's rule class: found and compiled (`BusinessRuleName`), and its `send`
/// targets checked as `TargetConfigNames` is.
fn check_rule_classes(
    production: &Production,
    index: &HashMap<&str, usize>,
    rules: &Rules,
    file: &Path,
    f: &mut Findings,
) {
    for (name, compiled) in rules {
        let Some(item) = production.items.iter().find(|i| i.name == *name) else {
            continue;
        };
        let (line, class) = item
            .host_settings
            .get("BusinessRuleName")
            .map_or((item.source.line, ""), |v| (v.line, v.value.as_str()));
        let mut found = Vec::new();
        match compiled {
            Ok((c, _)) => check_rule_targets(production, index, item, c.targets(), &mut found),
            Err(e) => found.push((true, format!("BusinessRuleName {class:?}: {e}"))),
        }
        for (is_error, message) in found {
            if is_error && item.enabled {
                f.error(file, line, Some(&item.name), message);
            } else {
                f.warn(file, line, Some(&item.name), message);
            }
        }
    }
}

/// The targets a router's rules send to, checked as `TargetConfigNames` is: one naming no
/// item is a warning, a business service an error.
fn check_rule_targets(
    production: &Production,
    index: &HashMap<&str, usize>,
    item: &Item,
    targets: &[String],
    found: &mut Vec<(bool, String)>,
) {
    for target in targets {
        match index.get(target.as_str()).map(|&t| &production.items[t]) {
            None => found.push((
                false,
                format!("its rule class sends to {target:?}, which is no item of this production"),
            )),
            Some(t) if t.kind == ItemKind::Service => found.push((
                true,
                format!(
                    "its rule class sends to {target:?}, a business service, which cannot take \
                     messages; name a router or an operation"
                ),
            )),
            Some(t) if item.enabled && !t.enabled => found.push((
                false,
                format!("its rule class sends to {target:?}, which is disabled"),
            )),
            Some(_) => {}
        }
    }
}

/// One routing edge.
#[derive(Clone, Copy)]
struct Edge {
    /// The target's index.
    target: usize,
    /// The line of the setting naming it (`BusinessRuleName` for a rule's send).
    line: u32,
    /// Only some messages take it: a rule send that the rules' conditions choose
    /// ([`crate::rules::CompiledRules::always_sent`] is false for it).
    conditional: bool,
}

/// The routing edges of every item, by index (edges into services left out): the
/// settings it routes by, except that a router whose rule class compiled routes by its
/// rules' sends instead of `TargetConfigNames`, as `hie run` does.
fn edges(production: &Production, index: &HashMap<&str, usize>, rules: &Rules) -> Vec<Vec<Edge>> {
    let takes = |t: &usize| production.items[*t].kind != ItemKind::Service;
    let compiled: HashMap<&str, &CompiledRules> = rules
        .iter()
        .filter_map(|(name, c)| Some((name.as_str(), &c.as_ref().ok()?.0)))
        .collect();
    production
        .items
        .iter()
        .map(|item| {
            let compiled = compiled.get(item.name.as_str());
            let mut out: Vec<Edge> = routed_by(item)
                .iter()
                .filter(|s| compiled.is_none() || **s != "TargetConfigNames")
                // A forwarded response is waited for by nobody, so it is never forwarded
                // again: that edge cannot be taken twice by one message, and closes no loop.
                .filter(|s| **s != "ResponseTargetConfigNames")
                .filter_map(|setting| item.host_settings.get(*setting))
                .flat_map(|raw| {
                    settings::split_list(&raw.value, false)
                        .into_iter()
                        .filter_map(|name| index.get(name.as_str()).copied())
                        // A service takes no messages: an error of its own, not a hop.
                        .filter(takes)
                        .map(move |target| Edge {
                            target,
                            line: raw.line,
                            conditional: false,
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            if let Some(c) = compiled {
                let line = item
                    .host_settings
                    .get("BusinessRuleName")
                    .map_or(item.source.line, |v| v.line);
                for (name, always) in c.targets().iter().zip(c.always_sent()) {
                    if let Some(target) = index.get(name.as_str()).copied().filter(takes) {
                        let conditional = !always;
                        out.push(Edge {
                            target,
                            line,
                            conditional,
                        });
                    }
                }
            }
            out
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    /// On the current path: an edge back to it closes a cycle.
    OnPath,
    Done,
}

/// Reports routing cycles: first those every message takes (every edge unconditional),
/// as errors when all their items are enabled; then those only messages the rules pick
/// take, as warnings (IRIS runs them; `hie run` fails such a message at the hop limit).
fn check_cycles(
    production: &Production,
    index: &HashMap<&str, usize>,
    rules: &Rules,
    file: &Path,
    f: &mut Findings,
) {
    let edges = edges(production, index, rules);
    let mut reported = 0usize;
    let mut report = |cycle: Cycle<'_>, f: &mut Findings| {
        reported += 1;
        if reported <= CYCLES_REPORTED_MAX {
            let (members, taken) = cycle.members_and_edges();
            report_cycle(production, &members, &taken, cycle.closing.line, file, f);
        } else if reported == CYCLES_REPORTED_MAX + 1 {
            let message = format!("more routing cycles than the {CYCLES_REPORTED_MAX} reported");
            f.error(file, cycle.closing.line, None, message);
        }
    };
    find_cycles(&edges, |e| !e.conditional, |c| report(c, f));
    find_cycles(
        &edges,
        |_| true,
        |c| {
            // Those without a conditional edge were reported by the first search.
            if c.conditional > 0 {
                report(c, f);
            }
        },
    );
}

/// One cycle a search met: read only when reported, so that a production with many
/// cycles is still checked in linear time.
struct Cycle<'a> {
    /// The path from the cycle's first member: (item, index of its next edge).
    path: &'a [PathStep],
    edges: &'a [Vec<Edge>],
    /// The edge from the last member back to the first.
    closing: &'a Edge,
    /// Conditional edges on the cycle.
    conditional: usize,
}

impl Cycle<'_> {
    /// The members in routing order, and the edge each leaves by.
    fn members_and_edges(&self) -> (Vec<usize>, Vec<Edge>) {
        self.path
            .iter()
            // Each member's last edge taken is the one it left by.
            .map(|s| (s.item, self.edges[s.item][s.next - 1]))
            .unzip()
    }
}

/// One item on the search's path.
#[derive(Clone, Copy)]
struct PathStep {
    item: usize,
    /// Index of its next edge to follow.
    next: usize,
    /// Conditional edges on the path before it.
    conditional_before: usize,
}

/// Calls `found` with each cycle a depth-first search over the edges that `follow` meets
/// (iterative, so that a long chain cannot overflow the stack).
fn find_cycles(
    edges: &[Vec<Edge>],
    follow: impl Fn(&Edge) -> bool,
    mut found: impl FnMut(Cycle<'_>),
) {
    let mut mark = vec![Mark::New; edges.len()];
    // Position of each item on the path, valid while it is marked OnPath.
    let mut depth = vec![0usize; edges.len()];
    let mut path: Vec<PathStep> = Vec::new();
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::OnPath;
        path.push(PathStep {
            item: start,
            next: 0,
            conditional_before: 0,
        });
        while let Some(top) = path.last_mut() {
            let Some(edge) = edges[top.item].get(top.next) else {
                mark[top.item] = Mark::Done;
                path.pop();
                continue;
            };
            top.next += 1;
            if !follow(edge) {
                continue;
            }
            let conditional = top.conditional_before + usize::from(edge.conditional);
            match mark[edge.target] {
                Mark::New => {
                    mark[edge.target] = Mark::OnPath;
                    depth[edge.target] = path.len();
                    path.push(PathStep {
                        item: edge.target,
                        next: 0,
                        conditional_before: conditional,
                    });
                }
                Mark::OnPath => {
                    let path = &path[depth[edge.target]..];
                    found(Cycle {
                        path,
                        edges,
                        closing: edge,
                        conditional: conditional - path[0].conditional_before,
                    });
                }
                Mark::Done => {}
            }
        }
    }
}

/// Reports the cycle `members` (in routing order, `cycle` the edges each leaves by)
/// closed by an edge at `line` from its last member back to its first.
fn report_cycle(
    production: &Production,
    members: &[usize],
    cycle: &[Edge],
    line: u32,
    file: &Path,
    f: &mut Findings,
) {
    let mut names: Vec<&str> = members
        .iter()
        .take(CYCLE_NAMES_SHOWN_MAX)
        .map(|&n| production.items[n].name.as_str())
        .collect();
    if members.len() > CYCLE_NAMES_SHOWN_MAX {
        names.push("…");
    }
    names.push(&production.items[members[0]].name);
    let last = &production.items[members[members.len() - 1]];
    let message = if members.len() == 1 {
        "routing cycle: the item sends messages to itself, so a message would go round \
         for ever"
            .to_owned()
    } else {
        format!(
            "routing cycle: {}; a message would go round for ever",
            names.join(" -> ")
        )
    };
    let conditional: Vec<&str> = members
        .iter()
        .zip(cycle)
        .filter(|(_, e)| e.conditional)
        .map(|(&n, _)| production.items[n].name.as_str())
        .collect();
    if !conditional.is_empty() {
        let message = format!(
            "{} for the messages whose rules send them round (the rule class of {} sends \
             there only under its conditions); IRIS runs it, and hie fails such a message \
             once it has passed {ROUTER_HOPS_MAX} routers",
            message.trim_end_matches("; a message would go round for ever"),
            conditional.join(", ")
        );
        f.warn(file, line, Some(&last.name), message);
    } else if members.iter().all(|&n| production.items[n].enabled) {
        f.error(file, line, Some(&last.name), message);
    } else {
        f.warn(
            file,
            line,
            Some(&last.name),
            format!("{message} (once its disabled items are enabled)"),
        );
    }
}
