//! Readers for rule classes in IRIS's two container forms, with `quick-xml`:
//!
//! ```text
//! .cls (UDL class text)                         Export XML
//! Class P.Rule Extends Ens.Rule.Definition      <Export generator="Cache|IRIS" ..>
//! {                                             <Class name="P.Rule"> ..
//! Parameter RuleAssistClass = "..";             <XData name="RuleDefinition">
//! XData RuleDefinition [ XMLNamespace = .. ]    <Data><![CDATA[ <ruleDefinition ..> ]]></Data>
//! {                                             </XData></Class> (more classes) </Export>
//! <ruleDefinition ..> .. </ruleDefinition>
//! }
//! }
//! ```
//!
//! The `.cls` reader never matches braces (HL7 paths hold `{}`): it takes the text from the
//! first `<ruleDefinition` after `XData RuleDefinition` to the first `</ruleDefinition>`.
//! The Export reader joins the CDATA sections of `<Data>` (a payload holding `]]>` is
//! split as `]]]]><![CDATA[>`). Lines are those of the file read (the payload's lines
//! offset by the line it starts on). An element or attribute hie does not know is an
//! error at its line: a rule that runs differently from IRIS must not load silently.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::RuleError;
use super::model::{
    Action, Constraint, ConstraintKind, Rule, RuleClass, RuleSet, When, split_list,
};
use crate::config::iris::Lines;

/// Reads every rule class of a `.cls` file (one class).
pub fn read_cls(text: &str, file: &Path) -> Result<Vec<RuleClass>, RuleError> {
    let lines = Lines::new(text, 1);
    let class = cls_class_name(text).ok_or_else(|| RuleError {
        file: file.to_path_buf(),
        line: 1,
        class: None,
        rule: None,
        message: "no `Class NAME` declaration in the file".into(),
    })?;
    let err = |pos: usize, message: &str| RuleError {
        file: file.to_path_buf(),
        line: lines.line(pos as u64),
        class: Some(class.clone()),
        rule: None,
        message: message.into(),
    };
    let Some(xdata) = text.find("XData RuleDefinition") else {
        return Err(err(0, "no `XData RuleDefinition` block in the class"));
    };
    let Some(start) = text[xdata..].find("<ruleDefinition").map(|i| xdata + i) else {
        return Err(err(
            xdata,
            "no <ruleDefinition> element in XData RuleDefinition",
        ));
    };
    let close = "</ruleDefinition>";
    let Some(end) = text[start..].find(close).map(|i| start + i + close.len()) else {
        return Err(err(
            start,
            "<ruleDefinition> has no </ruleDefinition> end tag",
        ));
    };
    let first_line = lines.line(start as u64);
    let rc = read_payload(&text[start..end], first_line, file, &class)?;
    Ok(vec![rc])
}

/// The class name of `Class NAME Extends ..` at the start of a line.
pub(crate) fn cls_class_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("Class ")?;
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// Reads every rule class of an `<Export>` file (classes of other kinds are skipped).
pub fn read_export(text: &str, file: &Path) -> Result<Vec<RuleClass>, RuleError> {
    let lines = Lines::new(text, 1);
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut class: Option<String> = None;
    let mut in_rule_xdata = false;
    loop {
        let pos = reader.buffer_position();
        let fail = |class: &Option<String>, message: String| RuleError {
            file: file.to_path_buf(),
            line: lines.line(pos),
            class: class.clone(),
            rule: None,
            message,
        };
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"Class" => class = attr(&e, "name").map_err(|m| fail(&class, m))?,
                b"XData" => {
                    in_rule_xdata = attr(&e, "name").map_err(|m| fail(&class, m))?.as_deref()
                        == Some("RuleDefinition")
                }
                b"Data" if in_rule_xdata => {
                    let first_line = lines.line(reader.buffer_position());
                    let payload = read_text(&mut reader).map_err(|m| fail(&class, m))?;
                    let name = class.clone().unwrap_or_default();
                    let body = payload.trim_start();
                    let skipped = &payload[..payload.len() - body.len()];
                    let first = first_line + skipped.matches('\n').count() as u32;
                    out.push(read_payload(body, first, file, &name)?);
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.name().as_ref() == b"XData" => in_rule_xdata = false,
            Ok(Event::End(e)) if e.name().as_ref() == b"Class" => class = None,
            Ok(Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(fail(&class, format!("malformed XML: {e}"))),
        }
    }
}

/// Element text up to the end tag of the element just opened: text and CDATA joined.
pub(crate) fn read_text(reader: &mut Reader<&[u8]>) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Text(t)) => out.push_str(&t.xml_content().map_err(|e| e.to_string())?),
            // Raw, not `xml_content`: XML's line-end normalisation would turn a "\r\r\n"
            // into two newlines and shift every line after it.
            Ok(Event::CData(c)) => out.push_str(&String::from_utf8_lossy(&c.into_inner())),
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                match r.resolve_char_ref() {
                    Ok(Some(c)) => out.push(c),
                    _ => match resolve_predefined_entity(&name) {
                        Some(s) => out.push_str(s),
                        None => return Err(format!("unknown entity &{name};")),
                    },
                }
            }
            Ok(Event::End(_)) => return Ok(out),
            Ok(Event::Eof) => return Err("end of file inside <Data>".into()),
            Ok(Event::Start(_)) | Ok(Event::Empty(_)) => {
                return Err("unexpected element inside <Data>".into());
            }
            Ok(_) => {}
            Err(e) => return Err(format!("malformed XML: {e}")),
        }
    }
}

