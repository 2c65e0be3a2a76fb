//! A router's `Validation` (IRIS's message validation before the rules) and
//! `ActOnValidationError`: which messages a router refuses to route, and where they go.
//!
//! Flags hie honours (IRIS's syntax: letters, `-` before a letter turns it off; blank or
//! `0`: no validation; `1` = `dm-z`):
//! - `d`: the message must have a DocType. Its category is the sending item's
//!   `MessageSchemaCategory`, else the message's version (MSH-12); its structure is
//!   MSH-9.3 when the category's schema has it, else the schema's map of MSH-9's type
//!   and trigger event. A category hie has no schema tables for (a custom schema) is
//!   read as the standard of the message's version, as the rules read it; with neither,
//!   the message has no DocType.
//! - `m`: the segments must fit the DocType's structure (placed as
//!   [`hie_hl7::schema::place`] places them): none missing that the structure
//!   requires, none that it does not expect where it stands (unknown, out of order, one
//!   repetition too many). A message with no DocType is not checked by `m` alone.
//! - `z` (the default with `m`): trailing Z segments are checked as any other segment;
//!   `-z` accepts the unknown Z segments that end the message.
//!
//! Other IRIS flags (segment content, field lengths, tables...) are not checked: `hie
//! check` warns naming each one ([`unsupported_flags`]).
//!
//! A message that fails is not given to the rules. It goes to the router's
//! `BadMessageHandler` (alerting with `AlertOnBadMessage`, counted as `no_route`); with
//! no handler, or with `ActOnValidationError`, the router records it `Failed` with the
//! reason, held for an operator (`hie ctl held`), counted as failed, and a service
//! waiting for its App reply answers AE with that reason. The reason names the flag and
//! the place: `m: segment ZZ1 at 4 is not in ADT_A01 (2.3.1)`.
//!
//! Cost: a router without `Validation` does one `Option` test per message. With it, the
//! checks reuse the router's buffers ([`Validator`]); only a refusal allocates (its
//! reason).

use std::sync::Arc;

use hie_hl7::Message;
use hie_hl7::schema::{self, Missing, Placed, Schema, Structure};
use hie_persist::Record;

use crate::config::model::Item;
use crate::config::{Diagnostic, Production};
use crate::engine::plan::PlannedItem;
use crate::engine::runtime::Shard;
use crate::envelope::{Envelope, ItemId};
use crate::items::kinds::routing_engine::RouterSettings;

/// The `Validation` flags hie checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// `d`: the message must have a DocType.
    pub doc_type: bool,
    /// `m`: the segments must fit the DocType's structure.
    pub structure: bool,
    /// `-z`: unknown Z segments at the end of the message are accepted.
    pub trailing_z_accepted: bool,
}

impl Flags {
    /// The flags of a `Validation` value (what hie does not check is ignored here:
    /// [`unsupported_flags`]).
    pub fn parse(text: &str) -> Flags {
        let text = match text.trim() {
            "1" => "dm-z",
            t => t,
        };
        let mut flags = Flags::default();
        let mut on = true;
        for c in text.chars() {
            match c {
                '-' => {
                    on = false;
                    continue;
                }
                'd' => flags.doc_type = on,
                'm' => flags.structure = on,
                'z' => flags.trailing_z_accepted = !on,
                _ => {}
            }
            on = true;
        }
        flags
    }

    /// Whether anything is checked.
    pub fn is_on(&self) -> bool {
        self.doc_type || self.structure
    }
}

/// The flags of a `Validation` value that hie does not check (IRIS's `s`, `c`, `r`...,
/// or anything else), each once, in order; a flag turned off (`-s`) is not listed.
pub fn unsupported_flags(text: &str) -> Vec<char> {
    let text = text.trim();
    if matches!(text, "" | "0" | "1") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut on = true;
    for c in text.chars() {
        if c == '-' {
            on = false;
            continue;
        }
        if on && !matches!(c, 'd' | 'm' | 'z') && !c.is_whitespace() && !out.contains(&c) {
            out.push(c);
        }
        on = true;
    }
    out
}

/// What a router validates, attached to its plan entry ([`PlannedItem::validation`]).
#[derive(Debug)]
pub struct RouterValidation {
    pub flags: Flags,
    /// `MessageSchemaCategory` of each item (by id); empty when it has none.
    pub categories: Arc<[String]>,
    /// `ActOnValidationError`: a refused message is held as failed at the router, not
    /// sent to the `BadMessageHandler`.
    pub act_on_validation_error: bool,
}

