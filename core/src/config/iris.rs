//! IRIS production definitions: reading the three container forms with `quick-xml`, and
//! writing a bare `<Production>` document or a `.cls` class.
//!
//! ```text
//! .cls (UDL class text)                       Export XML
//! Class P Extends Ens.Production [..]         <?xml version="1.0" encoding="UTF-8"?>
//! {                                           <Export generator="Cache|IRIS" version="..">
//! ClassMethod OnStart(..) { .. }  (ignored)   <Class name="P"> .. <XData name="ProductionDefinition">
//! XData ProductionDefinition                  <Data><![CDATA[ <Production ..> .. </Production> ]]></Data>
//! {                                           </XData></Class></Export>
//! <Production Name="P" ..> .. </Production>
//! }                                           bare: <Production Name="P" ..> .. </Production>
//! }
//!
//! payload:
//! <Production Name= [TestingEnabled=] [LogGeneralTraceEvents=]>
//!   <Description>text</Description> <ActorPoolSize>n</ActorPoolSize>
//!   <Item Name= ClassName= [Category= PoolSize= Enabled= Foreground= Comment= LogTraceEvents= Schedule=]>
//!     <Setting Target="Host|Adapter" Name="X">value</Setting>*
//!   </Item>*
//! </Production>
//! ```
//!
//! Invariants and limits:
//! - The `.cls` reader never matches braces (HL7 paths contain them): it takes the text from
//!   the first `<Production` after `XData ProductionDefinition` to the first `</Production>`.
//! - Lines are 1-based lines of the file read: a position in the payload is counted in
//!   newlines and offset by the line where the payload starts (the XData block for `.cls`,
//!   the `<Data>` element for Export; CDATA split markers hold no newlines, so the mapping
//!   stays exact when a value is split across CDATA sections).
//! - Only the XML predefined entities and character references are decoded.
//! - An attribute hie does not read (on `<Production>`, `<Item>` or `<Setting>`) is a
//!   warning at its line, with the closest known name when it looks like a slip.
//! - The writer emits every item attribute, then Host settings, then Adapter settings, each
//!   sorted by name; newlines in attributes are written as `&#10;` so they survive XML
//!   attribute normalisation. Engine settings have no IRIS form and are not written.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::escape::{escape, partial_escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};

use super::Diagnostic;
use super::model::{
    EngineSettings, Item, POOL_SIZE_MAX, Production, SettingTarget, SettingValue, SourceLocation,
};

/// A production read from a file, with what reading found. Errors here (a bad attribute
/// value, a setting without a name) do not stop reading, so validation can run too and all
/// errors are reported together.
#[derive(Debug)]
pub struct Parsed {
    /// The production as written.
    pub production: Production,
    /// Warnings of reading (ignored elements, settings given twice).
    pub warnings: Vec<Diagnostic>,
    /// Errors of reading.
    pub errors: Vec<Diagnostic>,
}

/// Result of reading a file: what was read, or the error that stopped reading (XML or TOML
/// syntax: reading stops at the first one).
pub type ReadResult = Result<Parsed, Vec<Diagnostic>>;

/// 1-based line numbers of byte positions in a text, offset by the line the text starts on.
/// Built once per text (one pass), then each look-up is a binary search: reading a file of
/// n items stays linear-logarithmic, not quadratic.
#[derive(Debug)]
pub struct Lines {
    newlines: Vec<usize>,
    first_line: u32,
}

impl Lines {
    /// The newline index of `text`, whose first line is `first_line`.
    pub fn new(text: &str, first_line: u32) -> Lines {
        Lines {
            newlines: memchr_newlines(text),
            first_line,
        }
    }

    /// The line of byte `pos`.
    pub fn line(&self, pos: u64) -> u32 {
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        let before = self.newlines.partition_point(|&nl| nl < pos);
        self.first_line + u32::try_from(before).unwrap_or(u32::MAX - self.first_line)
    }
}

fn memchr_newlines(text: &str) -> Vec<usize> {
    text.bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i)
        .collect()
}

/// 1-based line of byte `pos` in `text` (one look-up; build [`Lines`] for many).
pub fn line_of(text: &str, pos: usize) -> u32 {
    Lines::new(text, 1).line(pos as u64)
}

