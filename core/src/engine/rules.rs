//! The seam where routing rules decide: a router asks [`Decide::decide`], one message at
//! a time, where the message goes, and [`Shard::route_batch`] turns the decisions of a
//! batch into the routing records of one WAL commit and the targets of each message
//! ([`Routed`]).
//!
//! A decision reads the message on its zero-copy scan ([`Envelope::message`]: the index
//! its service made, re-attached without scanning again) and borrows what it answers from
//! the running plan. Two deciders: a router without business rules, as in IRIS, sends
//! every message to its `TargetConfigNames` (`impl Decide for PlannedItem`); a router with
//! a `BusinessRuleName` runs its compiled rule class ([`RouterRules`], `impl Decide`),
//! which chooses among the targets its `send` actions name. A message no target takes goes
//! to the router's `BadMessageHandler`, or is discarded as "no route" (a `Discarded`
//! record naming why: the rules sent it nowhere, or a rule deleted it), never lost
//! silently. `RuleLogging` with `c`, `d` or `a` logs each evaluation's trace (the rules
//! that fired, each condition, each send) at info level.
//!
//! A router with `Validation` checks each message first
//! ([`crate::engine::validation`]): one that fails never reaches the rules.
//!
//! A `send transform="X"` runs DTL class `X` on the message: its output is a new
//! message, recorded and sent on by [`crate::engine::made`]; a transform that fails
//! leaves the message held at the router (see there).
//!
//! What the rules decided for a message (the rule set, the rules that fired, each send)
//! goes into a `Ruled` record in the same WAL commit as its routing records, when the
//! router's `RuleLogging` is not empty (IRIS's default `r`; `""` records nothing), for
//! `hie ctl show` to print ([`crate::engine::ruled`]); the reason of a `Discarded` record
//! says why a message was not routed.

use std::sync::Arc;

use hie_persist::{Record, WalError};

use crate::config::Production;
use crate::engine::made::Made;
use crate::engine::plan::{PlannedItem, Role, Target};
use crate::engine::ruled::RuleNotes;
use crate::engine::runtime::{Shard, hop_limit_reached, log_append_error};
use crate::engine::validation::Validator;
use crate::envelope::{Envelope, ItemId};
use crate::rules::{CompiledRules, Input, NO_TRANSFORM, Outcome};
use crate::transform::Compiled;

/// Where a router sends one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decisions<'p> {
    /// The targets the message may go to.
    pub targets: &'p [Target],
    /// `None`: to every one of `targets`. `Some`: to those the rules chose, by index into
    /// `targets` (in `Routed`'s buffer), in order.
    pub chosen: Option<Chosen>,
}

/// What rules chose for a message (the indices are in [`Routed`]'s outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    /// A rule's `delete` removed the message.
    pub deleted: bool,
}

/// Decides, for one message, where a router sends it; `outcome` is the router's reused
/// buffer for rule evaluation.
pub trait Decide {
    fn decide(&self, source: &str, env: &Envelope, outcome: &mut RuleScratch) -> Decisions<'_>;
}

/// A router: by its rule class when it has one, else every message to its
/// `TargetConfigNames`.
impl Decide for PlannedItem {
    fn decide(&self, source: &str, env: &Envelope, outcome: &mut RuleScratch) -> Decisions<'_> {
        match &self.rules {
            Some(rules) => rules.decide(source, env, outcome),
            None => Decisions {
                targets: &self.targets,
                chosen: None,
            },
        }
    }
}

/// A router's rule class, compiled, with its targets resolved in the plan. Kept in its
/// own struct ([`PlannedItem::rules`]) so that it moves with the router's plan data.
#[derive(Debug)]
pub struct RouterRules {
    pub rules: CompiledRules,
    /// For each target the rules name (`rules.targets()`), the plan's target.
    pub targets: Vec<Target>,
    /// `MessageSchemaCategory` of each item (by id) that may send to the router; empty
    /// when it has none (the message's version, MSH-12, is the category then).
    pub categories: Vec<String>,
    /// `RuleLogging` holds `c`, `d` or `a`: log each evaluation's trace.
    pub log_trace: bool,
    /// `RuleLogging` is not empty: each outcome gets a `Ruled` record.
    pub record_outcome: bool,
    /// The DTL classes of each `send transform=` value (`rules.transforms()` order).
    pub transforms: Vec<Vec<Compiled>>,
    /// `ActOnTransformError`: a transform error stops the message's routing (none of its
    /// sends go); without it (IRIS's default) only the failed send is held.
    pub act_on_transform_error: bool,
}