/// Attaches its [`RouterValidation`] to every router whose `Validation` checks something.
pub fn attach(production: &Production, items: &mut [PlannedItem]) {
    let categories: Arc<[String]> = production
        .items
        .iter()
        .map(|item| setting(item, "MessageSchemaCategory").to_owned())
        .collect();
    for (item, planned) in production.items.iter().zip(items.iter_mut()) {
        let Some(router) = item
            .settings
            .as_ref()
            .and_then(|s| s.of::<RouterSettings>())
        else {
            continue;
        };
        if !planned.is_router() || !router.validation.is_on() {
            continue;
        }
        planned.validation = Some(Arc::new(RouterValidation {
            flags: router.validation,
            categories: categories.clone(),
            act_on_validation_error: router.act_on_validation_error,
        }));
    }
}

fn setting<'i>(item: &'i Item, name: &str) -> &'i str {
    item.host_settings.get(name).map_or("", |v| v.value.trim())
}

/// Warnings for each item sending straight to a validating router (its
/// `TargetConfigNames`) whose `MessageSchemaCategory` hie has no schema tables for (a
/// custom schema): the router reads its messages as the standard of their MSH-12
/// version, not as the custom schema says. For `hie check` and `hie run` alike
/// (`config::validate`), at the category's line.
pub fn check_categories(production: &Production, file: &std::path::Path) -> Vec<Diagnostic> {
    let validating: Vec<&str> = production
        .items
        .iter()
        .filter(|i| i.enabled && Flags::parse(setting(i, "Validation")).is_on())
        .map(|i| i.name.as_str())
        .collect();
    let mut out = Vec::new();
    if validating.is_empty() {
        return out;
    }
    for item in &production.items {
        let category = setting(item, "MessageSchemaCategory");
        if category.is_empty() || schema::schema(category).is_some() {
            continue;
        }
        let Some(settings) = &item.settings else {
            continue;
        };
        for router in settings
            .targets()
            .into_iter()
            .filter(|t| validating.contains(t))
        {
            let line = item
                .host_settings
                .get("MessageSchemaCategory")
                .map_or(item.source.line, |v| v.line);
            out.push(Diagnostic {
                file: file.to_path_buf(),
                line,
                item: Some(item.name.clone()),
                message: format!(
                    "MessageSchemaCategory {category:?} is not a category hie has schema \
                     tables for (2.3 to 2.5.1): router {router}'s Validation checks these \
                     messages against the standard of their MSH-12 version"
                ),
            });
        }
    }
    out
}

/// A router's reused buffers for validation, and the messages of the batch it holds.
#[derive(Debug, Default)]
pub struct Validator {
    ids: Vec<[u8; 3]>,
    placed: Placed,
    /// Messages of the batch (index) refused and held at the router, with the reason.
    held: Vec<(usize, String)>,
}

impl Validator {
    /// The reason message `i` of the batch was refused and is held at the router.
    pub fn held_of(&self, i: usize) -> Option<&str> {
        if self.held.is_empty() {
            return None;
        }
        self.held
            .iter()
            .find(|(k, _)| *k == i)
            .map(|(_, r)| r.as_str())
    }

    pub(crate) fn clear(&mut self) {
        self.held.clear();
    }

    /// Checks `m` (sent by an item of category `category`, "" for none) against `flags`.
    pub fn check(&mut self, flags: Flags, m: &Message<'_>, category: &str) -> Result<(), String> {
        let (schema, structure) = match doc_type(m, category) {
            Ok(found) => found,
            Err(why) if flags.doc_type => return Err(format!("d: no DocType: {why}")),
            Err(_) => return Ok(()),
        };
        if !flags.structure {
            return Ok(());
        }
        self.ids.clear();
        self.ids.extend(m.segment_ids());
        self.placed.place(structure, &self.ids);
        let doc = || format!("{} ({})", structure.name(), schema.version());
        let kept = if flags.trailing_z_accepted {
            trailing_z_start(&self.ids)
        } else {
            self.ids.len()
        };
        if let Some((k, id)) = self.placed.unexpected_segments().find(|(k, _)| *k < kept) {
            return Err(unexpected(flags, structure, k, id, &self.ids, &doc()));
        }
        match self.placed.first_missing() {
            Some(missing) => Err(missing_text(&missing, &self.ids, &doc())),
            None => Ok(()),
        }
    }
}

