//! Lookup tables for `Lookup` and `Exists`: read from IRIS's `<lookupTable>` export form
//! and from TOML, loaded with the rules (hie reads them once, at start; a table edited
//! later is read at the next start).
//!
//! ```text
//! <Export ..> <Document name="T.LUT"> <lookupTable>        [lookup.T]
//!   <entry table="T" key="k">value</entry>                 "k" = "value"
//! </lookupTable> </Document> </Export>  (or <lookupTable> alone)
//! ```

use std::collections::HashMap;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::RuleError;
use crate::config::iris::Lines;

/// Tables by name, each key to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookups {
    tables: HashMap<String, HashMap<String, String>>,
}

impl Lookups {
    /// The table `name`.
    pub fn table(&self, name: &str) -> Option<&HashMap<String, String>> {
        self.tables.get(name)
    }

    /// True when a table of that name was loaded.
    pub fn has(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, table: &str, key: &str, value: &str) {
        self.tables
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
    }

    /// Reads the entries of an XML file (none when it holds no `<lookupTable>`).
    pub fn read_xml(&mut self, text: &str, file: &Path) -> Result<usize, RuleError> {
        let lines = Lines::new(text, 1);
        let mut reader = Reader::from_str(text);
        let mut in_table = false;
        let mut count = 0;
        loop {
            let pos = reader.buffer_position();
            let err = |message: String| RuleError {
                file: file.to_path_buf(),
                line: lines.line(pos),
                class: None,
                rule: None,
                message,
            };
            match reader.read_event() {
                Ok(Event::Start(e)) if e.name().as_ref() == b"lookupTable" => in_table = true,
                Ok(Event::End(e)) if e.name().as_ref() == b"lookupTable" => in_table = false,
                Ok(ev @ (Event::Start(_) | Event::Empty(_))) if in_table => {
                    let (e, empty) = match ev {
                        Event::Start(e) => (e, false),
                        Event::Empty(e) => (e, true),
                        _ => unreachable!("matched above"),
                    };
                    if e.name().as_ref() != b"entry" {
                        continue;
                    }
                    let mut table = None;
                    let mut key = None;
                    for a in e.attributes() {
                        let a = a.map_err(|x| err(format!("malformed attribute: {x}")))?;
                        let v = a
                            .unescape_value()
                            .map_err(|x| err(x.to_string()))?
                            .into_owned();
                        match a.key.as_ref() {
                            b"table" => table = Some(v),
                            b"key" => key = Some(v),
                            _ => {}
                        }
                    }
                    let (Some(table), Some(key)) = (table, key) else {
                        return Err(err("<entry> needs table and key attributes".into()));
                    };
                    let value = if empty {
                        String::new()
                    } else {
                        reader
                            .read_text(e.name())
                            .map_err(|x| err(format!("malformed XML: {x}")))?
                            .into_owned()
                    };
                    let value =
                        quick_xml::escape::unescape(&value).map_err(|x| err(x.to_string()))?;
                    self.insert(&table, &key, &value);
                    count += 1;
                }
                Ok(Event::Eof) => return Ok(count),
                Ok(_) => {}
                Err(e) => return Err(err(format!("malformed XML: {e}"))),
            }
        }
    }

    /// Reads `[lookup.NAME]` tables of a TOML file.
    pub fn read_toml(&mut self, text: &str, file: &Path) -> Result<usize, RuleError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Form {
            lookup: HashMap<String, HashMap<String, String>>,
        }
        let lines = Lines::new(text, 1);
        let form: Form = toml::from_str(text).map_err(|e| RuleError {
            file: file.to_path_buf(),
            line: e.span().map_or(1, |s| lines.line(s.start as u64)),
            class: None,
            rule: None,
            message: format!("TOML lookup tables: {}", e.message()),
        })?;
        let mut count = 0;
        for (table, entries) in form.lookup {
            for (k, v) in entries {
                self.insert(&table, &k, &v);
                count += 1;
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_and_toml_tables_load_their_entries() {
        let xml = "<?xml version=\"1.0\"?>\n<Export generator=\"IRIS\" version=\"26\">\n<Document name=\"Wards.LUT\">\n<lookupTable>\n<entry table=\"Wards\" key=\"W1\">North &amp; East</entry>\n<entry table=\"Wards\" key=\"W2\">South</entry>\n<entry table=\"Wards\" key=\"W3\"/>\n</lookupTable>\n</Document>\n</Export>\n";
        let mut l = Lookups::default();
        assert_eq!(l.read_xml(xml, Path::new("w.xml")).unwrap(), 3);
        assert_eq!(l.table("Wards").unwrap()["W1"], "North & East");
        assert_eq!(l.table("Wards").unwrap()["W3"], "");
        l.read_toml("[lookup.Sites]\nA = \"Alpha\"\n", Path::new("s.toml"))
            .unwrap();
        assert_eq!(l.table("Sites").unwrap()["A"], "Alpha");
        let e = l
            .read_toml("[lookup.S]\nA = 1\n", Path::new("s.toml"))
            .unwrap_err();
        assert_eq!(e.line, 2);
    }
}