/// Reads a `.cls` class holding `XData ProductionDefinition`.
pub fn read_cls(text: &str, file: &Path) -> ReadResult {
    let fail = |line: u32, message: String| {
        Err(vec![Diagnostic {
            file: file.to_path_buf(),
            line,
            item: None,
            message,
        }])
    };
    let Some(xdata) = text.find("XData ProductionDefinition") else {
        return fail(
            1,
            "no `XData ProductionDefinition` block in the class".into(),
        );
    };
    let Some(start) = find_element_start(text, xdata, "<Production") else {
        return fail(
            line_of(text, xdata),
            "no <Production> element in XData ProductionDefinition".into(),
        );
    };
    let close = "</Production>";
    let Some(end) = text[start..].find(close).map(|i| start + i + close.len()) else {
        return fail(
            line_of(text, start),
            "<Production> has no </Production> end tag".into(),
        );
    };
    read_payload(&text[start..end], line_of(text, start), file)
}

/// Position of `<name` at or after `from`, where `<name` is a whole tag name.
fn find_element_start(text: &str, from: usize, open: &str) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text[at..].find(open) {
        let pos = at + i;
        let next = text.as_bytes().get(pos + open.len()).copied();
        if matches!(next, Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')) {
            return Some(pos);
        }
        at = pos + open.len();
    }
    None
}

/// Reads an XML file: an `<Export>` holding a production class, or a bare `<Production>`.
pub fn read_xml(text: &str, file: &Path) -> ReadResult {
    let lines = Lines::new(text, 1);
    let mut reader = Reader::from_str(text);
    loop {
        let pos = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return match e.name().as_ref() {
                    b"Production" => read_payload(text, 1, file),
                    b"Export" => read_export(text, file),
                    other => Err(vec![diag(
                        file,
                        lines.line(pos),
                        None,
                        format!(
                            "root element <{}> is neither <Export> nor <Production>",
                            String::from_utf8_lossy(other)
                        ),
                    )]),
                };
            }
            Ok(Event::Eof) => {
                return Err(vec![diag(
                    file,
                    lines.line(pos),
                    None,
                    "no XML element in the file".into(),
                )]);
            }
            Ok(_) => {}
            Err(e) => return Err(vec![xml_error(file, &lines, &reader, &e)]),
        }
    }
}

fn read_export(text: &str, file: &Path) -> ReadResult {
    let lines = Lines::new(text, 1);
    let mut reader = Reader::from_str(text);
    let mut in_production_xdata = false;
    loop {
        let pos = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"XData" => {
                    in_production_xdata = attribute(&e, "name").ok().flatten().as_deref()
                        == Some("ProductionDefinition");
                }
                b"Data" if in_production_xdata => {
                    let first_line = lines.line(reader.buffer_position());
                    let payload = read_text(&mut reader, file, &lines)?;
                    return read_payload(&payload, first_line, file);
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.name().as_ref() == b"XData" => in_production_xdata = false,
            Ok(Event::Eof) => {
                return Err(vec![diag(
                    file,
                    lines.line(pos),
                    None,
                    "the export holds no <XData name=\"ProductionDefinition\"> with <Data>".into(),
                )]);
            }
            Ok(_) => {}
            Err(e) => return Err(vec![xml_error(file, &lines, &reader, &e)]),
        }
    }
}

fn diag(file: &Path, line: u32, item: Option<&str>, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line,
        item: item.map(str::to_owned),
        message,
    }
}

fn xml_error(
    file: &Path,
    lines: &Lines,
    reader: &Reader<&[u8]>,
    e: &quick_xml::Error,
) -> Diagnostic {
    diag(
        file,
        lines.line(reader.error_position()),
        None,
        format!("malformed XML: {e}"),
    )
}

