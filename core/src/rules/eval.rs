//! Evaluation: one call per message runs the rule set in force and fills an [`Outcome`]
//! with the decisions (target, in order), the rules that fired and, on request, a trace.
//!
//! Semantics, from InterSystems' "Developing Business Rules" (routing rules) and the
//! `EnsLib.MsgRouter.RoutingEngine` reference:
//! - The rule set in force is the first whose `effectiveBegin`..`effectiveEnd` (both
//!   inclusive, empty = open) holds the current local time; with none, nothing fires.
//! - Rules run in order; a disabled rule is skipped; a rule whose constraints do not all
//!   hold is skipped (a constraint holds when the message's property is one of its
//!   comma list).
//! - In a rule, the first `when` whose condition is true runs its actions; with none
//!   true, `otherwise` runs. That rule has fired.
//! - `send` adds its targets; without `return`, evaluation goes on and later rules may send
//!   too (fan-out). A target already decided is not added twice. `return` stops.
//! - `delete` marks the message deleted (no route; the router records it as such).
//! - `foreach` runs its rules once per instance of its segment, with `Segment.{..}`
//!   reading that instance; a `return` inside ends the loop, not the rule set.
//!
//! An evaluation reuses the buffers of its `Outcome`: with tracing off and conditions
//! that compare fields, it allocates nothing.

use std::fmt::Write as _;
use std::sync::Arc;

use hie_hl7::Message;

use super::compile::{CAction, CRule, CompiledRules};
use super::expr::{Env, Facts};
use super::model::ConstraintKind;
use super::vpath::Groups;

/// The message class of every HL7 message hie routes.
pub const HL7_MESSAGE_CLASS: &str = "EnsLib.HL7.Message";

/// What an evaluation reads besides the rules.
#[derive(Debug, Clone, Copy)]
pub struct Input<'e> {
    pub message: &'e Message<'e>,
    /// The sending item's name.
    pub source: &'e str,
    /// The schema category of the message's DocType: the service's
    /// `MessageSchemaCategory`, or the message's version (MSH-12) when it has none.
    pub category: &'e str,
    /// Local time now as `YYYY-MM-DDTHH:MM:SS` (for effective dates).
    pub now: &'e str,
}

/// One decision: the message goes to target `target` (an index into
/// [`CompiledRules::targets`]) because rule `rule` (an index into [`Outcome::fired`]'s
/// names) sent it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub target: u32,
    /// The send's transform: an index into [`CompiledRules::transforms`], or
    /// [`super::compile::NO_TRANSFORM`].
    pub transform: u32,
    /// Index into [`Outcome::fired`].
    pub fired: u32,
}

/// A rule that fired: its name and which branch ran (`when` number, or otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The rule's name (or `#N`), shared with the compiled rules.
    pub rule: Arc<str>,
    /// 1-based `when` that was true; `None` for `otherwise`.
    pub when: Option<u32>,
}

/// The result of one evaluation; reuse it from message to message.
#[derive(Debug, Default)]
pub struct Outcome {
    pub decisions: Vec<Decision>,
    pub fired: Vec<Fired>,
    /// The message was deleted by a `delete` action.
    pub deleted: bool,
    /// The rule set that ran (its name), `None` when none was in force.
    pub rule_set: Option<Arc<str>>,
    /// Trace lines (when tracing) and `trace`/`debug` values.
    pub trace: Vec<String>,
    /// Record every step in `trace`.
    pub tracing: bool,
    vars: Vec<Vec<u8>>,
    groups: Groups,
    name: String,
    structure: String,
}

impl Outcome {
    /// A fresh outcome; `tracing` records each step.
    pub fn new(tracing: bool) -> Outcome {
        Outcome {
            tracing,
            ..Outcome::default()
        }
    }

    fn clear(&mut self, vars: usize) {
        self.decisions.clear();
        self.fired.clear();
        self.deleted = false;
        self.rule_set = None;
        self.trace.clear();
        self.groups.reset();
        self.vars.resize_with(vars, Vec::new);
        for v in &mut self.vars {
            v.clear();
        }
    }
}

/// Carries what a rule run needs besides the outcome.
struct Run<'e> {
    rules: &'e CompiledRules,
    input: &'e Input<'e>,
    facts: Facts<'e>,
}

/// What a list of actions did to control flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Return,
}

impl CompiledRules {
    /// Evaluates the rules for one message into `out`.
    pub fn evaluate(&self, input: &Input<'_>, out: &mut Outcome) {
        out.clear(self.vars.len());
        let Some(set) = self.sets.iter().find(|s| {
            (s.begin.is_empty() || s.begin.as_str() <= input.now)
                && (s.end.is_empty() || input.now <= s.end.as_str())
        }) else {
            if out.tracing {
                out.trace
                    .push(format!("no rule set in force at {}", input.now));
            }
            return;
        };
        out.rule_set = Some(set.name.clone());
        let mut name = std::mem::take(&mut out.name);
        name.clear();
        let m = input.message;
        // MSH-9's components, through the message's cache of the MSH's fields.
        let [kind, trigger, declared] = out.groups.msh.message_type(m);
        push_text(&mut name, kind);
        name.push('_');
        push_text(&mut name, trigger);
        let mut structure = std::mem::take(&mut out.structure);
        structure.clear();
        match declared {
            s if !s.is_empty() => push_text(&mut structure, s),
            _ => structure.push_str(&name),
        }
        let run = Run {
            rules: self,
            input,
            facts: Facts {
                source: input.source,
                msg_class: HL7_MESSAGE_CLASS,
                category: input.category,
                name: &name,
                structure: &structure,
            },
        };
        run.rules(&set.rules, None, out);
        out.name = name;
        out.structure = structure;
    }
}