/// The message's DocType: the schema of its category and its structure; `Err` says
/// why it has none. A category hie has no tables for (a custom schema) is read as the
/// standard of the message's version, as the rules read it. Allocates only for `Err`.
fn doc_type(
    m: &Message<'_>,
    category: &str,
) -> Result<(&'static Schema, &'static Structure), String> {
    let version = m.version().unwrap_or_default();
    let version = version
        .split(|&b| b == m.delimiters().component)
        .next()
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("")
        .trim();
    let schema = schema::schema(category)
        .or_else(|| schema::schema(version))
        .ok_or_else(|| no_schema(category, version))?;
    let declared = trimmed_text(m.message_structure());
    let structure = Some(declared)
        .filter(|d| !d.is_empty())
        .and_then(|d| schema.structure(d))
        .or_else(|| {
            let name = schema.structure_of(
                trimmed_text(m.message_type()),
                trimmed_text(m.trigger_event()),
            )?;
            schema.structure(name)
        });
    structure.map(|s| (schema, s)).ok_or_else(|| {
        let lossy = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let declared = lossy(m.message_structure());
        format!(
            "MSH-9 {}^{}{} names no message structure of {}",
            lossy(m.message_type()),
            lossy(m.trigger_event()),
            if declared.is_empty() {
                String::new()
            } else {
                format!("^{declared}")
            },
            schema.version()
        )
    })
}

/// A field as text, trimmed; "" when absent or not UTF-8.
fn trimmed_text(b: Option<&[u8]>) -> &str {
    std::str::from_utf8(b.unwrap_or_default())
        .unwrap_or("")
        .trim()
}

/// Why neither the category nor the version (MSH-12) has schema tables.
fn no_schema(category: &str, version: &str) -> String {
    let version = match version {
        "" => "no version in MSH-12".to_owned(),
        v => format!("none for version {v:?} (MSH-12)"),
    };
    match category {
        "" => format!("hie has no schema tables: no MessageSchemaCategory, {version}"),
        c => format!(
            "hie has no schema tables for category {c:?} (MessageSchemaCategory), {version}"
        ),
    }
}

/// Where the run of Z segments that ends the message starts (the length when none).
fn trailing_z_start(ids: &[[u8; 3]]) -> usize {
    let run = ids.iter().rev().take_while(|id| id[0] == b'Z').count();
    ids.len() - run
}

fn unexpected(
    flags: Flags,
    structure: &Structure,
    k: usize,
    id: [u8; 3],
    ids: &[[u8; 3]],
    doc: &str,
) -> String {
    let name = String::from_utf8_lossy(&id);
    let at = k + 1;
    let known = structure
        .nodes()
        .iter()
        .any(|n| n.name().as_bytes() == id && n.kind() == schema::NodeKind::Segment);
    if known {
        return format!("m: segment {name} at {at} is not expected there in {doc}");
    }
    if id[0] == b'Z' && k >= trailing_z_start(ids) && !flags.trailing_z_accepted {
        return format!(
            "z: trailing segment {name} at {at} is not in {doc} (-z accepts unknown \
             trailing Z segments)"
        );
    }
    format!("m: segment {name} at {at} is not in {doc}")
}

fn missing_text(missing: &Missing, ids: &[[u8; 3]], doc: &str) -> String {
    let what = if missing.name == missing.first_segment {
        format!("segment {}", missing.name)
    } else {
        format!(
            "group {} (from segment {})",
            missing.name, missing.first_segment
        )
    };
    let within = if missing.within.is_empty() {
        String::new()
    } else {
        format!(" from {}", missing.within)
    };
    let place = match missing.before.and_then(|k| Some((k, ids.get(k)?))) {
        Some((k, id)) => format!(
            " before segment {} at {}",
            String::from_utf8_lossy(id),
            k + 1
        ),
        None => String::new(),
    };
    format!("m: required {what} is missing{within}{place} in {doc}")
}

