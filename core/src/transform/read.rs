//! Readers for DTL classes in IRIS's two container forms, sharing the rules readers'
//! XML helpers ([`crate::rules::read`]):
//!
//! ```text
//! .cls (UDL class text)                         Export XML
//! Class P.T Extends Ens.DataTransformDTL        <Export ..><Class name="P.T"> ..
//! Parameter GENERATEEMPTYSEGMENTS = 1;          <Parameter name="GENERATEEMPTYSEGMENTS">
//! XData DTL [ XMLNamespace = .. ]                 <Default>1</Default></Parameter>
//! { <transform ..> .. </transform> }            <XData name="DTL"><Data><![CDATA[
//!                                                 <transform ..> ]]></Data></XData>
//! ```
//!
//! The `.cls` reader takes the text from the first `<transform` after `XData DTL` to the
//! first `</transform>`. An element or attribute hie does not know is an error at its
//! line; `<annotation>` and `<comment>` are skipped; `<code>` and `<sql>` are kept as
//! [`Action::Code`] so loading can report each.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::TransformError;
use super::model::{Action, AssignKind, Create, Transform};
use crate::config::iris::Lines;
use crate::rules::read::{attr, cls_class_name, read_text};

/// Reads the DTL class of a `.cls` file.
pub fn read_cls(text: &str, file: &Path) -> Result<Vec<Transform>, TransformError> {
    let lines = Lines::new(text, 1);
    let class = cls_class_name(text).ok_or_else(|| TransformError {
        file: file.to_path_buf(),
        line: 1,
        class: None,
        action: None,
        message: "no `Class NAME` declaration in the file".into(),
    })?;
    let err = |pos: usize, message: &str| TransformError {
        file: file.to_path_buf(),
        line: lines.line(pos as u64),
        class: Some(class.clone()),
        action: None,
        message: message.into(),
    };
    let Some(xdata) = text.find("XData DTL") else {
        return Err(err(0, "no `XData DTL` block in the class"));
    };
    let Some(start) = text[xdata..].find("<transform").map(|i| xdata + i) else {
        return Err(err(xdata, "no <transform> element in XData DTL"));
    };
    let close = "</transform>";
    let Some(end) = text[start..].find(close).map(|i| start + i + close.len()) else {
        return Err(err(start, "<transform> has no </transform> end tag"));
    };
    let mut t = read_payload(&text[start..end], lines.line(start as u64), file, &class)?;
    t.generate_empty_segments = text.lines().any(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        l.starts_with("ParameterGENERATEEMPTYSEGMENTS=1")
    });
    Ok(vec![t])
}

