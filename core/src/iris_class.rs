//! IRIS class files as the rule and DTL readers meet them: finding a class's `XData`
//! payload in its two container forms, and the XML cursor both payload readers walk.
//!
//! ```text
//! .cls (UDL class text)                         Export XML
//! Class P.C Extends ..                          <Export generator="Cache|IRIS" ..>
//! {                                             <Class name="P.C"> ..
//! Parameter NAME = 1;                           <Parameter name="NAME"><Default>1</Default>
//! XData BLOCK [ XMLNamespace = .. ]             </Parameter>
//! {                                             <XData name="BLOCK">
//! <root ..> .. </root>                          <Data><![CDATA[ <root ..> ]]></Data>
//! }                                             </XData></Class> (more classes) </Export>
//! }
//! ```
//!
//! The `.cls` reader never matches braces (HL7 paths hold `{}`): it takes the text from the
//! first `<root` after `XData BLOCK` to the first `</root>`. The Export reader joins the
//! CDATA sections of `<Data>` (a payload holding `]]>` is split as `]]]]><![CDATA[>`).
//! Lines are those of the file read: a payload carries the line it starts on, and
//! [`Cursor`] numbers its elements from there. Errors are [`ClassError`]s (line and
//! message), which each reader turns into its own error with the file and class.
//!
//! Used by [`crate::rules::read`] (`XData RuleDefinition`, `<ruleDefinition>`) and
//! [`crate::transform::read`] (`XData DTL`, `<transform>`).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use crate::config::iris::Lines;

/// What is wrong in a class file, and where: the readers add the file and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassError {
    /// 1-based line in the file read.
    pub line: u32,
    /// The class, when the error is inside one.
    pub class: Option<String>,
    pub message: String,
}

/// One class's `XData` payload: the root element's text, where it starts, and the
/// class's parameters (`Parameter NAME = VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XDataPayload<'t> {
    pub class: String,
    /// `<root ..> .. </root>`, leading white space trimmed.
    pub text: Cow<'t, str>,
    /// The line `text` starts on.
    pub first_line: u32,
    /// The class's parameters and their values, in file order (in an Export, those
    /// written before the payload).
    pub parameters: Vec<(String, String)>,
}

impl XDataPayload<'_> {
    /// The value of parameter `name`, if the class sets it.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The container form of a class file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// UDL class text: one class.
    Cls,
    /// An `<Export>` of any number of classes.
    Export,
}

/// Every class of `text` (in `form`) that has an `XData {xdata}` block (of root element
/// `<{root}>`), each payload read by `read`; an error of the container is made the
/// reader's own by `wrap`.
pub fn read_classes<T, E>(
    text: &str,
    form: Form,
    (xdata, root): (&str, &str),
    wrap: impl Fn(ClassError) -> E,
    read: impl FnMut(&XDataPayload<'_>) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    let payloads = match form {
        Form::Cls => read_cls(text, xdata, root).map(|p| vec![p]),
        Form::Export => read_export(text, xdata),
    };
    payloads.map_err(wrap)?.iter().map(read).collect()
}

/// The class name of `Class NAME Extends ..` at the start of a line.
pub fn cls_class_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("Class ")?;
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// The payload of `XData {xdata}` (its `<{root}>` element) in the `.cls` text of one class.
pub fn read_cls<'t>(
    text: &'t str,
    xdata: &str,
    root: &str,
) -> Result<XDataPayload<'t>, ClassError> {
    let lines = Lines::new(text, 1);
    let class = cls_class_name(text).ok_or_else(|| ClassError {
        line: 1,
        class: None,
        message: "no `Class NAME` declaration in the file".into(),
    })?;
    let err = |pos: usize, message: String| ClassError {
        line: lines.line(pos as u64),
        class: Some(class.clone()),
        message,
    };
    let Some(at) = text.find(&format!("XData {xdata}")) else {
        return Err(err(0, format!("no `XData {xdata}` block in the class")));
    };
    let Some(start) = text[at..].find(&format!("<{root}")).map(|i| at + i) else {
        return Err(err(at, format!("no <{root}> element in XData {xdata}")));
    };
    let close = format!("</{root}>");
    let Some(end) = text[start..].find(&close).map(|i| start + i + close.len()) else {
        return Err(err(start, format!("<{root}> has no {close} end tag")));
    };
    Ok(XDataPayload {
        first_line: lines.line(start as u64),
        text: Cow::Borrowed(&text[start..end]),
        parameters: cls_parameters(text),
        class,
    })
}

