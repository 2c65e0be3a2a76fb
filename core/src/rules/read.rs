//! Readers for rule classes in IRIS's two container forms (`.cls` and `<Export>`, found
//! by [`crate::iris_class`]: `XData RuleDefinition`, whose payload is one
//! `<ruleDefinition>` element), with the payload walked by its [`Cursor`]. Lines are those
//! of the file read. An element or attribute hie does not know is an error at its line: a
//! rule that runs differently from IRIS must not load silently.

use std::path::Path;

use quick_xml::events::BytesStart;

use super::RuleError;
use super::model::{
    Action, Constraint, ConstraintKind, Rule, RuleClass, RuleSet, When, split_list,
};
use crate::iris_class::{self, ClassError, Cursor, Form, Next, XDataPayload};

/// The `XData` block of a rule class, and its payload's root element.
const BLOCK: (&str, &str) = ("RuleDefinition", "ruleDefinition");

/// Reads the rule class of a `.cls` file.
pub fn read_cls(text: &str, file: &Path) -> Result<Vec<RuleClass>, RuleError> {
    read(text, file, Form::Cls)
}

/// Reads every rule class of an `<Export>` file (classes of other kinds are skipped).
pub fn read_export(text: &str, file: &Path) -> Result<Vec<RuleClass>, RuleError> {
    read(text, file, Form::Export)
}

fn read(text: &str, file: &Path, form: Form) -> Result<Vec<RuleClass>, RuleError> {
    let wrap = |e: ClassError| RuleError {
        file: file.to_path_buf(),
        line: e.line,
        class: e.class,
        rule: None,
        message: e.message,
    };
    iris_class::read_classes(text, form, BLOCK, wrap, |p| read_payload(p, file))
}

/// A reader of one payload, `<ruleDefinition ..> .. </ruleDefinition>`.
struct Payload<'t, 'f> {
    cursor: Cursor<'t>,
    file: &'f Path,
    class: &'f str,
    rule: Option<String>,
}

fn read_payload(payload: &XDataPayload<'_>, file: &Path) -> Result<RuleClass, RuleError> {
    let (text, first_line, class) = (&payload.text, payload.first_line, &payload.class);
    let mut p = Payload {
        cursor: Cursor::new(text, first_line),
        file,
        class,
        rule: None,
    };
    let (e, empty, line) = match p.next()? {
        Next::Open(e, empty, line) if e.name().as_ref() == BLOCK.1.as_bytes() => (e, empty, line),
        _ => return Err(p.err(first_line, "the payload is no <ruleDefinition>".into())),
    };
    p.known_attrs(&e, &["alias", "context", "production"], line)?;
    let mut rc = RuleClass {
        name: class.to_owned(),
        context: p.attr(&e, "context", line)?.unwrap_or_default(),
        production: p.attr(&e, "production", line)?.unwrap_or_default(),
        line,
        rule_sets: Vec::new(),
    };
    if empty {
        return Ok(rc);
    }
    while let Next::Open(e, empty, line) = p.next()? {
        match e.name().as_ref() {
            b"ruleSet" => rc.rule_sets.push(p.rule_set(&e, empty, line)?),
            other => return Err(p.unknown(other, line, "<ruleDefinition>")),
        }
    }
    Ok(rc)
}