/// Reads element text up to the end tag of the element just opened: text, CDATA sections
/// (joined) and entity references. A child element is an error.
fn read_text(
    reader: &mut Reader<&[u8]>,
    file: &Path,
    lines: &Lines,
) -> Result<String, Vec<Diagnostic>> {
    let mut out = String::new();
    loop {
        let pos = reader.buffer_position();
        let bad = |message: String| vec![diag(file, lines.line(pos), None, message)];
        match reader.read_event() {
            Ok(Event::Text(t)) => {
                out.push_str(&t.xml_content().map_err(|e| bad(format!("bad text: {e}")))?)
            }
            Ok(Event::CData(c)) => out.push_str(
                &c.xml_content()
                    .map_err(|e| bad(format!("bad CDATA: {e}")))?,
            ),
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| bad(format!("bad entity: {e}")))?;
                match r.resolve_char_ref() {
                    Ok(Some(c)) => out.push(c),
                    Ok(None) => match resolve_predefined_entity(&name) {
                        Some(s) => out.push_str(s),
                        None => return Err(bad(format!("unknown entity &{name};"))),
                    },
                    Err(e) => return Err(bad(format!("bad character reference &{name};: {e}"))),
                }
            }
            Ok(Event::Comment(_)) | Ok(Event::PI(_)) => {}
            Ok(Event::End(_)) => return Ok(out),
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return Err(bad(format!(
                    "unexpected element <{}> inside a text value",
                    String::from_utf8_lossy(e.name().as_ref())
                )));
            }
            Ok(Event::Eof) => return Err(bad("end of file inside an element".into())),
            Ok(Event::Decl(_)) | Ok(Event::DocType(_)) => {
                return Err(bad("XML declaration inside an element".into()));
            }
            Err(e) => return Err(vec![xml_error(file, lines, reader, &e)]),
        }
    }
}