/// A router's reused buffers for rule evaluation.
#[derive(Debug, Default)]
pub struct RuleScratch {
    pub outcome: Outcome,
    /// Local time, `YYYY-MM-DDTHH:MM:SS`, read once per batch.
    now: String,
}

/// A router with a `BusinessRuleName`: its rules choose among the targets they name.
impl Decide for RouterRules {
    /// Runs the rules for `env` (sent by item `source`) into `scratch`.
    fn decide(&self, source: &str, env: &Envelope, scratch: &mut RuleScratch) -> Decisions<'_> {
        let RuleScratch { outcome, now } = scratch;
        outcome.tracing = self.log_trace;
        let Some(message) = env.message() else {
            // A service passes only messages it scanned; one without a scan has no
            // fields to test, and goes where a message no rule sends goes.
            outcome.decisions.clear();
            outcome.fired.clear();
            outcome.deleted = false;
            return self.chosen(false);
        };
        let category = self
            .categories
            .get(env.source as usize)
            .map_or("", String::as_str);
        let version;
        let category = if category.is_empty() {
            version = String::from_utf8_lossy(message.version().unwrap_or_default());
            version.as_ref()
        } else {
            category
        };
        let input = Input {
            message: &message,
            source,
            category,
            now,
        };
        self.rules.evaluate(&input, outcome);
        if self.log_trace {
            log_outcome(&self.rules, env, outcome);
        }
        self.chosen(outcome.deleted)
    }
}

impl RouterRules {
    fn chosen(&self, deleted: bool) -> Decisions<'_> {
        Decisions {
            targets: &self.targets,
            chosen: Some(Chosen { deleted }),
        }
    }
}

fn log_outcome(rules: &CompiledRules, env: &Envelope, outcome: &Outcome) {
    let fired: Vec<String> = outcome
        .fired
        .iter()
        .map(|f| format!("{:?}", f.rule))
        .collect();
    let sent: Vec<&str> = outcome
        .decisions
        .iter()
        .map(|d| rules.targets()[d.target as usize].as_str())
        .collect();
    tracing::info!(
        class = %rules.class,
        "message {}: rules fired [{}], sent to [{}]{}",
        env.id.wal_id,
        fired.join(", "),
        sent.join(", "),
        if outcome.deleted { ", deleted" } else { "" }
    );
    for line in &outcome.trace {
        tracing::info!(class = %rules.class, "message {}: {line}", env.id.wal_id);
    }
}

/// Compiles the rule class of every router that names one and attaches it to the
/// router's plan entry. A class that does not load (it loaded at `hie check`, so the
/// files changed since) makes the router inert, with the reason in its status.
pub fn attach(
    production: &Production,
    items: &mut [PlannedItem],
    resolve: &dyn Fn(&str) -> Target,
) {
    let categories: Vec<String> = production
        .items
        .iter()
        .map(|item| {
            item.host_settings
                .get("MessageSchemaCategory")
                .map(|v| v.value.trim().to_owned())
                .unwrap_or_default()
        })
        .collect();
    for (name, compiled) in crate::rules::library::production_rules(production) {
        let Some(index) = items.iter().position(|i| i.name == name) else {
            continue;
        };
        let item = &production.items[index];
        let planned = &mut items[index];
        match compiled {
            Ok((rules, transforms)) => {
                let setting = |name: &str| item.host_settings.get(name).map(|v| v.value.trim());
                let flags = setting("RuleLogging").unwrap_or("r");
                planned.rules = Some(Arc::new(RouterRules {
                    targets: rules.targets().iter().map(|t| resolve(t)).collect(),
                    rules,
                    categories: categories.clone(),
                    log_trace: flags.contains(['c', 'd', 'a']),
                    record_outcome: !flags.is_empty(),
                    transforms,
                    act_on_transform_error: is_true(setting("ActOnTransformError")),
                }));
            }
            Err(e) if planned.is_router() => {
                tracing::error!(item = %name, "rules did not load: {e}");
                planned.role = Role::Inert(format!("its rule class did not load: {e}"));
                planned.shards.clear();
            }
            Err(_) => {}
        }
    }
}

