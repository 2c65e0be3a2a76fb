//! A rule class compiled for evaluation: every condition and value parsed once, targets
//! interned (a decision names a target by index, so a router maps indices to its items
//! once, at start), rule sets with their effective dates normalised.
//!
//! Refused at load, with class, rule and line: a condition or value that does not compile;
//! a `foreach` over
//! anything but a segment (`HL7.{OBX()}`); a rule class with no rule set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::RuleError;
use super::expr::{Expr, Scope, compile};
use super::lookup::Lookups;
use super::model::{Action, ConstraintKind, Rule, RuleClass};
use super::vpath::VPath;

/// A compiled rule class.
#[derive(Debug)]
pub struct CompiledRules {
    /// The class name.
    pub class: String,
    /// The file it came from.
    pub file: PathBuf,
    pub(super) sets: Vec<CSet>,
    /// Interned send targets; a decision's `target` indexes this.
    pub(super) targets: Vec<String>,
    /// Interned `send transform=` values (a DTL class, or a comma list run in order); a
    /// decision's `transform` indexes this.
    pub(super) transforms: Vec<String>,
    /// Names of the variables `<assign>` sets (slot order).
    pub(super) vars: Vec<String>,
    pub(super) lookups: Lookups,
}

#[derive(Debug)]
pub(super) struct CSet {
    pub name: Arc<str>,
    /// Normalised `YYYY-MM-DDTHH:MM:SS`, empty for open.
    pub begin: String,
    pub end: String,
    pub rules: Vec<CRule>,
}

#[derive(Debug)]
pub(super) struct CRule {
    /// The name shown in traces and records: as written, or `#N` (1-based position).
    pub name: Arc<str>,
    pub disabled: bool,
    /// The line the rule starts on (trace lines name it).
    pub line: u32,
    pub constraints: Vec<(ConstraintKind, Vec<String>)>,
    pub whens: Vec<(Expr, u32, Vec<CAction>)>,
    pub otherwise: Option<Vec<CAction>>,
}

#[derive(Debug)]
pub(super) enum CAction {
    /// Targets as indices into [`CompiledRules::targets`], and the transform as an index
    /// into [`CompiledRules::transforms`] ([`NO_TRANSFORM`]: none).
    Send(Vec<u32>, u32),
    Return,
    Assign(usize, Expr),
    Trace(Expr),
    Debug(Expr),
    Delete,
    /// Every segment the path names, in order; the rules run once per segment.
    Foreach(VPath, Vec<CRule>),
}

/// Where compiling finds what literals name.
#[derive(Debug, Clone, Copy)]
pub struct Resources<'a> {
    pub lookups: &'a Lookups,
    /// The folders `InFile` names are resolved in (relative names), in order.
    pub folders: &'a [PathBuf],
}

impl CompiledRules {
    /// Compiles `class`, read from `file`.
    pub fn compile(
        class: &RuleClass,
        file: &Path,
        res: Resources<'_>,
    ) -> Result<CompiledRules, RuleError> {
        let err = |line: u32, rule: Option<&str>, message: String| RuleError {
            file: file.to_path_buf(),
            line,
            class: Some(class.name.clone()),
            rule: rule.map(str::to_owned),
            message,
        };
        if class.rule_sets.is_empty() {
            return Err(err(
                class.line,
                None,
                "the rule definition has no <ruleSet>".into(),
            ));
        }
        let mut vars = Vec::new();
        for set in &class.rule_sets {
            collect_vars(&set.rules, &mut vars);
        }
        let read_lines = |name: &str| read_lines(name, res.folders);
        let mut c = Compiler {
            file,
            class: &class.name,
            targets: Vec::new(),
            transforms: Vec::new(),
            vars: &vars,
            lookups: res.lookups,
            read_lines: &read_lines,
        };
        let mut sets = Vec::new();
        for set in &class.rule_sets {
            let begin = normalise(&set.effective_begin, "T00:00:00")
                .map_err(|m| err(set.line, None, format!("effectiveBegin: {m}")))?;
            let end = normalise(&set.effective_end, "T23:59:59")
                .map_err(|m| err(set.line, None, format!("effectiveEnd: {m}")))?;
            let rules = c.rules(&set.rules, None)?;
            sets.push(CSet {
                name: set.name.as_str().into(),
                begin,
                end,
                rules,
            });
        }
        let targets = std::mem::take(&mut c.targets);
        let transforms = std::mem::take(&mut c.transforms);
        Ok(CompiledRules {
            class: class.name.clone(),
            file: file.to_path_buf(),
            sets,
            targets,
            transforms,
            vars,
            lookups: res.lookups.clone(),
        })
    }