/// The unescaped value of attribute `name`, `Ok(None)` when absent.
fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("malformed attribute: {err}"))?;
        if attr.key.as_ref() == name.as_bytes() {
            let value = attr
                .unescape_value()
                .map_err(|err| format!("attribute {name}: {err}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Accumulates diagnostics while reading the payload.
struct Payload<'a> {
    file: &'a Path,
    lines: Lines,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Payload<'_> {
    fn error(&mut self, line: u32, item: Option<&str>, message: String) {
        self.errors.push(diag(self.file, line, item, message));
    }

    fn warn(&mut self, line: u32, item: Option<&str>, message: String) {
        self.warnings.push(diag(self.file, line, item, message));
    }

    fn attr(
        &mut self,
        e: &BytesStart<'_>,
        name: &str,
        line: u32,
        item: Option<&str>,
    ) -> Option<String> {
        match attribute(e, name) {
            Ok(v) => v,
            Err(why) => {
                self.error(line, item, why);
                None
            }
        }
    }

    /// Warns about each attribute of `e` (element `<element>`) not in `known`: hie does not
    /// read it, so a misspelt one (`Enabld="false"`) must not pass silently.
    fn unknown_attrs(
        &mut self,
        e: &BytesStart<'_>,
        element: &str,
        known: &[&str],
        line: u32,
        item: Option<&str>,
    ) {
        for attr in e.attributes().flatten() {
            let name = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            if known.contains(&name.as_str()) || name.starts_with("xmlns") {
                continue;
            }
            let hint = super::suggest::did_you_mean(&name, known.iter().copied());
            self.warn(
                line,
                item,
                format!("attribute {name} of <{element}> is ignored: hie does not read it{hint}"),
            );
        }
    }

    fn bool_attr(
        &mut self,
        e: &BytesStart<'_>,
        name: &str,
        default: bool,
        line: u32,
        item: Option<&str>,
    ) -> bool {
        match self.attr(e, name, line, item).as_deref() {
            None | Some("") => default,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) => {
                self.error(
                    line,
                    item,
                    format!("attribute {name}={v:?} is not true or false"),
                );
                default
            }
        }
    }

    fn pool_size(&mut self, text: &str, what: &str, line: u32, item: Option<&str>) -> Option<u32> {
        match text.trim().parse::<u32>() {
            Ok(n) if n <= POOL_SIZE_MAX => Some(n),
            _ => {
                self.error(
                    line,
                    item,
                    format!("{what} {text:?} is not a number in 0..={POOL_SIZE_MAX}"),
                );
                None
            }
        }
    }
}

/// Reads a `<Production>` payload that starts on line `first_line` of `file`.
fn read_payload(text: &str, first_line: u32, file: &Path) -> ReadResult {
    let mut p = Payload {
        file,
        lines: Lines::new(text, first_line),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut reader = Reader::from_str(text);
    let mut production: Option<Production> = None;
    loop {
        let pos = reader.buffer_position();
        let line = p.lines.line(pos);
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == b"Production" && production.is_none() => {
                let mut prod = production_attrs(&mut p, &e, line);
                read_production_children(&mut p, &mut reader, &mut prod)?;
                production = Some(prod);
            }
            Ok(Event::Empty(e)) if e.name().as_ref() == b"Production" && production.is_none() => {
                production = Some(production_attrs(&mut p, &e, line));
            }
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                return Err(vec![diag(
                    file,
                    line,
                    None,
                    format!("unexpected element <{name}> outside <Production>"),
                )]);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(vec![xml_error(file, &p.lines, &reader, &e)]),
        }
    }
    let Some(production) = production else {
        return Err(vec![diag(
            file,
            first_line,
            None,
            "no <Production> element".into(),
        )]);
    };
    Ok(Parsed {
        production,
        warnings: p.warnings,
        errors: p.errors,
    })
}

/// Attributes of `<Production>` that hie reads.
const PRODUCTION_ATTRIBUTES: &[&str] = &["Name", "TestingEnabled", "LogGeneralTraceEvents"];

/// Attributes of `<Item>` that hie reads.
const ITEM_ATTRIBUTES: &[&str] = &[
    "Name",
    "Category",
    "ClassName",
    "PoolSize",
    "Enabled",
    "Foreground",
    "Comment",
    "LogTraceEvents",
    "Schedule",
];

fn production_attrs(p: &mut Payload<'_>, e: &BytesStart<'_>, line: u32) -> Production {
    let name = p.attr(e, "Name", line, None).unwrap_or_default();
    if name.trim().is_empty() {
        p.error(line, None, "<Production> has no Name".into());
    }
    p.unknown_attrs(e, "Production", PRODUCTION_ATTRIBUTES, line, None);
    let testing_enabled = p
        .attr(e, "TestingEnabled", line, None)
        .map(|_| p.bool_attr(e, "TestingEnabled", false, line, None));
    let log_general_trace_events = p
        .attr(e, "LogGeneralTraceEvents", line, None)
        .map(|_| p.bool_attr(e, "LogGeneralTraceEvents", false, line, None));
    Production {
        name,
        description: String::new(),
        testing_enabled,
        log_general_trace_events,
        actor_pool_size: None,
        engine: EngineSettings::default(),
        items: Vec::new(),
    }
}

fn read_production_children(
    p: &mut Payload<'_>,
    reader: &mut Reader<&[u8]>,
    prod: &mut Production,
) -> Result<(), Vec<Diagnostic>> {
    loop {
        let pos = reader.buffer_position();
        let line = p.lines.line(pos);
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.name().as_ref() {
                b"Description" => prod.description = read_text(reader, p.file, &p.lines)?,
                b"ActorPoolSize" => {
                    let text = read_text(reader, p.file, &p.lines)?;
                    prod.actor_pool_size = p.pool_size(&text, "ActorPoolSize", line, None);
                }
                b"Item" => {
                    let mut item = item_attrs(p, &e, line);
                    read_item_children(p, reader, &mut item)?;
                    prod.items.push(item);
                }
                other => {
                    let name = String::from_utf8_lossy(other).into_owned();
                    p.warn(line, None, format!("element <{name}> in <Production> is not an IRIS production element; ignored"));
                    reader
                        .read_to_end(e.name())
                        .map_err(|err| vec![xml_error(p.file, &p.lines, reader, &err)])?;
                }
            },
            Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"Item" => prod.items.push(item_attrs(p, &e, line)),
                b"Description" | b"ActorPoolSize" => {}
                other => {
                    let name = String::from_utf8_lossy(other).into_owned();
                    p.warn(line, None, format!("element <{name}> in <Production> is not an IRIS production element; ignored"));
                }
            },
            Ok(Event::End(_)) => return Ok(()),
            Ok(Event::Eof) => {
                return Err(vec![diag(
                    p.file,
                    line,
                    None,
                    "end of file inside <Production>".into(),
                )]);
            }
            Ok(_) => {}
            Err(e) => return Err(vec![xml_error(p.file, &p.lines, reader, &e)]),
        }
    }
}