/// `Parameter NAME = VALUE;` lines, the value unquoted.
fn cls_parameters(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.trim().strip_prefix("Parameter ")?.split_once('=')?;
            let value = value.trim().trim_end_matches(';').trim().trim_matches('"');
            Some((name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// Every class's `XData {xdata}` payload in an `<Export>` file (classes without one are
/// skipped), in file order.
pub fn read_export<'t>(text: &'t str, xdata: &str) -> Result<Vec<XDataPayload<'t>>, ClassError> {
    let lines = Lines::new(text, 1);
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut class: Option<String> = None;
    let mut in_xdata = false;
    let mut parameter: Option<String> = None;
    let mut parameters = Vec::new();
    loop {
        let pos = reader.buffer_position();
        let fail = |class: &Option<String>, message: String| ClassError {
            line: lines.line(pos),
            class: class.clone(),
            message,
        };
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"Class" => {
                    class = attr(&e, "name").map_err(|m| fail(&class, m))?;
                    parameters.clear();
                }
                b"Parameter" => parameter = attr(&e, "name").map_err(|m| fail(&class, m))?,
                b"Default" if parameter.is_some() => {
                    let value = read_text(&mut reader).map_err(|m| fail(&class, m))?;
                    let name = parameter.clone().unwrap_or_default();
                    parameters.push((name, value.trim().to_owned()));
                }
                b"XData" => {
                    in_xdata =
                        attr(&e, "name").map_err(|m| fail(&class, m))?.as_deref() == Some(xdata)
                }
                b"Data" if in_xdata => {
                    let first_line = lines.line(reader.buffer_position());
                    let payload = read_text(&mut reader).map_err(|m| fail(&class, m))?;
                    let body = payload.trim_start();
                    let skipped = &payload[..payload.len() - body.len()];
                    out.push(XDataPayload {
                        class: class.clone().unwrap_or_default(),
                        first_line: first_line + skipped.matches('\n').count() as u32,
                        text: Cow::Owned(body.to_owned()),
                        parameters: parameters.clone(),
                    });
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.name().as_ref() == b"XData" => in_xdata = false,
            Ok(Event::End(e)) if e.name().as_ref() == b"Parameter" => parameter = None,
            Ok(Event::End(e)) if e.name().as_ref() == b"Class" => class = None,
            Ok(Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(fail(&class, format!("malformed XML: {e}"))),
        }
    }
}

/// Element text up to the end tag of the element just opened: text and CDATA joined.
fn read_text(reader: &mut Reader<&[u8]>) -> Result<String, String> {
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
pub fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
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

/// The unescaped value of attribute `name`, which the element must have.
pub fn required(e: &BytesStart<'_>, name: &str) -> Result<String, String> {
    attr(e, name)?.ok_or_else(|| format!("<{}> has no {name} attribute", element_name(e)))
}

/// An attribute neither in `known` nor in `ignored` is an error (it would change what the
/// class does).
pub fn known_attrs(e: &BytesStart<'_>, known: &[&str], ignored: &[&str]) -> Result<(), String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("malformed attribute: {err}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref());
        if !known.contains(&key.as_ref()) && !ignored.contains(&key.as_ref()) {
            let el = element_name(e);
            return Err(format!("attribute {key} of <{el}> is not one hie knows"));
        }
    }
    Ok(())
}

/// The element's name, for messages.
pub fn element_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// The next element event of a payload, with its line.
#[derive(Debug)]
pub enum Next<'t> {
    /// A start tag (`false`) or an empty-element tag (`true`), at its line.
    Open(BytesStart<'t>, bool, u32),
    /// An end tag, or the end of the payload.
    Close,
}

/// A walk over one payload's elements (text, comments and CDATA between are skipped),
/// numbering lines as the file does.
#[derive(Debug)]
pub struct Cursor<'t> {
    reader: Reader<&'t [u8]>,
    lines: Lines,
}

impl<'t> Cursor<'t> {
    /// A cursor over `text`, whose first line is `first_line` of its file.
    pub fn new(text: &'t str, first_line: u32) -> Cursor<'t> {
        Cursor {
            reader: Reader::from_str(text),
            lines: Lines::new(text, first_line),
        }
    }

    /// The next start, empty or end tag; an error is (line, message).
    pub fn next_element(&mut self) -> Result<Next<'t>, (u32, String)> {
        loop {
            let line = self.lines.line(self.reader.buffer_position());
            match self.reader.read_event() {
                Ok(Event::Start(e)) => return Ok(Next::Open(e, false, line)),
                Ok(Event::Empty(e)) => return Ok(Next::Open(e, true, line)),
                Ok(Event::End(_)) | Ok(Event::Eof) => return Ok(Next::Close),
                Ok(_) => {}
                Err(e) => {
                    let line = self.lines.line(self.reader.error_position());
                    return Err((line, format!("malformed XML: {e}")));
                }
            }
        }
    }

    /// Skips the children of the element just opened (`empty`: it has none), for an
    /// element hie ignores (`comment`, `annotation`).
    pub fn skip(&mut self, empty: bool) -> Result<(), (u32, String)> {
        if empty {
            return Ok(());
        }
        let mut depth = 1usize;
        while depth > 0 {
            match self.next_element()? {
                Next::Open(_, false, _) => depth += 1,
                Next::Open(_, true, _) => {}
                Next::Close => depth -= 1,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLS: &str = "/// doc\nClass P.C Extends Ens.DataTransformDTL\n{\n\
        Parameter IGNOREMISSINGSOURCE = 1;\n\
        Parameter REPORTERRORS = \"x\";\n\
        XData DTL [ XMLNamespace = \"http://www.intersystems.com/dtl\" ]\n{\n\
        <transform a=\"{b}\">\n<assign/>\n</transform>\n}\n}\n";

    #[test]
    fn a_cls_payload_is_cut_at_its_root_element_with_its_line_and_parameters() {
        let p = read_cls(CLS, "DTL", "transform").unwrap();
        assert_eq!(p.class, "P.C");
        assert_eq!(p.first_line, 8);
        assert_eq!(p.text, "<transform a=\"{b}\">\n<assign/>\n</transform>");
        assert_eq!(p.parameter("IGNOREMISSINGSOURCE"), Some("1"));
        assert_eq!(p.parameter("REPORTERRORS"), Some("x"));
        assert_eq!(p.parameter("OTHER"), None);
    }

    #[test]
    fn a_cls_without_the_block_its_root_or_its_end_tag_is_an_error_at_its_line() {
        let e = read_cls("no class here", "DTL", "transform").unwrap_err();
        assert_eq!((e.line, e.class), (1, None));
        let e = read_cls(CLS, "RuleDefinition", "ruleDefinition").unwrap_err();
        assert_eq!(e.message, "no `XData RuleDefinition` block in the class");
        let e = read_cls(&CLS.replace("<transform", "<x"), "DTL", "transform").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (6, "no <transform> element in XData DTL")
        );
        let e = read_cls(&CLS.replace("</transform>", ""), "DTL", "transform").unwrap_err();
        assert_eq!(e.line, 8);
        assert_eq!(e.class.as_deref(), Some("P.C"));
    }

    #[test]
    fn an_export_yields_each_class_payload_with_its_own_parameters() {
        let text = "<Export>\n<Class name=\"A\">\n\
            <Parameter name=\"P\">\n<Default>1</Default>\n</Parameter>\n\
            <XData name=\"DTL\">\n<Data><![CDATA[\n<transform>]]]]><![CDATA[></transform>]]></Data>\n</XData>\n</Class>\n\
            <Class name=\"B\"><XData name=\"Other\"><Data>x</Data></XData></Class>\n\
            <Class name=\"C\"><XData name=\"DTL\"><Data>&lt;transform/&gt;</Data></XData></Class>\n\
            </Export>\n";
        let found = read_export(text, "DTL").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].class, "A");
        assert_eq!(found[0].text, "<transform>]]></transform>");
        assert_eq!(found[0].first_line, 8);
        assert_eq!(found[0].parameter("P"), Some("1"));
        assert_eq!(found[1].class, "C");
        assert_eq!(found[1].text, "<transform/>");
        assert_eq!(found[1].parameter("P"), None, "parameters are per class");
    }

    #[test]
    fn a_malformed_export_is_an_error_at_its_line_naming_the_class() {
        let text = "<Export>\n<Class name=\"A\">\n<XData name=\"DTL\"><Data>&bogus;</Data>\n";
        let e = read_export(text, "DTL").unwrap_err();
        assert_eq!(e.class.as_deref(), Some("A"));
        assert!(e.message.contains("unknown entity &bogus;"), "{e:?}");
    }

    #[test]
    fn the_cursor_numbers_elements_from_the_payload_line_and_skips_ignored_ones() {
        let mut c = Cursor::new("<a>\n<comment><b/></comment>\n<c x=\"1\"/></a>", 10);
        let Ok(Next::Open(a, false, 10)) = c.next_element() else {
            panic!("<a> at line 10")
        };
        assert_eq!(element_name(&a), "a");
        let Ok(Next::Open(_, false, 11)) = c.next_element() else {
            panic!("<comment> at line 11")
        };
        c.skip(false).unwrap();
        let Ok(Next::Open(e, true, 12)) = c.next_element() else {
            panic!("<c/> at line 12")
        };
        assert_eq!(attr(&e, "x").unwrap().as_deref(), Some("1"));
        assert_eq!(required(&e, "y").unwrap_err(), "<c> has no y attribute");
        assert!(known_attrs(&e, &["x"], &[]).is_ok());
        assert_eq!(
            known_attrs(&e, &[], &[]).unwrap_err(),
            "attribute x of <c> is not one hie knows"
        );
        assert!(known_attrs(&e, &[], &["x"]).is_ok());
        assert!(matches!(c.next_element(), Ok(Next::Close)));
    }
}