impl RouterValidation {
    /// Checks `env` with the router's buffers `v`; `Err` gives the reason.
    fn check(&self, env: &Envelope, v: &mut Validator) -> Result<(), String> {
        let Some(message) = env.message() else {
            return Err("d: no DocType: the message was not scanned as HL7".into());
        };
        let category = self
            .categories
            .get(env.source as usize)
            .map_or("", String::as_str);
        v.check(self.flags, &message, category)
    }
}

impl Shard {
    /// Validates message `i` of a batch at `router` (when it validates): a refused
    /// message gets its records here, to the `BadMessageHandler` (`records`, `to`), or is
    /// noted in `v` for the router to hold. True when refused: the rules do not see it.
    pub(crate) fn refuse_invalid<'r>(
        &'r self,
        router: &'r PlannedItem,
        env: &Envelope,
        i: usize,
        v: &mut Validator,
        records: &mut Vec<Record<'r>>,
        to: &mut Vec<ItemId>,
    ) -> bool {
        let Some(validation) = router.validation.as_deref() else {
            return false;
        };
        let Err(reason) = validation.check(env, v) else {
            return false;
        };
        let wal_id = env.id.wal_id;
        match &router.bad_message_handler {
            Some(handler) if !validation.act_on_validation_error => {
                let what = format!("failed validation ({reason}): sent to the BadMessageHandler");
                self.note_bad_message(router, wal_id, &what);
                self.routing_records(wal_id, std::slice::from_ref(handler), None, records, to);
                records.push(Record::Completed {
                    message_id: wal_id,
                    target: &router.name,
                });
            }
            _ => v.held.push((i, reason)),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Corpus message `name` (`../shared/corpus/hl7`), its line ends as segment ends.
    fn corpus(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7");
        let bytes = std::fs::read(dir.join(name)).unwrap();
        bytes
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect()
    }

    fn check(flags: &str, bytes: &[u8], category: &str) -> Result<(), String> {
        let m = Message::scan(bytes).unwrap();
        Validator::default().check(Flags::parse(flags), &m, category)
    }

    /// Hand-made messages: MSH (ADT^A01, 2.3.1) then `rest`, one segment a line.
    fn adt(rest: &str) -> Vec<u8> {
        let mut text = String::from("MSH|^~\\&|PAS|RBH|HIE|RBH|20260101||ADT^A01|C1|P|2.3.1\r");
        for seg in rest.split_whitespace() {
            text.push_str(seg);
            text.push_str("|1\r");
        }
        text.into_bytes()
    }

    #[test]
    fn valid_corpus_messages_pass_dm_z() {
        for name in [
            "014_msfc_ORU-R01-RMGEAD.hl7",
            "029_hl7parser_sample_adt_a03.hl7",
            "030_hl7parser_sample_adt_a04.hl7",
            "036_hl7_2_orm_o01.hl7",
            "037_hl7_2_oru_r01.hl7",
            "042_simplehl7_orm.hl7",
            "066_hapi_example_oml_o21_msg10.hl7",
            "072_nhc_siu_example.hl7",
        ] {
            assert_eq!(check("1", &corpus(name), ""), Ok(()), "{name}");
            assert_eq!(check("dmz", &corpus(name), ""), Ok(()), "{name}");
        }
    }

    #[test]
    fn trailing_z_segments_pass_with_minus_z_and_fail_with_z() {
        // 032 (2.3 ORU_R01) ends in ZDR ZPR after its 19 standard segments.
        let bytes = corpus("032_hl7parser_sample_oru_r01_lab.hl7");
        assert_eq!(check("dm-z", &bytes, ""), Ok(()));
        assert_eq!(
            check("dmz", &bytes, "").unwrap_err(),
            "z: trailing segment ZDR at 20 is not in ORU_R01 (2.3) \
             (-z accepts unknown trailing Z segments)"
        );
        // With neither, trailing Z segments are checked as any other (IRIS: "dm").
        assert!(check("dm", &bytes, "").is_err());
    }

    #[test]
    fn an_unknown_segment_before_the_end_fails_m_even_with_minus_z() {
        let bytes = adt("EVN PID ZZ1 PV1");
        assert_eq!(
            check("1", &bytes, "").unwrap_err(),
            "m: segment ZZ1 at 4 is not in ADT_A01 (2.3.1)"
        );
        // Moved to the end, it is a trailing Z segment.
        assert_eq!(check("1", &adt("EVN PID PV1 ZZ1 ZZ2"), ""), Ok(()));
    }

    #[test]
    fn a_segment_out_of_order_is_named_with_its_position() {
        // 010: ADT_A01 2.3 with a DG1 after the segments that follow it in the structure.
        assert_eq!(
            check("1", &corpus("010_msfc_ADT01-23.hl7"), "").unwrap_err(),
            "m: segment DG1 at 7 is not expected there in ADT_A01 (2.3)"
        );
        assert_eq!(
            check("1", &adt("EVN PID PV1 NK1"), "").unwrap_err(),
            "m: segment NK1 at 5 is not expected there in ADT_A01 (2.3.1)"
        );
    }

    #[test]
    fn a_missing_required_segment_names_it_and_the_segment_after_it() {
        assert_eq!(
            check("1", &corpus("041_simplehl7_adt.hl7"), "").unwrap_err(),
            "m: required segment EVN is missing before segment PID at 2 in ADT_A01 (2.5)"
        );
        assert_eq!(
            check("1", &adt("EVN PID"), "").unwrap_err(),
            "m: required segment PV1 is missing in ADT_A01 (2.3.1)"
        );
        let oru = b"MSH|^~\\&|LAB|RBH|HIE|RBH|20260101||ORU^R01|C1|P|2.5\rPID|1\rORC|1\rOBX|1\r";
        assert_eq!(
            check("1", oru, "").unwrap_err(),
            "m: required segment OBR is missing from PIDgrpgrp(1).ORCgrp(1) before segment \
             OBX at 4 in ORU_R01 (2.5)"
        );
    }

    #[test]
    fn without_m_only_the_doc_type_is_required() {
        assert_eq!(check("d", &adt("PID"), ""), Ok(()));
        assert!(check("dm", &adt("PID"), "").is_err());
    }

    #[test]
    fn the_category_is_the_senders_message_schema_category_else_msh_12() {
        // 001 says 2.8 in MSH-12, which hie has no tables for.
        let bytes = corpus("001_msfc_ADT-A01-01.hl7");
        assert_eq!(
            check("d", &bytes, "").unwrap_err(),
            "d: no DocType: hie has no schema tables: no MessageSchemaCategory, none for \
             version \"2.8\" (MSH-12)"
        );
        assert_eq!(check("d", &bytes, "2.5"), Ok(()));
        assert_eq!(
            check("d", &bytes, "PAS").unwrap_err(),
            "d: no DocType: hie has no schema tables for category \"PAS\" \
             (MessageSchemaCategory), none for version \"2.8\" (MSH-12)"
        );
        // A custom category is read as the standard of the message's version (2.3.1).
        assert_eq!(check("1", &adt("EVN PID PV1"), "PAS"), Ok(()));
        assert_eq!(
            check("1", &adt("EVN PID ZZ1 PV1"), "PAS").unwrap_err(),
            "m: segment ZZ1 at 4 is not in ADT_A01 (2.3.1)"
        );
        // m without d does not check a message that has no DocType.
        assert_eq!(check("m", &bytes, ""), Ok(()));
    }

    #[test]
    fn a_message_type_with_no_structure_has_no_doc_type() {
        let bytes = b"MSH|^~\\&|PAS|RBH|HIE|RBH|20260101||ADT^Z99|C1|P|2.4\rEVN|1\r";
        assert_eq!(
            check("d", bytes, "").unwrap_err(),
            "d: no DocType: MSH-9 ADT^Z99 names no message structure of 2.4"
        );
        let no_version = b"MSH|^~\\&|PAS|RBH|HIE|RBH|20260101||ADT^A01|C1|P\rEVN|1\r";
        assert_eq!(
            check("1", no_version, "").unwrap_err(),
            "d: no DocType: hie has no schema tables: no MessageSchemaCategory, no version \
             in MSH-12"
        );
        // MSH-9.3 names the structure when the schema has it (A08 maps to ADT_A01).
        let declared = b"MSH|^~\\&|PAS|RBH|HIE|RBH|20260101||ADT^A08^ADT_A01|C1|P|2.4\r\
                         EVN|1\rPID|1\rPV1|1\r";
        assert_eq!(check("1", declared, ""), Ok(()));
    }

    #[test]
    fn flags_parse_as_iris_writes_them() {
        let dm_z = Flags {
            doc_type: true,
            structure: true,
            trailing_z_accepted: true,
        };
        assert_eq!(Flags::parse("1"), dm_z);
        assert_eq!(Flags::parse(" dm-z "), dm_z);
        assert_eq!(
            Flags::parse("dmz"),
            Flags {
                trailing_z_accepted: false,
                ..dm_z
            }
        );
        assert!(!Flags::parse("").is_on());
        assert!(!Flags::parse("0").is_on());
        assert!(!Flags::parse("z").is_on());
        assert!(!Flags::parse("-d-m").is_on());
        assert_eq!(
            Flags::parse("m-d"),
            Flags {
                structure: true,
                ..Flags::default()
            }
        );
        assert_eq!(unsupported_flags("dm-zsc-r2s"), ['s', 'c', '2']);
        assert!(unsupported_flags("1").is_empty());
        assert!(unsupported_flags("dm-z").is_empty());
    }

    /// A production of router `R` (host settings `host`) sending to file operation `Out`,
    /// its findings and plan.
    fn planned(host: &str) -> (crate::config::validate::Findings, crate::engine::plan::Plan) {
        use crate::config::{Format, LoadOptions};
        let text = format!(
            "[production]\nname = \"P\"\n\n\
             [[item]]\nname = \"R\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
             [item.host]\nTargetConfigNames = \"Out\"\n{host}\n\n\
             [[item]]\nname = \"Out\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
             [item.adapter]\nFilePath = \"/tmp\"\n"
        );
        let path = std::path::Path::new("p.toml");
        let mut production = crate::config::parse_str(&text, path, Format::Toml)
            .unwrap()
            .production;
        let f = crate::config::validate::validate(&mut production, path, &LoadOptions::default());
        (f, crate::engine::plan::Plan::new(&production, 1))
    }

    #[test]
    fn a_router_gets_its_validation_and_check_warns_of_flags_hie_does_not_check() {
        let (f, plan) = planned("Validation = \"dm-zsc\"\nActOnValidationError = \"1\"");
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert_eq!(f.warnings[0].line, 9);
        assert!(
            f.warnings[0]
                .message
                .contains("hie does not check flag 's', 'c'"),
            "{}",
            f.warnings[0].message
        );
        let v = plan.item_named("R").unwrap().validation.as_ref().unwrap();
        assert_eq!(v.flags, Flags::parse("dm-z"));
        assert!(v.act_on_validation_error);
        assert!(plan.item_named("Out").unwrap().validation.is_none());
    }

    #[test]
    fn a_router_without_validation_checks_nothing() {
        for host in ["", "Validation = \"0\"", "Validation = \"\""] {
            let (f, plan) = planned(host);
            assert!(f.errors.is_empty() && f.warnings.is_empty(), "{f:?}");
            assert!(plan.item_named("R").unwrap().validation.is_none(), "{host}");
        }
        let (f, _) = planned("ActOnValidationError = \"maybe\"");
        assert!(
            f.errors
                .iter()
                .any(|e| e.message.contains("ActOnValidationError")),
            "{f:?}"
        );
    }

    #[test]
    fn check_warns_of_a_custom_category_sent_to_a_validating_router() {
        let (f, _) = planned(
            "Validation = \"1\"\n\n\
             [[item]]\nname = \"In\"\nclass = \"EnsLib.HL7.Service.TCPService\"\n\
             [item.host]\nTargetConfigNames = \"R\"\n\
             MessageSchemaCategory = \"Demo.Custom\"\n[item.adapter]\nPort = \"1\"",
        );
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        let w = &f.warnings[0];
        assert_eq!((w.item.as_deref(), w.line), (Some("In"), 16));
        assert!(
            w.message.contains(
                "MessageSchemaCategory \"Demo.Custom\" is not a category hie has schema tables \
                 for (2.3 to 2.5.1): router R's Validation"
            ),
            "{}",
            w.message
        );
        // A standard category, or a router that does not validate: nothing to say.
        for (validation, category) in [("1", "2.4"), ("0", "Demo.Custom")] {
            let (f, _) = planned(&format!(
                "Validation = \"{validation}\"\n\n\
                 [[item]]\nname = \"In\"\nclass = \"EnsLib.HL7.Service.TCPService\"\n\
                 [item.host]\nTargetConfigNames = \"R\"\n\
                 MessageSchemaCategory = \"{category}\"\n[item.adapter]\nPort = \"1\""
            ));
            assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        }
    }
}
