//! Which of a compiled rule class's `send` targets every message goes to, whatever it
//! holds: for `hie check`'s routing-cycle search (`config::routes`), which tells a cycle
//! every message would go round (an error, as one of `TargetConfigNames`) from one that
//! only messages the rules pick would (IRIS allows it; the hop limit fails such a message).
//!
//! The answer is conservative: a target is "always" only when nothing in the class can
//! keep a message from it. That holds for the sends of a rule with no constraint whose
//! actions run for every message (it has no `when`, or its first `when` is a true
//! literal such as `1`), in the only rule set (no effective dates), before any rule that
//! may `return`, in a class with no `delete`. A `foreach` body runs once per segment,
//! possibly never: its sends are conditional. A transform does not change where a send
//! goes, so a `send transform=` counts as its target.
//!
//! Cost: one walk over the class's actions.

use super::compile::{CAction, CRule, CompiledRules};
use super::expr::Expr;
use super::value::Val;

impl CompiledRules {
    /// For each target ([`CompiledRules::targets`] order), whether every message the class
    /// evaluates is sent there.
    pub fn always_sent(&self) -> Vec<bool> {
        let mut always = vec![false; self.targets.len()];
        let [set] = self.sets.as_slice() else {
            return always;
        };
        if !set.begin.is_empty() || !set.end.is_empty() || set.rules.iter().any(deletes) {
            return always;
        }
        for rule in set.rules.iter().filter(|r| !r.disabled) {
            let Some(actions) = always_run(rule) else {
                if rule_may_return(rule) {
                    break;
                }
                continue;
            };
            for action in actions {
                match action {
                    CAction::Send(targets, _) => {
                        for &t in targets {
                            always[t as usize] = true;
                        }
                    }
                    CAction::Return => return always,
                    _ => {}
                }
            }
        }
        always
    }
}

/// The actions `rule` runs for every message, if it has such.
fn always_run(rule: &CRule) -> Option<&[CAction]> {
    if !rule.constraints.is_empty() {
        return None;
    }
    match rule.whens.first() {
        None => rule.otherwise.as_deref(),
        Some((Expr::Lit(value), _, actions)) if Val::Borrowed(value).truth() => Some(actions),
        Some(_) => None,
    }
}

/// Whether running `rule` may stop the rule set (a `return` outside a `foreach`).
fn rule_may_return(rule: &CRule) -> bool {
    let returns = |actions: &[CAction]| actions.iter().any(|a| matches!(a, CAction::Return));
    rule.whens.iter().any(|(_, _, actions)| returns(actions))
        || rule.otherwise.as_deref().is_some_and(returns)
}

/// Whether `rule` holds a `delete` anywhere (a deleted message goes nowhere).
fn deletes(rule: &CRule) -> bool {
    let in_actions = |actions: &[CAction]| {
        actions.iter().any(|a| match a {
            CAction::Delete => true,
            CAction::Foreach(_, rules) => rules.iter().any(deletes),
            _ => false,
        })
    };
    rule.whens.iter().any(|(_, _, actions)| in_actions(actions))
        || rule.otherwise.as_deref().is_some_and(in_actions)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::rules::{CompiledRules, Lookups, Resources, read};

    fn always(rule_set: &str) -> Vec<(String, bool)> {
        let text = format!(
            "Class T.R Extends Ens.Rule.Definition\n{{\n\
             XData RuleDefinition [ XMLNamespace = \"http://www.intersystems.com/rule\" ]\n{{\n\
             <ruleDefinition context=\"EnsLib.HL7.MsgRouter.RoutingEngine\">\n\
             {rule_set}\n</ruleDefinition>\n}}\n}}\n"
        );
        let classes = read::read_cls(&text, Path::new("T.R.cls")).unwrap();
        let lookups = Lookups::default();
        let res = Resources {
            lookups: &lookups,
            folders: &[],
        };
        let compiled = CompiledRules::compile(&classes[0], Path::new("T.R.cls"), res).unwrap();
        compiled
            .targets()
            .iter()
            .cloned()
            .zip(compiled.always_sent())
            .collect()
    }

    fn yes(target: &str) -> (String, bool) {
        (target.to_owned(), true)
    }

    fn no(target: &str) -> (String, bool) {
        (target.to_owned(), false)
    }

    #[test]
    fn a_send_under_when_1_or_no_when_is_always_and_under_a_condition_is_not() {
        let set = r#"<ruleSet name="">
            <rule name="a"><when condition="1"><send target="A"/></when></rule>
            <rule name="b"><when condition="HL7.{MSH:9}=&quot;X&quot;"><send target="B"/></when></rule>
            <rule name="c"><constraint name="source" value="In"/><when condition="1"><send target="C"/></when></rule>
            <rule name="d"><otherwise><send target="D" transform="T.X"/></otherwise></rule>
            <send target="E"/>
            </ruleSet>"#;
        assert_eq!(
            always(set),
            vec![yes("A"), no("B"), no("C"), yes("D"), yes("E")]
        );
    }

    #[test]
    fn a_rule_that_may_return_makes_every_later_send_conditional() {
        let set = r#"<ruleSet name="">
            <rule name="a"><when condition="HL7.{MSH:9}=&quot;X&quot;"><send target="A"/><return/></when></rule>
            <rule name="b"><when condition="1"><send target="B"/></when></rule>
            </ruleSet>"#;
        assert_eq!(always(set), vec![no("A"), no("B")]);
        let set = r#"<ruleSet name="">
            <rule name="a"><when condition="1"><send target="A"/><return/><send target="B"/></when></rule>
            <rule name="b"><when condition="1"><send target="C"/></when></rule>
            </ruleSet>"#;
        assert_eq!(always(set), vec![yes("A"), no("B"), no("C")]);
    }

    #[test]
    fn a_delete_dates_a_second_set_or_a_foreach_make_sends_conditional() {
        let delete = r#"<ruleSet name="">
            <rule name="a"><when condition="1"><send target="A"/></when></rule>
            <rule name="b"><when condition="HL7.{MSH:9}=&quot;X&quot;"><delete/></when></rule>
            </ruleSet>"#;
        assert_eq!(always(delete), vec![no("A")]);
        let dated = r#"<ruleSet name="" effectiveBegin="2020-01-01">
            <rule name="a"><when condition="1"><send target="A"/></when></rule></ruleSet>"#;
        assert_eq!(always(dated), vec![no("A")]);
        let two = r#"<ruleSet name="1"><rule name="a"><when condition="1"><send target="A"/></when></rule></ruleSet>
            <ruleSet name="2"><rule name="b"><when condition="1"><send target="B"/></when></rule></ruleSet>"#;
        assert_eq!(always(two), vec![no("A"), no("B")]);
        let foreach = r#"<ruleSet name=""><rule name="a"><when condition="1">
            <foreach propertypath="HL7.{OBX()}"><rule name="i"><when condition="1"><send target="A"/></when></rule></foreach>
            </when></rule></ruleSet>"#;
        assert_eq!(always(foreach), vec![no("A")]);
    }

    #[test]
    fn a_disabled_rule_sends_nothing() {
        let set = r#"<ruleSet name="">
            <rule name="a" disabled="true"><when condition="1"><send target="A"/></when></rule>
            </ruleSet>"#;
        assert_eq!(always(set), vec![no("A")]);
    }
}