fn item_attrs(p: &mut Payload<'_>, e: &BytesStart<'_>, line: u32) -> Item {
    // A missing or empty Name or ClassName is reported by validation, with the other errors.
    let name = p.attr(e, "Name", line, None);
    let item_name = name.as_deref();
    let class = p.attr(e, "ClassName", line, item_name);
    let mut item = Item::new(name.clone().unwrap_or_default(), class.unwrap_or_default());
    item.category = p.attr(e, "Category", line, item_name).unwrap_or_default();
    item.comment = p.attr(e, "Comment", line, item_name).unwrap_or_default();
    item.schedule = p.attr(e, "Schedule", line, item_name).unwrap_or_default();
    if let Some(pool) = p
        .attr(e, "PoolSize", line, item_name)
        .filter(|s| !s.is_empty())
    {
        item.pool_size = p.pool_size(&pool, "PoolSize", line, item_name).unwrap_or(1);
    }
    item.enabled = p.bool_attr(e, "Enabled", true, line, item_name);
    item.foreground = p.bool_attr(e, "Foreground", false, line, item_name);
    item.log_trace_events = p.bool_attr(e, "LogTraceEvents", false, line, item_name);
    p.unknown_attrs(e, "Item", ITEM_ATTRIBUTES, line, item_name);
    item.source = SourceLocation {
        file: p.file.to_path_buf(),
        line,
    };
    item
}

fn read_item_children(
    p: &mut Payload<'_>,
    reader: &mut Reader<&[u8]>,
    item: &mut Item,
) -> Result<(), Vec<Diagnostic>> {
    loop {
        let pos = reader.buffer_position();
        let line = p.lines.line(pos);
        match reader.read_event() {
            Ok(Event::Start(e)) if e.name().as_ref() == b"Setting" => {
                let value = read_text(reader, p.file, &p.lines)?;
                setting(p, &e, item, value, line);
            }
            Ok(Event::Empty(e)) if e.name().as_ref() == b"Setting" => {
                setting(p, &e, item, String::new(), line)
            }
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                p.warn(
                    line,
                    Some(&item.name),
                    format!("element <{name}> in <Item> is not a <Setting>; ignored"),
                );
                reader
                    .read_to_end(e.name())
                    .map_err(|err| vec![xml_error(p.file, &p.lines, reader, &err)])?;
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                p.warn(
                    line,
                    Some(&item.name),
                    format!("element <{name}> in <Item> is not a <Setting>; ignored"),
                );
            }
            Ok(Event::End(_)) => return Ok(()),
            Ok(Event::Eof) => {
                return Err(vec![diag(
                    p.file,
                    line,
                    Some(&item.name),
                    "end of file inside <Item>".into(),
                )]);
            }
            Ok(_) => {}
            Err(e) => return Err(vec![xml_error(p.file, &p.lines, reader, &e)]),
        }
    }
}

fn setting(p: &mut Payload<'_>, e: &BytesStart<'_>, item: &mut Item, value: String, line: u32) {
    let item_name = item.name.clone();
    p.unknown_attrs(e, "Setting", &["Target", "Name"], line, Some(&item_name));
    let target = match p.attr(e, "Target", line, Some(&item_name)).as_deref() {
        Some("Host") => SettingTarget::Host,
        Some("Adapter") => SettingTarget::Adapter,
        Some(other) => {
            p.error(
                line,
                Some(&item_name),
                format!("<Setting> Target={other:?} is neither Host nor Adapter"),
            );
            return;
        }
        None => {
            p.error(
                line,
                Some(&item_name),
                "<Setting> has no Target attribute".into(),
            );
            return;
        }
    };
    let Some(name) = p.attr(e, "Name", line, Some(&item_name)) else {
        p.error(
            line,
            Some(&item_name),
            "<Setting> has no Name attribute".into(),
        );
        return;
    };
    let map = match target {
        SettingTarget::Host => &mut item.host_settings,
        SettingTarget::Adapter => &mut item.adapter_settings,
    };
    if let Some(previous) = map.insert(name.clone(), SettingValue { value, line }) {
        p.warn(
            line,
            Some(&item_name),
            format!(
                "setting {} {name} is given twice (line {}); the last one wins",
                target.as_str(),
                previous.line
            ),
        );
    }
}