    /// Every target a `send` names, in first-use order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// Every `send transform=` value, in first-use order.
    pub fn transforms(&self) -> &[String] {
        &self.transforms
    }

    /// The lookup tables the class was compiled with (transforms read them too).
    pub fn lookups(&self) -> &Lookups {
        &self.lookups
    }
}

fn collect_vars(rules: &[Rule], vars: &mut Vec<String>) {
    let visit = |actions: &[Action], vars: &mut Vec<String>| {
        for a in actions {
            match a {
                Action::Assign { property, .. } if !vars.contains(property) => {
                    vars.push(property.clone())
                }
                Action::Foreach { rules, .. } => collect_vars(rules, vars),
                _ => {}
            }
        }
    };
    for r in rules {
        for w in &r.whens {
            visit(&w.actions, vars);
        }
        if let Some(o) = &r.otherwise {
            visit(o, vars);
        }
    }
}

fn read_lines(name: &str, folders: &[PathBuf]) -> Result<Vec<String>, String> {
    let path = Path::new(name);
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        folders.iter().map(|f| f.join(path)).collect()
    };
    for c in &candidates {
        if let Ok(text) = std::fs::read_to_string(c) {
            return Ok(text
                .lines()
                .map(|l| l.trim_end_matches('\r').to_owned())
                .collect());
        }
    }
    Err(format!(
        "no readable file at {}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `2024-01-01` / `2024-01-01T08:00` / `2024-01-01T08:00:00` → `2024-01-01T08:00:00`.
fn normalise(date: &str, fill: &str) -> Result<String, String> {
    let d = date.trim();
    if d.is_empty() {
        return Ok(String::new());
    }
    let full = match d.len() {
        10 => format!("{d}{fill}"),
        16 => format!("{d}:00"),
        19 => d.to_owned(),
        _ => return Err(format!("{d:?} is not YYYY-MM-DD[THH:MM[:SS]]")),
    };
    let ok = full.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T' || b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    if !ok {
        return Err(format!("{d:?} is not YYYY-MM-DD[THH:MM[:SS]]"));
    }
    Ok(full.replacen(' ', "T", 1))
}

struct Compiler<'a> {
    file: &'a Path,
    class: &'a str,
    targets: Vec<String>,
    transforms: Vec<String>,
    vars: &'a [String],
    lookups: &'a Lookups,
    read_lines: &'a dyn Fn(&str) -> Result<Vec<String>, String>,
}