impl<'t> Payload<'t, '_> {
    fn err(&self, line: u32, message: String) -> RuleError {
        RuleError {
            file: self.file.to_path_buf(),
            line,
            class: Some(self.class.to_owned()),
            rule: self.rule.clone(),
            message,
        }
    }

    fn unknown(&self, name: &[u8], line: u32, parent: &str) -> RuleError {
        let name = String::from_utf8_lossy(name);
        self.err(
            line,
            format!("element <{name}> in {parent} is not one hie knows"),
        )
    }

    /// The next start, empty or end tag (text, comments and CDATA between are skipped).
    fn next(&mut self) -> Result<Next<'t>, RuleError> {
        self.cursor
            .next_element()
            .map_err(|(line, m)| self.err(line, m))
    }

    fn attr(&self, e: &BytesStart<'_>, name: &str, line: u32) -> Result<Option<String>, RuleError> {
        iris_class::attr(e, name).map_err(|m| self.err(line, m))
    }

    fn required(&self, e: &BytesStart<'_>, name: &str, line: u32) -> Result<String, RuleError> {
        iris_class::required(e, name).map_err(|m| self.err(line, m))
    }

    /// An attribute not in `known` is an error (it would change what the rule does).
    fn known_attrs(&self, e: &BytesStart<'_>, known: &[&str], line: u32) -> Result<(), RuleError> {
        iris_class::known_attrs(e, known, &[]).map_err(|m| self.err(line, m))
    }

    /// Skips the children of an element hie ignores (`comment`, `annotation`).
    fn skip(&mut self, empty: bool) -> Result<(), RuleError> {
        self.cursor
            .skip(empty)
            .map_err(|(line, m)| self.err(line, m))
    }

    fn rule_set(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        line: u32,
    ) -> Result<RuleSet, RuleError> {
        self.known_attrs(e, &["name", "effectiveBegin", "effectiveEnd"], line)?;
        let mut set = RuleSet {
            name: self.attr(e, "name", line)?.unwrap_or_default(),
            effective_begin: self.attr(e, "effectiveBegin", line)?.unwrap_or_default(),
            effective_end: self.attr(e, "effectiveEnd", line)?.unwrap_or_default(),
            line,
            rules: Vec::new(),
        };
        if empty {
            return Ok(set);
        }
        loop {
            let (e, empty, line) = match self.next()? {
                Next::Open(e, empty, line) => (e.into_owned(), empty, line),
                Next::Close => return Ok(set),
            };
            match e.name().as_ref() {
                b"rule" => set.rules.push(self.rule(&e, empty, line)?),
                b"comment" | b"annotation" => self.skip(empty)?,
                _ => {
                    // Actions directly under the rule set: an unnamed rule that always runs
                    // them (consecutive ones share it).
                    let action = self.action(&e, empty, line, "<ruleSet>")?;
                    match set.rules.last_mut() {
                        Some(r)
                            if r.name.is_empty()
                                && r.whens.is_empty()
                                && r.otherwise.is_some()
                                && r.constraints.is_empty()
                                && r.line == 0 =>
                        {
                            r.otherwise.get_or_insert_with(Vec::new).push(action)
                        }
                        _ => set.rules.push(Rule {
                            otherwise: Some(vec![action]),
                            ..Rule::default()
                        }),
                    }
                }
            }
        }
    }

    fn rule(&mut self, e: &BytesStart<'_>, empty: bool, line: u32) -> Result<Rule, RuleError> {
        self.known_attrs(e, &["name", "disabled"], line)?;
        let name = self.attr(e, "name", line)?.unwrap_or_default();
        self.rule = Some(name.clone());
        let disabled = match self.attr(e, "disabled", line)?.as_deref() {
            None | Some("false") | Some("0") | Some("") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(self.err(
                    line,
                    format!("disabled={other:?} is neither true nor false"),
                ));
            }
        };
        let mut rule = Rule {
            name,
            disabled,
            line,
            ..Rule::default()
        };
        if !empty {
            self.rule_children(&mut rule)?;
        }
        self.rule = None;
        Ok(rule)
    }

    fn rule_children(&mut self, rule: &mut Rule) -> Result<(), RuleError> {
        loop {
            let (e, empty, line) = match self.next()? {
                Next::Open(e, empty, line) => (e.into_owned(), empty, line),
                Next::Close => return Ok(()),
            };
            match e.name().as_ref() {
                b"constraint" => {
                    self.known_attrs(&e, &["name", "value"], line)?;
                    let name = self.required(&e, "name", line)?;
                    let kind = ConstraintKind::parse(&name).ok_or_else(|| {
                        self.err(line, format!("constraint {name:?} is none of source, msgClass, docCategory, docName, docType"))
                    })?;
                    let values = split_list(&self.attr(&e, "value", line)?.unwrap_or_default());
                    rule.constraints.push(Constraint { kind, values, line });
                    self.skip(empty)?;
                }
                b"when" => {
                    self.known_attrs(&e, &["condition", "comment"], line)?;
                    let condition = self.required(&e, "condition", line)?;
                    let actions = if empty {
                        Vec::new()
                    } else {
                        self.actions("<when>")?
                    };
                    rule.whens.push(When {
                        condition,
                        line,
                        actions,
                    });
                }
                b"otherwise" => {
                    self.known_attrs(&e, &["comment"], line)?;
                    let actions = if empty {
                        Vec::new()
                    } else {
                        self.actions("<otherwise>")?
                    };
                    rule.otherwise = Some(actions);
                }
                b"comment" | b"annotation" => self.skip(empty)?,
                other => return Err(self.unknown(other, line, "<rule>")),
            }
        }
    }

    fn actions(&mut self, parent: &str) -> Result<Vec<Action>, RuleError> {
        let mut out = Vec::new();
        loop {
            let (e, empty, line) = match self.next()? {
                Next::Open(e, empty, line) => (e.into_owned(), empty, line),
                Next::Close => return Ok(out),
            };
            if matches!(e.name().as_ref(), b"comment" | b"annotation") {
                self.skip(empty)?;
                continue;
            }
            out.push(self.action(&e, empty, line, parent)?);
        }
    }

    fn action(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        line: u32,
        parent: &str,
    ) -> Result<Action, RuleError> {
        let action = match e.name().as_ref() {
            b"send" => {
                self.known_attrs(e, &["target", "transform"], line)?;
                let targets = split_list(&self.required(e, "target", line)?);
                let transform = self.attr(e, "transform", line)?.unwrap_or_default();
                Action::Send {
                    targets,
                    transform: transform.trim().to_owned(),
                    line,
                }
            }
            b"return" => Action::Return { line },
            b"delete" => Action::Delete { line },
            b"assign" => {
                self.known_attrs(e, &["property", "value"], line)?;
                Action::Assign {
                    property: self.required(e, "property", line)?,
                    value: self.required(e, "value", line)?,
                    line,
                }
            }
            b"trace" | b"debug" => {
                self.known_attrs(e, &["value"], line)?;
                let value = self.required(e, "value", line)?;
                if e.name().as_ref() == b"trace" {
                    Action::Trace { value, line }
                } else {
                    Action::Debug { value, line }
                }
            }
            b"foreach" => {
                self.known_attrs(e, &["propertypath", "comment"], line)?;
                let property_path = self.required(e, "propertypath", line)?;
                let mut rules = Vec::new();
                if !empty {
                    while let Next::Open(e, empty, line) = self.next()? {
                        match e.name().as_ref() {
                            b"rule" => rules.push(self.rule(&e, empty, line)?),
                            b"comment" | b"annotation" => self.skip(empty)?,
                            other => return Err(self.unknown(other, line, "<foreach>")),
                        }
                    }
                }
                return Ok(Action::Foreach {
                    property_path,
                    rules,
                    line,
                });
            }
            other => {
                let name = String::from_utf8_lossy(other).into_owned();
                let why = if name == "delegate" {
                    "is not supported by hie (it hands the message to another rule class)"
                } else {
                    "is not a rule action hie knows"
                };
                return Err(self.err(line, format!("element <{name}> in {parent} {why}")));
            }
        };
        self.skip(empty)?;
        Ok(action)
    }
}