/// Writes `production` as a bare `<Production>` document (no XML declaration, as IRIS
/// stores it inside XData), ending with a newline.
pub fn to_production_xml(production: &Production) -> String {
    let mut out = String::new();
    out.push_str("<Production Name=\"");
    out.push_str(&attr_escape(&production.name));
    out.push('"');
    if let Some(v) = production.testing_enabled {
        out.push_str(&format!(" TestingEnabled=\"{v}\""));
    }
    if let Some(v) = production.log_general_trace_events {
        out.push_str(&format!(" LogGeneralTraceEvents=\"{v}\""));
    }
    out.push_str(">\n");
    out.push_str(&format!(
        "  <Description>{}</Description>\n",
        partial_escape(production.description.as_str())
    ));
    if let Some(n) = production.actor_pool_size {
        out.push_str(&format!("  <ActorPoolSize>{n}</ActorPoolSize>\n"));
    }
    for item in &production.items {
        write_item(&mut out, item);
    }
    out.push_str("</Production>\n");
    out
}

fn write_item(out: &mut String, item: &Item) {
    out.push_str(&format!(
        "  <Item Name=\"{}\" Category=\"{}\" ClassName=\"{}\" PoolSize=\"{}\" Enabled=\"{}\" \
         Foreground=\"{}\" Comment=\"{}\" LogTraceEvents=\"{}\" Schedule=\"{}\">\n",
        attr_escape(&item.name),
        attr_escape(&item.category),
        attr_escape(&item.class),
        item.pool_size,
        item.enabled,
        item.foreground,
        attr_escape(&item.comment),
        item.log_trace_events,
        attr_escape(&item.schedule),
    ));
    for target in [SettingTarget::Host, SettingTarget::Adapter] {
        for (name, value) in item.raw(target) {
            out.push_str(&format!(
                "    <Setting Target=\"{}\" Name=\"{}\">{}</Setting>\n",
                target.as_str(),
                attr_escape(name),
                partial_escape(value.value.as_str()),
            ));
        }
    }
    out.push_str("  </Item>\n");
}

