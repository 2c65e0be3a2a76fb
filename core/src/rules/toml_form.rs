//! The native TOML form of a rule class: the same model as IRIS's XML, read with serde.
//!
//! ```text
//! class = "Trust.ADT.Rule"                       required
//! context = "EnsLib.HL7.MsgRouter.RoutingEngine"  optional (this default)
//! [[rule_set]]                                   name, effective_begin, effective_end
//! [[rule_set.rule]]                              name, disabled, the constraints
//! name = "ADT to PAS"                            (source, msg_class, doc_category,
//! doc_name = "ADT_A01,ADT_A08"                   doc_name, doc_type: comma lists) and
//! otherwise = [{ send = "Other" }]               otherwise, before the when tables
//! [[rule_set.rule.when]]
//! condition = 'HL7.{PV1:2}="E"'
//! actions = [{ send = "PAS_Out,Audit" }, { return = true }]
//! ```
//!
//! Actions: `{ send = "A,B", transform = "" }`, `{ return = true }`, `{ assign = "var",
//! value = "expr" }`, `{ trace = "expr" }`, `{ debug = "expr" }`, `{ delete = true }`,
//! `{ foreach = "HL7.{OBX()}", rules = [ ..rule tables.. ] }`. Unknown keys are errors.
//! Lines are the TOML file's (from the parser's byte spans).

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::RuleError;
use super::model::{
    Action, Constraint, ConstraintKind, Rule, RuleClass, RuleSet, When, split_list,
};
use crate::config::iris::Lines;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassForm {
    class: Spanned<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    production: String,
    #[serde(default, rename = "rule_set")]
    rule_sets: Vec<Spanned<RuleSetForm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSetForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    effective_begin: String,
    #[serde(default)]
    effective_end: String,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RuleForm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    disabled: bool,
    source: Option<Spanned<String>>,
    msg_class: Option<Spanned<String>>,
    doc_category: Option<Spanned<String>>,
    doc_name: Option<Spanned<String>>,
    doc_type: Option<Spanned<String>>,
    #[serde(default, rename = "when")]
    whens: Vec<Spanned<WhenForm>>,
    otherwise: Option<Vec<Spanned<ActionForm>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenForm {
    condition: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    actions: Vec<Spanned<ActionForm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionForm {
    send: Option<String>,
    transform: Option<String>,
    #[serde(rename = "return")]
    return_: Option<bool>,
    assign: Option<String>,
    value: Option<String>,
    trace: Option<String>,
    debug: Option<String>,
    delete: Option<bool>,
    foreach: Option<String>,
    rules: Option<Vec<Spanned<RuleForm>>>,
}

/// Reads a rule class in hie's TOML form.
pub fn read_toml(text: &str, file: &Path) -> Result<RuleClass, RuleError> {
    let lines = Lines::new(text, 1);
    let form: ClassForm = toml::from_str(text).map_err(|e| RuleError {
        file: file.to_path_buf(),
        line: e.span().map_or(1, |s| lines.line(s.start as u64)),
        class: None,
        rule: None,
        message: format!("TOML: {}", e.message()),
    })?;
    let cx = Cx {
        lines: &lines,
        file,
        class: form.class.get_ref(),
    };
    let mut rule_sets = Vec::new();
    for set in form.rule_sets {
        let line = cx.line(set.span());
        let set = set.into_inner();
        let rules = set
            .rules
            .into_iter()
            .map(|r| cx.rule(r))
            .collect::<Result<_, _>>()?;
        rule_sets.push(RuleSet {
            name: set.name,
            effective_begin: set.effective_begin,
            effective_end: set.effective_end,
            line,
            rules,
        });
    }
    Ok(RuleClass {
        name: form.class.get_ref().clone(),
        context: form
            .context
            .unwrap_or_else(|| "EnsLib.HL7.MsgRouter.RoutingEngine".into()),
        production: form.production,
        line: cx.line(form.class.span()),
        rule_sets,
    })
}

struct Cx<'a> {
    lines: &'a Lines,
    file: &'a Path,
    class: &'a str,
}

impl Cx<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> u32 {
        self.lines.line(span.start as u64)
    }

    fn err(&self, line: u32, rule: &str, message: String) -> RuleError {
        RuleError {
            file: self.file.to_path_buf(),
            line,
            class: Some(self.class.to_owned()),
            rule: Some(rule.to_owned()),
            message,
        }
    }

    fn rule(&self, form: Spanned<RuleForm>) -> Result<Rule, RuleError> {
        let line = self.line(form.span());
        let r = form.into_inner();
        let mut constraints = Vec::new();
        let kinds = [
            (ConstraintKind::Source, r.source),
            (ConstraintKind::MsgClass, r.msg_class),
            (ConstraintKind::DocCategory, r.doc_category),
            (ConstraintKind::DocName, r.doc_name),
            (ConstraintKind::DocType, r.doc_type),
        ];
        for (kind, value) in kinds {
            if let Some(v) = value {
                let line = self.line(v.span());
                constraints.push(Constraint {
                    kind,
                    values: split_list(v.get_ref()),
                    line,
                });
            }
        }
        let mut whens = Vec::new();
        for w in r.whens {
            let line = self.line(w.span());
            let w = w.into_inner();
            let _ = w.comment;
            let actions = self.actions(w.actions, &r.name)?;
            whens.push(When {
                condition: w.condition,
                line,
                actions,
            });
        }
        let otherwise = r.otherwise.map(|a| self.actions(a, &r.name)).transpose()?;
        Ok(Rule {
            name: r.name,
            disabled: r.disabled,
            line,
            constraints,
            whens,
            otherwise,
        })
    }

    fn actions(
        &self,
        forms: Vec<Spanned<ActionForm>>,
        rule: &str,
    ) -> Result<Vec<Action>, RuleError> {
        forms.into_iter().map(|f| self.action(f, rule)).collect()
    }

    fn action(&self, form: Spanned<ActionForm>, rule: &str) -> Result<Action, RuleError> {
        let line = self.line(form.span());
        let a = form.into_inner();
        let given = [
            a.send.is_some(),
            a.return_.is_some(),
            a.assign.is_some(),
            a.trace.is_some(),
            a.debug.is_some(),
            a.delete.is_some(),
            a.foreach.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            let m =
                "an action has exactly one of send, return, assign, trace, debug, delete, foreach";
            return Err(self.err(line, rule, m.into()));
        }
        let misplaced =
            |key: &str| self.err(line, rule, format!("`{key}` belongs to another action"));
        if a.transform.is_some() && a.send.is_none() {
            return Err(misplaced("transform"));
        }
        if a.value.is_some() && a.assign.is_none() {
            return Err(misplaced("value"));
        }
        if a.rules.is_some() && a.foreach.is_none() {
            return Err(misplaced("rules"));
        }
        Ok(if let Some(send) = a.send {
            Action::Send {
                targets: split_list(&send),
                transform: a.transform.unwrap_or_default(),
                line,
            }
        } else if a.return_.is_some() {
            Action::Return { line }
        } else if let Some(property) = a.assign {
            let value = a
                .value
                .ok_or_else(|| self.err(line, rule, "assign has no value".into()))?;
            Action::Assign {
                property,
                value,
                line,
            }
        } else if let Some(value) = a.trace {
            Action::Trace { value, line }
        } else if let Some(value) = a.debug {
            Action::Debug { value, line }
        } else if a.delete.is_some() {
            Action::Delete { line }
        } else {
            let rules = a
                .rules
                .unwrap_or_default()
                .into_iter()
                .map(|r| self.rule(r))
                .collect::<Result<_, _>>()?;
            Action::Foreach {
                property_path: a.foreach.unwrap_or_default(),
                rules,
                line,
            }
        })
    }
}