/// Reads every DTL class of an `<Export>` file (classes of other kinds are skipped).
pub fn read_export(text: &str, file: &Path) -> Result<Vec<Transform>, TransformError> {
    let lines = Lines::new(text, 1);
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut class: Option<String> = None;
    let mut in_dtl = false;
    let mut parameter: Option<String> = None;
    let mut empty_segments = false;
    loop {
        let pos = reader.buffer_position();
        let fail = |class: &Option<String>, message: String| TransformError {
            file: file.to_path_buf(),
            line: lines.line(pos),
            class: class.clone(),
            action: None,
            message,
        };
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"Class" => {
                    class = attr(&e, "name").map_err(|m| fail(&class, m))?;
                    empty_segments = false;
                }
                b"Parameter" => parameter = attr(&e, "name").map_err(|m| fail(&class, m))?,
                b"Default" if parameter.as_deref() == Some("GENERATEEMPTYSEGMENTS") => {
                    empty_segments =
                        read_text(&mut reader).map_err(|m| fail(&class, m))?.trim() == "1";
                }
                b"XData" => {
                    in_dtl =
                        attr(&e, "name").map_err(|m| fail(&class, m))?.as_deref() == Some("DTL")
                }
                b"Data" if in_dtl => {
                    let first_line = lines.line(reader.buffer_position());
                    let payload = read_text(&mut reader).map_err(|m| fail(&class, m))?;
                    let name = class.clone().unwrap_or_default();
                    let body = payload.trim_start();
                    let skipped = &payload[..payload.len() - body.len()];
                    let first = first_line + skipped.matches('\n').count() as u32;
                    let mut t = read_payload(body, first, file, &name)?;
                    t.generate_empty_segments = empty_segments;
                    out.push(t);
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.name().as_ref() == b"XData" => in_dtl = false,
            Ok(Event::End(e)) if e.name().as_ref() == b"Parameter" => parameter = None,
            Ok(Event::End(e)) if e.name().as_ref() == b"Class" => class = None,
            Ok(Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(fail(&class, format!("malformed XML: {e}"))),
        }
    }
}

/// A reader of one payload, `<transform ..> .. </transform>`.
struct Payload<'t, 'f> {
    reader: Reader<&'t [u8]>,
    lines: Lines,
    file: &'f Path,
    class: &'f str,
}

enum Next<'t> {
    Open(BytesStart<'t>, bool, u32),
    Close,
}

fn read_payload(
    text: &str,
    first_line: u32,
    file: &Path,
    class: &str,
) -> Result<Transform, TransformError> {
    let mut p = Payload {
        reader: Reader::from_str(text),
        lines: Lines::new(text, first_line),
        file,
        class,
    };
    let (e, empty, line) = match p.next()? {
        Next::Open(e, empty, line) if e.name().as_ref() == b"transform" => (e, empty, line),
        _ => return Err(p.err(first_line, None, "the payload is no <transform>".into())),
    };
    p.known_attrs(
        &e,
        &[
            "sourceClass",
            "targetClass",
            "sourceDocType",
            "targetDocType",
            "create",
            "language",
        ],
        line,
    )?;
    let language = p.attr(&e, "language", line)?.unwrap_or_default();
    if !matches!(language.as_str(), "" | "objectscript") {
        return Err(p.err(
            line,
            None,
            format!("language={language:?}: hie reads ObjectScript-language DTLs only"),
        ));
    }
    let create = p.attr(&e, "create", line)?.unwrap_or_default();
    let create = Create::parse(&create).ok_or_else(|| {
        p.err(
            line,
            None,
            format!("create={create:?} is none of new, copy, existing"),
        )
    })?;
    let mut t = Transform {
        name: class.to_owned(),
        source_class: p.attr(&e, "sourceClass", line)?.unwrap_or_default(),
        target_class: p.attr(&e, "targetClass", line)?.unwrap_or_default(),
        source_doc_type: p.attr(&e, "sourceDocType", line)?.unwrap_or_default(),
        target_doc_type: p.attr(&e, "targetDocType", line)?.unwrap_or_default(),
        create,
        generate_empty_segments: false,
        line,
        actions: Vec::new(),
    };
    if !empty {
        t.actions = p.actions("<transform>")?;
    }
    Ok(t)
}

impl<'t> Payload<'t, '_> {
    fn err(&self, line: u32, action: Option<&str>, message: String) -> TransformError {
        TransformError {
            file: self.file.to_path_buf(),
            line,
            class: Some(self.class.to_owned()),
            action: action.map(str::to_owned),
            message,
        }
    }

    fn next(&mut self) -> Result<Next<'t>, TransformError> {
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
                    return Err(self.err(line, None, format!("malformed XML: {e}")));
                }
            }
        }
    }

    fn attr(
        &self,
        e: &BytesStart<'_>,
        name: &str,
        line: u32,
    ) -> Result<Option<String>, TransformError> {
        let el = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        attr(e, name).map_err(|m| self.err(line, Some(&el), m))
    }

    fn required(
        &self,
        e: &BytesStart<'_>,
        name: &str,
        line: u32,
    ) -> Result<String, TransformError> {
        self.attr(e, name, line)?.ok_or_else(|| {
            let el = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            self.err(line, Some(&el), format!("<{el}> has no {name} attribute"))
        })
    }

    fn known_attrs(
        &self,
        e: &BytesStart<'_>,
        known: &[&str],
        line: u32,
    ) -> Result<(), TransformError> {
        let el = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        for a in e.attributes() {
            let a =
                a.map_err(|err| self.err(line, Some(&el), format!("malformed attribute: {err}")))?;
            let key = String::from_utf8_lossy(a.key.as_ref());
            // `disabled` and `expanded` are the DTL editor's; `disabled` changes the run.
            if !known.contains(&key.as_ref()) && key != "expanded" {
                return Err(self.err(
                    line,
                    Some(&el),
                    format!("attribute {key} of <{el}> is not one hie knows"),
                ));
            }
        }
        Ok(())
    }

    fn skip(&mut self, empty: bool) -> Result<(), TransformError> {
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

    /// The actions up to the end tag of the element just opened.
    fn actions(&mut self, parent: &str) -> Result<Vec<Action>, TransformError> {
        let mut out = Vec::new();
        loop {
            let (e, empty, line) = match self.next()? {
                Next::Open(e, empty, line) => (e.into_owned(), empty, line),
                Next::Close => return Ok(out),
            };
            if matches!(e.name().as_ref(), b"annotation" | b"comment") {
                self.skip(empty)?;
                continue;
            }
            out.push(self.action(&e, empty, line, parent)?);
        }
    }

    fn children(&mut self, empty: bool, parent: &str) -> Result<Vec<Action>, TransformError> {
        if empty {
            Ok(Vec::new())
        } else {
            self.actions(parent)
        }
    }

    fn action(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        line: u32,
        parent: &str,
    ) -> Result<Action, TransformError> {
        let action = match e.name().as_ref() {
            b"assign" => {
                self.known_attrs(e, &["property", "value", "action", "key"], line)?;
                let kind = self.attr(e, "action", line)?.unwrap_or_default();
                let kind = AssignKind::parse(&kind).ok_or_else(|| {
                    self.err(
                        line,
                        Some("assign"),
                        format!("action={kind:?} is none of set, clear, remove, append, insert"),
                    )
                })?;
                Action::Assign {
                    property: self.required(e, "property", line)?,
                    value: self.attr(e, "value", line)?.unwrap_or_default(),
                    kind,
                    key: self.attr(e, "key", line)?.unwrap_or_default(),
                    line,
                }
            }
            b"if" => {
                self.known_attrs(e, &["condition"], line)?;
                let condition = self.required(e, "condition", line)?;
                let (mut then, mut otherwise) = (Vec::new(), Vec::new());
                if !empty {
                    while let Next::Open(c, c_empty, c_line) = self.next()? {
                        match c.name().as_ref() {
                            b"true" => then = self.children(c_empty, "<true>")?,
                            b"false" => otherwise = self.children(c_empty, "<false>")?,
                            b"annotation" | b"comment" => self.skip(c_empty)?,
                            other => {
                                let other = String::from_utf8_lossy(other).into_owned();
                                return Err(self.err(
                                    c_line,
                                    Some("if"),
                                    format!("element <{other}> in <if> is none of true, false"),
                                ));
                            }
                        }
                    }
                }
                return Ok(Action::If {
                    condition,
                    then,
                    otherwise,
                    line,
                });
            }
            b"foreach" => {
                self.known_attrs(e, &["property", "key", "unload"], line)?;
                let property = self.required(e, "property", line)?;
                let key = self.required(e, "key", line)?;
                let actions = self.children(empty, "<foreach>")?;
                return Ok(Action::Foreach {
                    property,
                    key,
                    actions,
                    line,
                });
            }
            b"switch" => {
                self.known_attrs(e, &[], line)?;
                let (mut cases, mut default) = (Vec::new(), Vec::new());
                if !empty {
                    while let Next::Open(c, c_empty, c_line) = self.next()? {
                        match c.name().as_ref() {
                            b"case" => {
                                self.known_attrs(&c, &["condition"], c_line)?;
                                let cond = self.required(&c, "condition", c_line)?;
                                let body = self.children(c_empty, "<case>")?;
                                cases.push((cond, c_line, body));
                            }
                            b"default" => default = self.children(c_empty, "<default>")?,
                            b"annotation" | b"comment" => self.skip(c_empty)?,
                            other => {
                                let other = String::from_utf8_lossy(other).into_owned();
                                return Err(self.err(
                                    c_line,
                                    Some("switch"),
                                    format!(
                                        "element <{other}> in <switch> is none of case, default"
                                    ),
                                ));
                            }
                        }
                    }
                }
                return Ok(Action::Switch {
                    cases,
                    default,
                    line,
                });
            }
            b"group" => {
                self.known_attrs(e, &[], line)?;
                let actions = self.children(empty, "<group>")?;
                return Ok(Action::Group { actions, line });
            }
            b"subtransform" => {
                self.known_attrs(e, &["class", "sourceObj", "targetObj", "aux"], line)?;
                if self
                    .attr(e, "aux", line)?
                    .is_some_and(|a| !a.trim().is_empty())
                {
                    return Err(self.err(
                        line,
                        Some("subtransform"),
                        "aux= passes an object to the subtransform, which hie does not support"
                            .into(),
                    ));
                }
                Action::Subtransform {
                    class: self.required(e, "class", line)?,
                    source_obj: self.required(e, "sourceObj", line)?,
                    target_obj: self.required(e, "targetObj", line)?,
                    line,
                }
            }
            b"trace" => {
                self.known_attrs(e, &["value"], line)?;
                Action::Trace {
                    value: self.required(e, "value", line)?,
                    line,
                }
            }
            b"break" => Action::Break { line },
            b"code" | b"sql" => Action::Code {
                sql: e.name().as_ref() == b"sql",
                line,
            },
            other => {
                let other = String::from_utf8_lossy(other).into_owned();
                return Err(self.err(
                    line,
                    Some(&other),
                    format!("element <{other}> in {parent} is not a DTL action hie knows"),
                ));
            }
        };
        self.skip(empty)?;
        Ok(action)
    }
}