/// An IRIS boolean setting's value: `1` or `true` (any case).
fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The items each message of a batch goes to, in one buffer a router reuses from batch
/// to batch.
#[derive(Debug, Default)]
pub struct Routed {
    targets: Vec<ItemId>,
    /// Per message of the batch: the end of its targets in `targets`.
    ends: Vec<usize>,
    /// Rule evaluation's buffers.
    scratch: RuleScratch,
    /// The messages the batch's transforms made, and the transforms that failed.
    pub made: Made,
    /// What the rules decided for each message, for its `Ruled` record.
    notes: RuleNotes,
    /// `Validation`'s buffers, and the messages it refused that the router holds.
    pub validator: Validator,
}

impl Routed {
    /// The items message `i` of the batch goes to (none for one at its hop limit).
    pub fn of(&self, i: usize) -> &[ItemId] {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        &self.targets[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.targets.clear();
        self.ends.clear();
        self.made.clear();
        self.notes.clear();
        self.validator.clear();
    }

    fn end_message(&mut self) {
        self.ends.push(self.targets.len());
    }
}

/// Local time as effective dates compare it.
fn now_text(out: &mut String) {
    let m = crate::rules::datetime::now_local();
    out.clear();
    crate::rules::datetime::format(&m, "%Y-%m-%dT%H:%M:%S", out);
}

impl Shard {
    /// Records that router `router` passed the messages of `batch` on to the targets it
    /// decided for each (and completed its part); `routed` gets those targets. The
    /// records are queued for the WAL's next commit, not waited for: each message's
    /// `MessageReceived` and `Enqueued` for the router are durable already, and any later
    /// record of the message (a delivery's completion) gets a later LSN, so it can only
    /// be durable once these are. A crash that loses them makes recovery route the
    /// messages again (at least once, as for any delivery not yet recorded complete), and
    /// the router does not add a second `fdatasync` to every message's way downstream. A
    /// message at its hop limit ([`hop_limit_reached`]) gets no record here: the router
    /// fails it.
    pub fn route_batch(
        &self,
        router: ItemId,
        batch: &[Envelope],
        routed: &mut Routed,
    ) -> Result<(), WalError> {
        let item = self.plan().item(router);
        let mut records = Vec::with_capacity(batch.len() * (item.targets.len() + 1));
        routed.clear();
        if item.rules.is_some() {
            now_text(&mut routed.scratch.now);
        }
        let mut unrouted = 0u64;
        for (i, env) in batch.iter().enumerate() {
            if !hop_limit_reached(env)
                && !self.refuse_invalid(
                    item,
                    env,
                    i,
                    &mut routed.validator,
                    &mut records,
                    &mut routed.targets,
                )
            {
                let (records_before, targets_before) = (records.len(), routed.targets.len());
                debug_assert_eq!(
                    env.id.origin_shard as usize,
                    self.index(),
                    "routers run at the origin"
                );
                let source = &self.plan().item(env.source).name;
                let decisions = item.decide(source, env, &mut routed.scratch);
                let (wal_id, to) = (env.id.wal_id, &mut routed.targets);
                match decisions.chosen {
                    None => self.routing_records(
                        wal_id,
                        decisions.targets,
                        Some(item),
                        &mut records,
                        to,
                    ),
                    Some(chosen) => {
                        let outcome = &routed.scratch.outcome;
                        if let Some(rules) = item.rules.as_ref().filter(|r| r.record_outcome) {
                            routed.notes.note(wal_id, &rules.rules, outcome);
                        }
                        let made = match (&item.rules, chosen.deleted) {
                            (Some(rules), false) => self.transform_sends(
                                rules,
                                env,
                                i,
                                outcome,
                                &mut routed.made,
                                &mut records,
                            ),
                            _ => false,
                        };
                        let taken = made || routed.made.failure_of(i).is_some();
                        let routed = self.rule_records(
                            item,
                            wal_id,
                            decisions.targets,
                            outcome,
                            chosen,
                            taken,
                            &mut records,
                            to,
                        );
                        unrouted += u64::from(!routed);
                    }
                }
                match routed.made.failure_of(i) {
                    // Held at the router (the `Failed` record follows from the router).
                    Some(_)
                        if item
                            .rules
                            .as_ref()
                            .is_some_and(|r| r.act_on_transform_error) =>
                    {
                        // Not routed at all: nothing of it goes on.
                        records.truncate(records_before);
                        routed.targets.truncate(targets_before);
                        routed.made.messages.retain(|m| m.of != i);
                    }
                    Some(_) => {}
                    None => records.push(Record::Completed {
                        message_id: wal_id,
                        target: &item.name,
                    }),
                }
            }
            routed.end_message();
        }
        routed.notes.records(&item.name, &mut records);
        let names = routed.made.names(self);
        routed.made.records(&item.name, batch, &names, &mut records);
        self.wal()
            .submit(&records)
            .inspect_err(|e| log_append_error(&item.name, e))?;
        // Counted once the records are queued (a batch the WAL refused is tried again).
        let discarded = &self.counters(router).discarded;
        discarded.set(discarded.get() + unrouted);
        Ok(())
    }