fn attr_escape(value: &str) -> String {
    escape(value)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

/// Writes `production` as a `.cls` class `Class <Name> Extends Ens.Production`.
pub fn to_cls(production: &Production) -> String {
    format!(
        "Class {} Extends Ens.Production\n{{\n\nXData ProductionDefinition\n{{\n{}}}\n\n}}\n",
        production.name,
        to_production_xml(production)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &str = r#"<Production Name="T" TestingEnabled="true">
  <Description>two
lines</Description>
  <ActorPoolSize>3</ActorPoolSize>
  <Item Name="In" Category="a,b" ClassName="EnsLib.HL7.Service.TCPService" PoolSize="2" Enabled="true" Foreground="false" Comment="x &amp; &apos;y&apos;&#10;z" LogTraceEvents="false" Schedule="">
    <Setting Target="Adapter" Name="Port">2575</Setting>
    <Setting Target="Host" Name="Separators"><![CDATA[|^~\&]]]]><![CDATA[>]]></Setting>
    <Setting Target="Host" Name="TargetConfigNames">A &amp; B</Setting>
  </Item>
</Production>
"#;

    #[test]
    fn bare_production_reads_attributes_settings_and_lines() {
        let Parsed {
            production: p,
            warnings,
            errors,
        } = read_xml(BARE, Path::new("t.xml")).unwrap();
        assert!(errors.is_empty());
        assert!(warnings.is_empty());
        assert_eq!(p.name, "T");
        assert_eq!(p.testing_enabled, Some(true));
        assert_eq!(p.log_general_trace_events, None);
        assert_eq!(p.description, "two\nlines");
        assert_eq!(p.actor_pool_size, Some(3));
        let item = &p.items[0];
        assert_eq!((item.pool_size, item.source.line), (2, 5));
        assert_eq!(item.comment, "x & 'y'\nz");
        assert_eq!(item.raw_value(SettingTarget::Adapter, "Port"), Some("2575"));
        assert_eq!(item.adapter_settings["Port"].line, 6);
        assert_eq!(
            item.raw_value(SettingTarget::Host, "Separators"),
            Some("|^~\\&]]>")
        );
        assert_eq!(
            item.raw_value(SettingTarget::Host, "TargetConfigNames"),
            Some("A & B")
        );
    }

    #[test]
    fn written_xml_reads_back_to_the_same_production() {
        let p = read_xml(BARE, Path::new("t.xml")).unwrap().production;
        let xml = to_production_xml(&p);
        let back = read_xml(&xml, Path::new("u.xml")).unwrap().production;
        assert!(p.same_definition(&back));
        let cls = read_cls(&to_cls(&p), Path::new("u.cls"))
            .unwrap()
            .production;
        assert!(p.same_definition(&cls));
    }

    #[test]
    fn cls_lines_are_offset_by_the_xdata_block_and_braces_are_not_matched() {
        let cls = "Class A.B Extends Ens.Production\n{\nClassMethod X() { }\n\nXData ProductionDefinition\n{\n<Production Name=\"A.B\">\n  <Item Name=\"R\" ClassName=\"EnsLib.HL7.MsgRouter.RoutingEngine\">\n    <Setting Target=\"Host\" Name=\"BusinessRuleName\">{not}}a brace</Setting>\n  </Item>\n</Production>\n}\n}\n";
        let p = read_cls(cls, Path::new("a.cls")).unwrap().production;
        assert_eq!(p.items[0].source.line, 8);
        assert_eq!(p.items[0].host_settings["BusinessRuleName"].line, 9);
        assert_eq!(
            p.items[0].raw_value(SettingTarget::Host, "BusinessRuleName"),
            Some("{not}}a brace")
        );
    }

    #[test]
    fn crlf_class_keeps_lines_and_values_without_carriage_returns() {
        let cls = "Class A Extends Ens.Production\r\n{\r\nXData ProductionDefinition\r\n{\r\n<Production Name=\"A\">\r\n  <Item Name=\"R\" ClassName=\"X\">\r\n    <Setting Target=\"Host\" Name=\"S\">v</Setting>\r\n  </Item>\r\n</Production>\r\n}\r\n}\r\n";
        let p = read_cls(cls, Path::new("a.cls")).unwrap().production;
        assert_eq!(p.items[0].source.line, 6);
        assert_eq!(p.items[0].host_settings["S"].line, 7);
        assert_eq!(p.items[0].raw_value(SettingTarget::Host, "S"), Some("v"));
    }

    #[test]
    fn malformed_xml_is_reported_with_its_line() {
        let bad = "<Production Name=\"P\">\n  <Item Name=\"A\" ClassName=\"X\">\n    <Setting Target=\"Host\" Name=\"B\">1</Settin>\n  </Item>\n</Production>\n";
        let errors = read_xml(bad, Path::new("bad.xml")).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3, "{errors:?}");
        assert!(
            errors[0].message.contains("malformed XML"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn bad_attribute_values_are_errors_that_do_not_stop_reading() {
        let bad = "<Production Name=\"P\">\n<Item Name=\"A\" ClassName=\"X\" Enabled=\"yes\">\n</Item>\n<Item Name=\"B\" ClassName=\"X\" PoolSize=\"two\">\n</Item>\n</Production>";
        let parsed = read_xml(bad, Path::new("bad.xml")).unwrap();
        assert_eq!(parsed.production.items.len(), 2);
        let errors = parsed.errors;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].item.as_deref()), (2, Some("A")));
        assert!(errors[0].message.contains("Enabled"));
        assert_eq!((errors[1].line, errors[1].item.as_deref()), (4, Some("B")));
        assert!(errors[1].message.contains("PoolSize"));
    }

    #[test]
    fn unread_attributes_are_warnings_at_their_line_with_the_name_meant() {
        let text = "<Production Name=\"P\" Testing=\"1\">\n<Item Name=\"A\" ClassName=\"X\" Enabld=\"false\">\n<Setting Target=\"Host\" Name=\"N\" Tagret=\"Host\">v</Setting>\n</Item>\n</Production>";
        let parsed = read_xml(text, Path::new("p.xml")).unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let found: Vec<(u32, &str)> = parsed
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].0 == 1 && found[0].1.contains("Testing of <Production>"));
        assert!(found[1].0 == 2 && found[1].1.contains("(did you mean Enabled?)"));
        assert!(found[2].0 == 3 && found[2].1.contains("(did you mean Target?)"));
    }

    #[test]
    fn cls_without_production_definition_is_an_error() {
        let errors = read_cls(
            "Class A Extends Ens.Rule.Definition\n{\n}\n",
            Path::new("a.cls"),
        )
        .unwrap_err();
        assert!(errors[0].message.contains("ProductionDefinition"));
    }

    #[test]
    fn unknown_root_element_is_an_error() {
        let errors = read_xml("<?xml version=\"1.0\"?>\n<Rules/>", Path::new("a.xml")).unwrap_err();
        assert_eq!(errors[0].line, 2);
    }
}