/// The unescaped value of attribute `name`.
pub(crate) fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("malformed attribute: {err}"))?;
        if a.key.as_ref() == name.as_bytes() {
            let v = a
                .unescape_value()
                .map_err(|err| format!("attribute {name}: {err}"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// A reader of one payload, `<ruleDefinition ..> .. </ruleDefinition>`.
struct Payload<'t, 'f> {
    reader: Reader<&'t [u8]>,
    lines: Lines,
    file: &'f Path,
    class: &'f str,
    rule: Option<String>,
}

/// The next element event of a payload, with its line.
enum Next<'t> {
    Open(BytesStart<'t>, bool, u32),
    Close,
}

fn read_payload(
    text: &str,
    first_line: u32,
    file: &Path,
    class: &str,
) -> Result<RuleClass, RuleError> {
    let mut p = Payload {
        reader: Reader::from_str(text),
        lines: Lines::new(text, first_line),
        file,
        class,
        rule: None,
    };
    let (e, empty, line) = match p.next()? {
        Next::Open(e, empty, line) if e.name().as_ref() == b"ruleDefinition" => (e, empty, line),
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
        loop {
            let pos = self.reader.buffer_position();
            let line = self.lines.line(pos);
            match self.reader.read_event() {
                Ok(Event::Start(e)) => return Ok(Next::Open(e, false, line)),
                Ok(Event::Empty(e)) => return Ok(Next::Open(e, true, line)),
                Ok(Event::End(_)) | Ok(Event::Eof) => return Ok(Next::Close),
                Ok(_) => {}
                Err(e) => {
                    let line = self.lines.line(self.reader.error_position());
                    return Err(self.err(line, format!("malformed XML: {e}")));
                }
            }
        }
    }

    fn attr(&self, e: &BytesStart<'_>, name: &str, line: u32) -> Result<Option<String>, RuleError> {
        attr(e, name).map_err(|m| self.err(line, m))
    }

    fn required(&self, e: &BytesStart<'_>, name: &str, line: u32) -> Result<String, RuleError> {
        self.attr(e, name, line)?.ok_or_else(|| {
            let el = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            self.err(line, format!("<{el}> has no {name} attribute"))
        })
    }

    /// An attribute not in `known` is an error (it would change what the rule does).
    fn known_attrs(&self, e: &BytesStart<'_>, known: &[&str], line: u32) -> Result<(), RuleError> {
        for a in e.attributes() {
            let a = a.map_err(|err| self.err(line, format!("malformed attribute: {err}")))?;
            let key = String::from_utf8_lossy(a.key.as_ref());
            if !known.contains(&key.as_ref()) {
                let el = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                return Err(self.err(
                    line,
                    format!("attribute {key} of <{el}> is not one hie knows"),
                ));
            }
        }
        Ok(())
    }

    /// Skips the children of an element hie ignores (`comment`, `annotation`).
    fn skip(&mut self, empty: bool) -> Result<(), RuleError> {
        if empty {
            return Ok(());
        }
        let mut depth = 1usize;
        while depth > 0 {
            match self.next()? {
                Next::Open(_, false, _) => depth += 1,
                Next::Open(_, true, _) => {}
                Next::Close => depth -= 1,
            }
        }
        Ok(())
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