    /// The routing records of a message the rules decided for: one per chosen target
    /// without a transform (`transformed`: the message's transformed sends made or held
    /// something); with none, the `BadMessageHandler` or a "no route" discard that says
    /// why. False when
    /// the message was discarded as not routed (no route, or deleted by a rule).
    #[allow(clippy::too_many_arguments)]
    fn rule_records<'r>(
        &'r self,
        router: &'r PlannedItem,
        wal_id: u64,
        targets: &'r [Target],
        outcome: &Outcome,
        chosen: Chosen,
        transformed: bool,
        records: &mut Vec<Record<'r>>,
        to: &mut Vec<ItemId>,
    ) -> bool {
        let before = to.len();
        if !chosen.deleted {
            for d in outcome
                .decisions
                .iter()
                .filter(|d| d.transform == NO_TRANSFORM)
            {
                let target = std::slice::from_ref(&targets[d.target as usize]);
                self.routing_records(wal_id, target, None, records, to);
            }
        }
        if to.len() > before || transformed {
            return true;
        }
        if router.bad_message_handler.is_some() && !chosen.deleted {
            // As for TargetConfigNames: no item took it (none chosen, or only names of
            // no item, recorded as such), so the handler takes it.
            self.routing_records(wal_id, &[], Some(router), records, to);
            return true;
        }
        if !chosen.deleted && !outcome.decisions.is_empty() {
            // Sent only to names of no item: each is a `Discarded` record already.
            return true;
        }
        let reason = if chosen.deleted {
            "deleted by a routing rule's delete action"
        } else {
            "no route: no routing rule sent it anywhere"
        };
        tracing::warn!(item = %router.name, "message {wal_id}: {reason}");
        records.push(Record::Discarded {
            message_id: wal_id,
            target: "",
            reason,
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, LoadOptions};
    use crate::engine::plan::Plan;

    /// A production whose router `R` runs `Trust.Rule`, read from `dir`.
    fn planned(dir: &std::path::Path, rule: Option<&str>) -> Plan {
        if let Some(rule) = rule {
            std::fs::write(dir.join("trust.toml.rule.toml"), rule).unwrap();
        }
        let text = "[production]\nname = \"P\"\n\n\
             [[item]]\nname = \"R\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
             [item.host]\nBusinessRuleName = \"Trust.Rule\"\nRuleLogging = \"rc\"\n\n\
             [[item]]\nname = \"Out\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
             [item.adapter]\nFilePath = \"/tmp\"\n";
        let path = dir.join("p.toml");
        let mut production = crate::config::parse_str(text, &path, Format::Toml)
            .unwrap()
            .production;
        production.engine.source_dir = Some(dir.to_path_buf());
        let _ = crate::config::validate::validate(&mut production, &path, &LoadOptions::default());
        Plan::new(&production, 1)
    }

    #[test]
    fn a_router_gets_its_compiled_rules_with_targets_resolved_in_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let rule = "class = \"Trust.Rule\"\n[[rule_set]]\n[[rule_set.rule]]\n\
                    [[rule_set.rule.when]]\ncondition = \"1\"\nactions = [{ send = \"Out,Gone\" }]\n";
        let plan = planned(dir.path(), Some(rule));
        let router = plan.item_named("R").unwrap();
        let rules = router.rules.as_ref().expect("rules attached");
        assert_eq!(
            rules.targets,
            [Target::Item(1), Target::Missing("Gone".into())]
        );
        assert!(rules.log_trace, "RuleLogging c logs the trace");
        assert!(matches!(router.role, Role::Router(_)));
    }

    #[test]
    fn a_router_whose_rules_do_not_load_is_inert_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let plan = planned(dir.path(), None);
        let router = plan.item_named("R").unwrap();
        assert!(router.rules.is_none());
        assert!(
            matches!(&router.role, Role::Inert(why) if why.contains("no rule class Trust.Rule")),
            "{:?}",
            router.role
        );
        assert!(router.shards.is_empty());
    }