impl Compiler<'_> {
    fn err(&self, line: u32, rule: &str, message: String) -> RuleError {
        RuleError {
            file: self.file.to_path_buf(),
            line,
            class: Some(self.class.to_owned()),
            rule: Some(rule.to_owned()),
            message,
        }
    }

    fn rules(
        &mut self,
        rules: &[Rule],
        in_foreach: Option<[u8; 3]>,
    ) -> Result<Vec<CRule>, RuleError> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let name = if r.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                r.name.clone()
            };
            let constraints = r
                .constraints
                .iter()
                .map(|c| (c.kind, c.values.clone()))
                .collect();
            let mut whens = Vec::new();
            for w in &r.whens {
                let cond = self.expr(&w.condition, w.line, &name, "condition", in_foreach)?;
                let actions = self.actions(&w.actions, &name, in_foreach)?;
                whens.push((cond, w.line, actions));
            }
            let otherwise = r
                .otherwise
                .as_ref()
                .map(|o| self.actions(o, &name, in_foreach))
                .transpose()?;
            let line = if r.line == 0 {
                r.otherwise
                    .as_ref()
                    .and_then(|o| o.first())
                    .map_or(0, Action::line)
            } else {
                r.line
            };
            out.push(CRule {
                name: name.as_str().into(),
                disabled: r.disabled,
                line,
                constraints,
                whens,
                otherwise,
            });
        }
        Ok(out)
    }

    fn expr(
        &self,
        text: &str,
        line: u32,
        rule: &str,
        what: &str,
        in_foreach: Option<[u8; 3]>,
    ) -> Result<Expr, RuleError> {
        let scope = Scope {
            vars: self.vars,
            lookups: self.lookups,
            read_lines: self.read_lines,
            foreach_segment: in_foreach,
        };
        compile(text, &scope).map_err(|(pos, m)| {
            self.err(
                line,
                rule,
                format!("{what} {text:?} does not compile (at character {pos}): {m}"),
            )
        })
    }

    fn actions(
        &mut self,
        actions: &[Action],
        rule: &str,
        in_foreach: Option<[u8; 3]>,
    ) -> Result<Vec<CAction>, RuleError> {
        let mut out = Vec::new();
        for a in actions {
            out.push(match a {
                Action::Send { targets, transform, line } => {
                    if targets.is_empty() {
                        return Err(self.err(*line, rule, "send names no target".into()));
                    }
                    let transform = match transform.trim() {
                        "" => NO_TRANSFORM,
                        t => intern(&mut self.transforms, t),
                    };
                    CAction::Send(targets.iter().map(|t| intern(&mut self.targets, t)).collect(), transform)
                }
                Action::Return { .. } => CAction::Return,
                Action::Delete { .. } => CAction::Delete,
                Action::Assign { property, value, line } => {
                    let slot = self.vars.iter().position(|v| v == property).unwrap_or(0);
                    CAction::Assign(slot, self.expr(value, *line, rule, "assign value", in_foreach)?)
                }
                Action::Trace { value, line } => CAction::Trace(self.expr(value, *line, rule, "trace value", in_foreach)?),
                Action::Debug { value, line } => CAction::Debug(self.expr(value, *line, rule, "debug value", in_foreach)?),
                Action::Foreach { property_path, rules, line } => {
                    if in_foreach.is_some() {
                        return Err(self.err(*line, rule, "a <foreach> inside a <foreach> is not supported (IRIS does not nest them)".into()));
                    }
                    let path = foreach_path(property_path).map_err(|m| self.err(*line, rule, m))?;
                    let id = path.segment_id();
                    CAction::Foreach(path, self.rules(rules, id)?)
                }
            });
        }
        Ok(out)
    }
}

/// A decision's `transform` when its send names none.
pub const NO_TRANSFORM: u32 = u32::MAX;

/// The index of `name` in `list`, added at the end when new.
fn intern(list: &mut Vec<String>, name: &str) -> u32 {
    match list.iter().position(|t| t == name) {
        Some(i) => i as u32,
        None => {
            list.push(name.to_owned());
            (list.len() - 1) as u32
        }
    }
}

/// The segments a `foreach` runs over: `HL7.{OBX()}`, `HL7.{OBXgrp().OBX}` (every
/// instance of a segment).
fn foreach_path(path: &str) -> Result<VPath, String> {
    let inner = path
        .trim()
        .strip_prefix("HL7.{")
        .or_else(|| path.trim().strip_prefix("Document.{"))
        .and_then(|p| p.strip_suffix('}'))
        .ok_or_else(|| format!("foreach propertypath {path:?} is not HL7.{{..}}"))?;
    let p = VPath::parse(inner).map_err(|m| format!("foreach propertypath {path:?}: {m}"))?;
    if !p.is_every_segment() {
        return Err(format!(
            "foreach propertypath {path:?}: hie runs foreach over every instance of a segment, \
             written with () (HL7.{{OBX()}}, HL7.{{OBXgrp().OBX}})"
        ));
    }
    Ok(p)
}