/// `a == b` for the short names constraints compare (`ADT_A01`), byte by byte rather
/// than through a call to memcmp: a rule set compares several per message.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Appends `b` as text (lossy for bytes that are not UTF-8).
fn push_text(to: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(t) => to.push_str(t),
        Err(_) => to.push_str(&String::from_utf8_lossy(b)),
    }
}

impl Run<'_> {
    fn rules(
        &self,
        rules: &[CRule],
        segment: Option<hie_hl7::Segment<'_>>,
        out: &mut Outcome,
    ) -> Flow {
        for rule in rules {
            if rule.disabled {
                if out.tracing {
                    out.trace.push(format!("rule {:?}: disabled", rule.name));
                }
                continue;
            }
            if let Some((kind, values)) = rule.constraints.iter().find(|(k, v)| !self.holds(*k, v))
            {
                if out.tracing {
                    out.trace.push(format!(
                        "rule {:?}: constraint {} not in {:?}",
                        rule.name,
                        kind.name(),
                        values.join(",")
                    ));
                }
                continue;
            }
            if self.rule(rule, segment, out) == Flow::Return {
                return Flow::Return;
            }
        }
        Flow::Go
    }

    fn holds(&self, kind: ConstraintKind, values: &[String]) -> bool {
        let f = &self.facts;
        let v = match kind {
            ConstraintKind::Source => f.source,
            ConstraintKind::MsgClass => f.msg_class,
            ConstraintKind::DocCategory => f.category,
            ConstraintKind::DocName => f.name,
            ConstraintKind::DocType => {
                return values.iter().any(|x| {
                    same(x, f.structure)
                        || x.split_once(':')
                            .is_some_and(|(c, s)| same(c, f.category) && same(s, f.structure))
                });
            }
        };
        values.iter().any(|x| same(x, v))
    }

    fn rule(&self, rule: &CRule, segment: Option<hie_hl7::Segment<'_>>, out: &mut Outcome) -> Flow {
        for (i, (cond, _line, actions)) in rule.whens.iter().enumerate() {
            let env = Env {
                msg: self.input.message,
                facts: &self.facts,
                vars: &out.vars,
                segment,
                lookups: &self.rules.lookups,
                groups: &out.groups,
            };
            let yes = cond.truth(&env);
            if out.tracing {
                out.trace.push(format!(
                    "rule {:?} (line {}): when #{} is {}",
                    rule.name,
                    rule.line,
                    i + 1,
                    if yes { "true" } else { "false" }
                ));
            }
            if yes {
                out.fired.push(Fired {
                    rule: Arc::clone(&rule.name),
                    when: Some(i as u32 + 1),
                });
                return self.actions(actions, segment, out);
            }
        }
        match &rule.otherwise {
            Some(actions) => {
                if out.tracing {
                    out.trace.push(format!("rule {:?}: otherwise", rule.name));
                }
                out.fired.push(Fired {
                    rule: Arc::clone(&rule.name),
                    when: None,
                });
                self.actions(actions, segment, out)
            }
            None => Flow::Go,
        }
    }

    fn actions(
        &self,
        actions: &[CAction],
        segment: Option<hie_hl7::Segment<'_>>,
        out: &mut Outcome,
    ) -> Flow {
        let fired = out.fired.len() as u32 - 1;
        for a in actions {
            match a {
                CAction::Send(targets, transform) => {
                    for &t in targets {
                        let d = crate::rules::eval::Decision {
                            target: t,
                            transform: *transform,
                            fired,
                        };
                        if !out
                            .decisions
                            .iter()
                            .any(|o| o.target == t && o.transform == *transform)
                        {
                            out.decisions.push(d);
                        }
                        if out.tracing {
                            let to = &self.rules.targets[t as usize];
                            match self.rules.transforms.get(*transform as usize) {
                                Some(dtl) => out.trace.push(format!("send to {to} via {dtl}")),
                                None => out.trace.push(format!("send to {to}")),
                            }
                        }
                    }
                }
                CAction::Return => {
                    if out.tracing {
                        out.trace.push("return".into());
                    }
                    return Flow::Return;
                }
                CAction::Delete => {
                    out.deleted = true;
                    if out.tracing {
                        out.trace.push("delete".into());
                    }
                }
                CAction::Assign(slot, value) => {
                    let v = {
                        let env = Env {
                            msg: self.input.message,
                            facts: &self.facts,
                            vars: &out.vars,
                            segment,
                            lookups: &self.rules.lookups,
                            groups: &out.groups,
                        };
                        value.eval(&env).bytes().to_vec()
                    };
                    if out.tracing {
                        out.trace.push(format!(
                            "assign {} = {:?}",
                            self.rules.vars[*slot],
                            String::from_utf8_lossy(&v)
                        ));
                    }
                    out.vars[*slot] = v;
                }
                CAction::Trace(value) | CAction::Debug(value) => {
                    let env = Env {
                        msg: self.input.message,
                        facts: &self.facts,
                        vars: &out.vars,
                        segment,
                        lookups: &self.rules.lookups,
                        groups: &out.groups,
                    };
                    let mut line = String::from(if matches!(a, CAction::Trace(_)) {
                        "trace: "
                    } else {
                        "debug: "
                    });
                    let _ = write!(line, "{}", value.eval(&env).text());
                    out.trace.push(line);
                }
                CAction::Foreach(path, rules) => {
                    let m = self.input.message;
                    let mut found = Vec::new();
                    path.segments(m, &out.groups, &mut found);
                    for s in found.into_iter().filter_map(|i| m.segment(i)) {
                        if self.rules(rules, Some(s), out) == Flow::Return {
                            break;
                        }
                    }
                }
            }
        }
        Flow::Go
    }
}