    /// `In` -> `R` (rules: ADTs to `Out` through `T.Fix`, ORUs to `Out` through
    /// `T.Bad`, everything to `Raw`), with `ActOnTransformError` = `act`.
    async fn transforming_shard(dir: &std::path::Path, act: &str) -> std::rc::Rc<Shard> {
        let rule = "class = \"Trust.Rule\"\n[[rule_set]]\n[[rule_set.rule]]\n\
            [[rule_set.rule.when]]\ncondition = 'HL7.{MSH:9.1}=\"ADT\"'\n\
            actions = [{ send = \"Out\", transform = \"T.Fix\" }]\n\
            [[rule_set.rule.when]]\ncondition = 'HL7.{MSH:9.1}=\"ORU\"'\n\
            actions = [{ send = \"Out\", transform = \"T.Bad\" }]\n\
            [[rule_set.rule]]\n[[rule_set.rule.when]]\ncondition = \"1\"\n\
            actions = [{ send = \"Raw\" }]\n";
        std::fs::write(dir.join("rule.toml"), rule).unwrap();
        let fix = "transform = \"T.Fix\"\ncreate = \"copy\"\nactions = [\n  \
            { assign = \"target.{MSH:5}\", value = '\"EPR\"' },\n]\n";
        std::fs::write(dir.join("fix.toml"), fix).unwrap();
        let bad = "transform = \"T.Bad\"\ncreate = \"copy\"\nactions = [\n  \
            { assign = \"target.{PID:3(5000)}\", value = '\"x\"' },\n]\n";
        std::fs::write(dir.join("bad.toml"), bad).unwrap();
        let text = format!(
            "[production]\nname = \"P\"\n\n\
             [[item]]\nname = \"In\"\nclass = \"EnsLib.HL7.Service.TCPService\"\n\
             [item.host]\nTargetConfigNames = \"R\"\n[item.adapter]\nPort = \"1\"\n\n\
             [[item]]\nname = \"R\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
             [item.host]\nBusinessRuleName = \"Trust.Rule\"\nActOnTransformError = \"{act}\"\n\n\
             [[item]]\nname = \"Out\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
             [item.adapter]\nFilePath = \"/tmp\"\n\n\
             [[item]]\nname = \"Raw\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
             [item.adapter]\nFilePath = \"/tmp\"\n"
        );
        crate::engine::runtime::tests::shard_of(dir, &text).await
    }

    /// Message `kind` as the service `In` would pass it to `R`, with WAL id `wal_id`.
    fn routed_envelope(shard: &Shard, kind: &str, wal_id: u64) -> Envelope {
        let bytes =
            format!("MSH|^~\\&|PAS|RBH|HIE|RBH|20260101||{kind}|C{wal_id}|P|2.4\rPID|1||P1\r");
        let scan = crate::engine::ingest::scan_of(bytes.as_bytes());
        let id = crate::envelope::MessageId {
            origin_shard: 0,
            wal_id,
        };
        let (source, router) = (
            shard.plan().item_named("In").unwrap().id,
            shard.plan().item_named("R").unwrap().id,
        );
        crate::engine::ingest::envelope(
            id,
            (Arc::from(bytes.as_bytes()), scan),
            source,
            "In".into(),
            router,
            b"P1",
        )
    }

