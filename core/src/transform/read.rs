//! Readers for DTL classes in IRIS's two container forms (`.cls` and `<Export>`, found
//! by [`crate::iris_class`]: `XData DTL`, whose payload is one `<transform>` element,
//! and the class's `GENERATEEMPTYSEGMENTS` parameter), with the payload walked by its
//! [`Cursor`]. An element or attribute hie does not know is an error at its line;
//! `<annotation>` and `<comment>` are skipped; `<code>` and `<sql>` are kept as
//! [`Action::Code`] so loading can report each.

use std::path::Path;

use quick_xml::events::BytesStart;

use super::TransformError;
use super::model::{Action, AssignKind, Create, Transform};
use crate::iris_class::{self, ClassError, Cursor, Form, Next, XDataPayload};

/// The `XData` block of a DTL class, and its payload's root element.
const BLOCK: (&str, &str) = ("DTL", "transform");

/// Reads the DTL class of a `.cls` file.
pub fn read_cls(text: &str, file: &Path) -> Result<Vec<Transform>, TransformError> {
    read(text, file, Form::Cls)
}

/// Reads every DTL class of an `<Export>` file (classes of other kinds are skipped).
pub fn read_export(text: &str, file: &Path) -> Result<Vec<Transform>, TransformError> {
    read(text, file, Form::Export)
}

fn read(text: &str, file: &Path, form: Form) -> Result<Vec<Transform>, TransformError> {
    let wrap = |e: ClassError| TransformError {
        file: file.to_path_buf(),
        line: e.line,
        class: e.class,
        action: None,
        message: e.message,
    };
    iris_class::read_classes(text, form, BLOCK, wrap, |p| read_payload(p, file))
}

/// A reader of one payload, `<transform ..> .. </transform>`.
struct Payload<'t, 'f> {
    cursor: Cursor<'t>,
    file: &'f Path,
    class: &'f str,
}

fn read_payload(payload: &XDataPayload<'_>, file: &Path) -> Result<Transform, TransformError> {
    let (text, first_line, class) = (&payload.text, payload.first_line, &payload.class);
    let mut p = Payload {
        cursor: Cursor::new(text, first_line),
        file,
        class,
    };
    let (e, empty, line) = match p.next()? {
        Next::Open(e, empty, line) if e.name().as_ref() == BLOCK.1.as_bytes() => (e, empty, line),
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
        generate_empty_segments: payload.parameter("GENERATEEMPTYSEGMENTS") == Some("1"),
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
        self.cursor
            .next_element()
            .map_err(|(line, m)| self.err(line, None, m))
    }

    fn attr(
        &self,
        e: &BytesStart<'_>,
        name: &str,
        line: u32,
    ) -> Result<Option<String>, TransformError> {
        let el = iris_class::element_name(e);
        iris_class::attr(e, name).map_err(|m| self.err(line, Some(&el), m))
    }

    fn required(
        &self,
        e: &BytesStart<'_>,
        name: &str,
        line: u32,
    ) -> Result<String, TransformError> {
        let el = iris_class::element_name(e);
        iris_class::required(e, name).map_err(|m| self.err(line, Some(&el), m))
    }

    fn known_attrs(
        &self,
        e: &BytesStart<'_>,
        known: &[&str],
        line: u32,
    ) -> Result<(), TransformError> {
        let el = iris_class::element_name(e);
        // `disabled` and `expanded` are the DTL editor's; `disabled` changes the run.
        iris_class::known_attrs(e, known, &["expanded"]).map_err(|m| self.err(line, Some(&el), m))
    }

    fn skip(&mut self, empty: bool) -> Result<(), TransformError> {
        self.cursor
            .skip(empty)
            .map_err(|(line, m)| self.err(line, None, m))
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