    #[test]
    fn a_transformed_send_makes_a_message_and_a_failed_one_is_noted_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = transforming_shard(dir.path(), "0").await;
            let plan = shard.plan();
            let (router, out, raw) = (
                plan.item_named("R").unwrap().id,
                plan.item_named("Out").unwrap().id,
                plan.item_named("Raw").unwrap().id,
            );
            let batch = [
                routed_envelope(&shard, "ADT^A01", 100),
                routed_envelope(&shard, "ORU^R01", 101),
            ];
            let mut routed = Routed::default();
            shard.route_batch(router, &batch, &mut routed).unwrap();
            // The ADT: Raw as it came; one made message, through T.Fix, for Out.
            assert_eq!(routed.of(0), [raw]);
            let made = &routed.made.messages;
            assert_eq!(made.len(), 1);
            assert_eq!(made[0].of, 0);
            assert_eq!(
                &*made[0].bytes,
                b"MSH|^~\\&|PAS|RBH|EPR|RBH|20260101||ADT^A01|C100|P|2.4\rPID|1||P1\r"
            );
            assert_eq!(routed.made.targets_of(&made[0]), [out]);
            assert_ne!(made[0].wal_id, 100, "an id of its own");
            let env = routed.made.envelope(&made[0], router, &batch[0]);
            assert_eq!(
                (env.id.wal_id, env.source, env.target),
                (made[0].wal_id, router, out)
            );
            assert_eq!(env.message().unwrap().control_id(), Some(&b"C100"[..]));
            assert!(routed.made.failure_of(0).is_none());
            // The ORU: T.Bad fails; its raw send still goes (ActOnTransformError=0).
            assert_eq!(routed.of(1), [raw]);
            let why = routed.made.failure_of(1).expect("noted");
            assert!(why.contains("transform T.Bad, line 4"), "{why}");
            shard.wal().close().await.unwrap();
        });
    }

    /// The `Ruled` records of message `wal_id`, as `hie ctl show` prints them, once what
    /// was submitted before is durable.
    async fn ruled_texts(shard: &Shard, wal_id: u64) -> Vec<String> {
        let marker = Record::Completed {
            message_id: wal_id,
            target: "R",
        };
        shard.wal().append(&marker).await.unwrap();
        let stored = shard.wal().find_ruled(wal_id).await.unwrap();
        stored
            .iter()
            .map(|r| crate::engine::ruled::text_of(&r.record().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn each_rule_outcome_goes_into_a_ruled_record_of_its_message() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = transforming_shard(dir.path(), "1").await;
            let router = shard.plan().item_named("R").unwrap().id;
            let batch = [
                routed_envelope(&shard, "ADT^A01", 100),
                routed_envelope(&shard, "ORU^R01", 101),
            ];
            for env in &batch {
                let received = Record::MessageReceived {
                    message_id: env.id.wal_id,
                    source: "In",
                    meta: hie_persist::MessageMeta::default(),
                    bytes: &env.bytes,
                };
                shard.wal().append(&received).await.unwrap();
            }
            let mut routed = Routed::default();
            shard.route_batch(router, &batch, &mut routed).unwrap();
            assert_eq!(
                ruled_texts(&shard, 100).await,
                ["R: rule set (unnamed), fired #1 (when 1), #2 (when 1) → Out via T.Fix, Raw"]
            );
            // Not routed at all (ActOnTransformError), but what the rules said is kept.
            assert_eq!(
                ruled_texts(&shard, 101).await,
                ["R: rule set (unnamed), fired #1 (when 2), #2 (when 1) → Out via T.Bad, Raw"]
            );
            shard.wal().close().await.unwrap();
        });
    }

    #[test]
    fn with_act_on_transform_error_a_failed_transform_stops_the_message() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = transforming_shard(dir.path(), "1").await;
            let router = shard.plan().item_named("R").unwrap().id;
            let batch = [routed_envelope(&shard, "ORU^R01", 1)];
            let mut routed = Routed::default();
            shard.route_batch(router, &batch, &mut routed).unwrap();
            assert!(routed.of(0).is_empty(), "{:?}", routed.of(0));
            assert!(routed.made.messages.is_empty());
            assert!(routed.made.failure_of(0).is_some());
            shard.wal().close().await.unwrap();
        });
    }

    #[test]
    fn routed_lists_each_message_its_own_targets() {
        let mut routed = Routed::default();
        routed.targets.extend([1, 2]);
        routed.end_message();
        routed.end_message();
        routed.targets.push(3);
        routed.end_message();
        assert_eq!(routed.of(0), [1, 2]);
        assert_eq!(routed.of(1), [] as [ItemId; 0]);
        assert_eq!(routed.of(2), [3]);
        routed.clear();
        routed.end_message();
        assert!(routed.of(0).is_empty());
    }
}
