//! The catalog: which IRIS classes hie knows, what kind of item each is, which of them hie
//! runs, and the setting groups the IRIS base classes and adapters share (IRIS name,
//! target, type, range, default, supported or not). It reads the item kinds from
//! [`items::kinds`](crate::items::kinds): each kind (one file under `items/kinds/`) names
//! its classes and lists its setting groups, its own and the shared ones defined here.
//!
//! Invariants:
//! - A class is looked up by its exact IRIS name. A class missing from [`classes`] is a
//!   custom (ObjectScript) class: kind [`ItemKind::Unknown`].
//! - A class hie runs has a [`HostKind`]; a known class without one (Java gateway, SQL,
//!   FHIR, HTTP, passthrough file hosts) is an IRIS library class hie does not run yet.
//!   Both are reported as unknown classes and need `--allow-unknown`.
//! - A kind's settings are the concatenation of its groups, most specific first: the first
//!   spec matching (target, name) wins, which is how a kind overrides a default (e.g.
//!   `Framing` is `MLLP` for TCP operations and `AsciiLF` for file operations).
//! - Defaults and ranges are IRIS's (see `../shared/corpus/iris/SETTINGS.md`); settings
//!   named in [`HIE_EXTENSIONS`] are hie's own and have no IRIS meaning.
//!
//! Limits: integer settings are checked against the range in their [`ValueType::Int`];
//! free-text settings are not checked beyond being text.

use super::model::{ItemKind, SettingTarget};
use crate::items::kind::HostKind;
use crate::items::kinds;

/// One known IRIS class.
#[derive(Debug, Clone, Copy)]
pub struct ClassInfo {
    /// Exact IRIS class name.
    pub class: &'static str,
    /// Kind of item it makes.
    pub kind: ItemKind,
    /// `Some` when hie runs it: the kind of host that defines it.
    pub runs: Option<&'static dyn HostKind>,
    /// One line for `hie check` and the docs.
    pub about: &'static str,
}

/// Every IRIS class hie knows, those it runs first (in the order of
/// [`kinds::KINDS`](crate::items::kinds::KINDS)).
pub fn classes() -> impl Iterator<Item = ClassInfo> {
    let running = kinds::KINDS.iter().flat_map(|&kind| {
        kind.classes().iter().map(move |c| ClassInfo {
            class: c.class,
            kind: c.kind,
            runs: Some(kind),
            about: c.about,
        })
    });
    let known = kinds::NOT_RUN.iter().map(|c| ClassInfo {
        class: c.class,
        kind: c.kind,
        runs: None,
        about: c.about,
    });
    running.chain(known)
}

/// The catalog entry of `class`, if hie knows it.
pub fn class_info(class: &str) -> Option<ClassInfo> {
    classes().find(|info| info.class == class)
}

/// The item kind of `class`; [`ItemKind::Unknown`] for a class hie does not know.
pub fn kind_of(class: &str) -> ItemKind {
    class_info(class).map_or(ItemKind::Unknown, |info| info.kind)
}

/// Allowed values and ranges of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `0`/`1` (IRIS also writes `true`/`false`; both accepted).
    Bool,
    /// A decimal integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Seconds in `0..=max`, fractions allowed (`0.2`).
    Seconds {
        /// Largest value.
        max: i64,
    },
    /// A TCP port, 1..=65535.
    Port,
    /// Free text.
    Text,
    /// One item name (empty: none).
    Target,
    /// A comma list of item names.
    Targets,
    /// One of the listed IRIS logical values (empty: the default).
    OneOf(&'static [&'static str]),
    /// IRIS `ReplyCodeActions` grammar.
    ReplyCodeActions,
    /// IRIS HL7 `Framing`: a named mode, or `Ascii<n>[/<n>]` / `MLLP<n>[/<n>]`.
    Framing,
    /// A comma list of MSH-9 patterns (`ADT^A40`, `ORM^*`), see `crate::priority`.
    MessageTypes,
}

impl ValueType {
    /// Short description for diagnostics and the docs table.
    pub fn describe(self) -> String {
        match self {
            ValueType::Bool => "boolean 0/1".to_owned(),
            ValueType::Int { min, max } => format!("integer {min}..={max}"),
            ValueType::Seconds { max } => format!("seconds 0..={max}, fractions allowed"),
            ValueType::Port => "port 1..=65535".to_owned(),
            ValueType::Text => "text".to_owned(),
            ValueType::Target => "item name".to_owned(),
            ValueType::Targets => "comma list of item names".to_owned(),
            ValueType::OneOf(values) => format!("one of {}", values.join(", ")),
            ValueType::ReplyCodeActions => "reply code actions".to_owned(),
            ValueType::Framing => "HL7 framing".to_owned(),
            ValueType::MessageTypes => "comma list of MSH-9 types".to_owned(),
        }
    }
}

/// One setting of the table.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// IRIS name.
    pub name: &'static str,
    /// Host or Adapter.
    pub target: SettingTarget,
    /// Type and range.
    pub ty: ValueType,
    /// IRIS default, as IRIS stores it.
    pub default: &'static str,
    /// True when hie honours it; false when hie records it and reports it as unsupported.
    pub supported: bool,
    /// True when an enabled item must give it (a non-empty value).
    pub required: bool,
    /// One line for the docs.
    pub about: &'static str,
}

pub(crate) const H: SettingTarget = SettingTarget::Host;
pub(crate) const A: SettingTarget = SettingTarget::Adapter;

pub(crate) const fn s(
    name: &'static str,
    target: SettingTarget,
    ty: ValueType,
    default: &'static str,
    about: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        target,
        ty,
        default,
        supported: true,
        required: false,
        about,
    }
}

pub(crate) const fn req(
    name: &'static str,
    target: SettingTarget,
    ty: ValueType,
    about: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        target,
        ty,
        default: "",
        supported: true,
        required: true,
        about,
    }
}

pub(crate) const fn no(
    name: &'static str,
    target: SettingTarget,
    ty: ValueType,
    default: &'static str,
    about: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        target,
        ty,
        default,
        supported: false,
        required: false,
        about,
    }
}

pub(crate) const fn int(min: i64, max: i64) -> ValueType {
    ValueType::Int { min, max }
}

pub(crate) const DAY_S: i64 = 86_400;
pub(crate) const BOOL: ValueType = ValueType::Bool;
pub(crate) const TEXT: ValueType = ValueType::Text;

/// Settings hie adds to IRIS's, valid on every item.
pub const HIE_EXTENSIONS: &[&str] = &[
    "QueueSize",
    "Overflow",
    "RestartPolicy",
    "MaxRestarts",
    "RestartDelay",
    "QueueOrder",
    "PriorityMessageTypes",
    "TargetConfigNames (routers)",
    "CharsetValidation",
];

/// Restart policies, as written in the `RestartPolicy` setting.
pub const RESTART_POLICY_VALUES: &[&str] = &["never", "on_failure", "always"];

/// Overflow strategies, as written in the `Overflow` setting.
pub const OVERFLOW_VALUES: &[&str] = &["block", "drop_oldest", "reject"];

/// Queue orders, as written in the `QueueOrder` setting.
pub const QUEUE_ORDER_VALUES: &[&str] = &["fifo", "priority"];

/// Every host (Ens.Host and hie extensions).
pub const HOST_ALL: &[SettingSpec] = &[
    s(
        "AlertOnError",
        H,
        BOOL,
        "0",
        "send an alert to Ens.Alert when the item logs an error",
    ),
    s(
        "QueueCountAlert",
        H,
        int(0, 10_000_000),
        "0",
        "alert when the queue holds this many messages, again once it fell below 80 % (0 = off)",
    ),
    s(
        "QueueWaitAlert",
        H,
        int(0, DAY_S),
        "0",
        "alert when a queued message has waited this many seconds, again once below 80 % (0 = off)",
    ),
    s(
        "RestartPolicy",
        H,
        ValueType::OneOf(RESTART_POLICY_VALUES),
        "on_failure",
        "hie: when a failed item instance is started again (always: with no MaxRestarts limit)",
    ),
    s(
        "MaxRestarts",
        H,
        int(0, 1_000_000),
        "10",
        "hie: restarts in a row allowed before the item stays failed (on_failure)",
    ),
    s(
        "RestartDelay",
        H,
        ValueType::Seconds { max: DAY_S },
        "5",
        "hie: seconds to wait before each restart",
    ),
    s(
        "InactivityTimeout",
        H,
        int(0, DAY_S),
        "0",
        "alert when the item handles no message for this many seconds (0 = off)",
    ),
    no(
        "ArchiveIO",
        H,
        BOOL,
        "0",
        "archive adapter I/O to the message trace",
    ),
    no(
        "ThrottleDelay",
        H,
        int(0, 60_000),
        "0",
        "milliseconds between messages",
    ),
];

/// Business services.
pub const SERVICE_HOST: &[SettingSpec] = &[s(
    "TargetConfigNames",
    H,
    ValueType::Targets,
    "",
    "items that receive what the service gets",
)];

/// Business processes.
pub const PROCESS_HOST: &[SettingSpec] = &[
    no(
        "AlertRetryGracePeriod",
        H,
        int(0, DAY_S),
        "0",
        "seconds of retries before alerting",
    ),
    no(
        "ReplyCodeActions",
        H,
        ValueType::ReplyCodeActions,
        "",
        "what to do on errors of the process",
    ),
    no(
        "RetryInterval",
        H,
        int(0, DAY_S),
        "5",
        "seconds between retries",
    ),
    no(
        "FailureTimeout",
        H,
        int(-1, DAY_S),
        "15",
        "seconds of retries before failing (-1 = never)",
    ),
];

/// Items with a queue of their own: processes and operations (see `crate::priority`).
pub const QUEUE_HOST: &[SettingSpec] = &[
    s(
        "QueueSize",
        H,
        int(1, 1_000_000),
        "10000",
        "hie: bound of the item's queue, in messages",
    ),
    s(
        "Overflow",
        H,
        ValueType::OneOf(OVERFLOW_VALUES),
        "block",
        "hie: what a full queue does",
    ),
    s(
        "QueueOrder",
        H,
        ValueType::OneOf(QUEUE_ORDER_VALUES),
        "fifo",
        "hie: fifo, or priority (messages of PriorityMessageTypes overtake the others)",
    ),
    s(
        "PriorityMessageTypes",
        H,
        ValueType::MessageTypes,
        "",
        "hie: MSH-9 types that go first under QueueOrder priority (e.g. ADT^A40,ORM^*)",
    ),
];

/// Business operations.
pub const OPERATION_HOST: &[SettingSpec] = &[
    s(
        "RetryInterval",
        H,
        int(0, DAY_S),
        "5",
        "seconds between delivery attempts (below 1, hie waits 1: no busy retry loop)",
    ),
    s(
        "FailureTimeout",
        H,
        int(-1, 7 * DAY_S),
        "15",
        "seconds of retries before failing (-1 = never)",
    ),
    s(
        "ReplyCodeActions",
        H,
        ValueType::ReplyCodeActions,
        "E=F",
        "what each reply or error leads to",
    ),
    s(
        "AlertRetryGracePeriod",
        H,
        int(0, DAY_S),
        "0",
        "seconds a delivery error may last, retried, before AlertOnError alerts",
    ),
];

/// HL7 schema category: the DocType category of the messages the item sends on, for the
/// rules (`docCategory`) and a router's `Validation`.
pub(crate) const SCHEMA: SettingSpec = s(
    "MessageSchemaCategory",
    H,
    TEXT,
    "",
    "HL7 schema category of the messages it sends on: the rules' docCategory and the DocType category a router's Validation checks (empty: MSH-12; one with no tables in hie, not 2.3 to 2.5.1, reads as the standard of MSH-12)",
);

/// `EnsLib.HL7.Service.Standard`.
pub const HL7_SERVICE_HOST: &[SettingSpec] = &[
    SCHEMA,
    s(
        "AckMode",
        H,
        ValueType::OneOf(&["Never", "Immed", "App", "Msh", "Byte"]),
        "Immed",
        "when and how to ACK the sender",
    ),
    no(
        "LocalFacilityApplication",
        H,
        TEXT,
        "ISC:EnsembleHL7",
        "MSH-3/MSH-4 of generated ACKs (hie's ACKs swap the message's MSH-5/MSH-6)",
    ),
    no(
        "Framing",
        H,
        ValueType::Framing,
        "Flexible",
        "message framing on the wire or in the file (hie detects MLLP or plain text)",
    ),
    no(
        "AckTargetConfigNames",
        H,
        ValueType::Targets,
        "",
        "items that receive the ACKs",
    ),
    no(
        "SearchTableClass",
        H,
        TEXT,
        "",
        "IRIS search table indexing",
    ),
    no(
        "UseAckCommitCodes",
        H,
        BOOL,
        "1",
        "use CA/CE/CR instead of AA/AE/AR",
    ),
    no(
        "IgnoreInboundAck",
        H,
        BOOL,
        "1",
        "drop ACKs received as messages",
    ),
    no("AddNackERR", H, BOOL, "0", "add an ERR segment to NAKs"),
    no("NackErrorCode", H, TEXT, "207", "ERR code in NAKs"),
    s(
        "BatchHandling",
        H,
        ValueType::OneOf(&["1Session", "Whole", "Indiv", "Batch"]),
        "1Session",
        "FHS/BHS batches: 1Session, Batch and Indiv store and route each message alone; \
         Whole stores and routes the batch as one document (over TCP, either way answered \
         by a batch of ACKs)",
    ),
    s(
        "CharsetValidation",
        H,
        ValueType::OneOf(&["Declared", "Strict", "Off"]),
        "Declared",
        "hie: messages whose bytes break the MSH-18 character set get AR (Declared: when \
         MSH-18 names ASCII or UTF-8; Strict: an empty MSH-18 means UTF-8; Off)",
    ),
    no(
        "DefCharEncoding",
        H,
        TEXT,
        "Latin1",
        "character set when MSH-18 is empty",
    ),
    no(
        "DocTypeResolution",
        H,
        TEXT,
        "Std",
        "how DocType is assigned",
    ),
    no("SaveReplies", H, TEXT, "None", "keep replies in the store"),
];

/// Every router (`EnsLib.MsgRouter.RoutingEngine`).
pub const ROUTER_HOST: &[SettingSpec] = &[
    s(
        "BusinessRuleName",
        H,
        TEXT,
        "",
        "routing rule class, found in the production's folder and [engine] rules_path",
    ),
    s(
        "TargetConfigNames",
        H,
        ValueType::Targets,
        "",
        "hie: items a router without BusinessRuleName forwards every message to",
    ),
    s(
        "Validation",
        H,
        TEXT,
        "",
        "checks before the rules: d (a DocType), m (segments fit its structure), -z (unknown trailing Z segments accepted); 1 = dm-z; a refused message goes to the BadMessageHandler, else is held failed",
    ),
    s(
        "BadMessageHandler",
        H,
        ValueType::Target,
        "",
        "item that receives the messages no target takes (not a copy target)",
    ),
    s(
        "AlertOnBadMessage",
        H,
        BOOL,
        "0",
        "alert when no target takes a message (it goes to the BadMessageHandler)",
    ),
    s(
        "ResponseFrom",
        H,
        TEXT,
        "",
        "targets whose response answers an AckMode=App caller: a,b (the first of them), * (any), +a,b (all: the worst), -a,b (the first error, else AA); blank: AA once routed",
    ),
    s(
        "ResponseTimeout",
        H,
        int(-1, DAY_S),
        "-1",
        "seconds to wait for ResponseFrom's responses, then a generated AE (-1: the caller's own wait)",
    ),
    s(
        "ResponseTargetConfigNames",
        H,
        ValueType::Targets,
        "",
        "items that also receive the response (a new message, written to the WAL), when ResponseFrom has a value",
    ),
    s(
        "ForwardGeneratedResponseToTarget",
        H,
        BOOL,
        "1",
        "send responses the router generated (timeouts, -'s AA) to ResponseTargetConfigNames too",
    ),
    no(
        "ForceSyncSend",
        H,
        BOOL,
        "0",
        "send to targets one at a time, in order",
    ),
    s(
        "RuleLogging",
        H,
        TEXT,
        "r",
        "rule log flags: not empty (default r): each evaluation's rule set, fired rules and sends go into the message's WAL record, shown by hie ctl show; c, d or a also log its trace",
    ),
    s(
        "ActOnTransformError",
        H,
        BOOL,
        "0",
        "a transform error stops all of the message's sends (0: only the failed send is held)",
    ),
    s(
        "ActOnValidationError",
        H,
        BOOL,
        "0",
        "a message Validation refuses is held failed at the router (an AckMode=App sender gets AE), not sent to the BadMessageHandler",
    ),
];

/// HL7 operations (`EnsLib.HL7.Operation.Standard`).
pub const HL7_OPERATION_HOST: &[SettingSpec] = &[
    no("Separators", H, TEXT, "|^~\\&", "separators written in MSH"),
    no(
        "SearchTableClass",
        H,
        TEXT,
        "",
        "IRIS search table indexing",
    ),
    no(
        "DefCharEncoding",
        H,
        TEXT,
        "Latin1",
        "character set when MSH-18 is empty",
    ),
];

/// The spec of setting `name` of `target` for `kind`, if the kind has it.
pub fn spec(
    kind: &dyn HostKind,
    target: SettingTarget,
    name: &str,
) -> Option<&'static SettingSpec> {
    kind.settings()
        .iter()
        .flat_map(|group| group.iter())
        .find(|spec| spec.target == target && spec.name == name)
}

/// Every spec of `kind`, most specific first, without shadowed duplicates.
pub fn specs(kind: &dyn HostKind) -> Vec<&'static SettingSpec> {
    let mut out: Vec<&'static SettingSpec> = Vec::new();
    for spec in kind.settings().iter().flat_map(|group| group.iter()) {
        if !out
            .iter()
            .any(|s| s.target == spec.target && s.name == spec.name)
        {
            out.push(spec);
        }
    }
    out
}

/// The settings `kind` routes messages by: its supported host settings that name
/// targets (`TargetConfigNames`, `BadMessageHandler`); the others that name items are
/// recorded only. What [`Routes`](super::settings::Routes) is read from.
pub fn routed_by(kind: &dyn HostKind) -> Vec<&'static str> {
    specs(kind)
        .into_iter()
        .filter(|s| s.supported && s.target == SettingTarget::Host)
        .filter(|s| matches!(s.ty, ValueType::Target | ValueType::Targets))
        .map(|s| s.name)
        .collect()
}

/// True when `value` is a valid IRIS HL7 framing.
pub fn is_framing(value: &str) -> bool {
    const NAMED: &[&str] = &[
        "Flexible",
        "None",
        "MLLP",
        "AsciiLF",
        "AsciiCR",
        "AsciiCRLF",
        "LLP",
        "MsgEnvelope",
        "MLLPMsgEnvelope",
    ];
    if value.is_empty() || NAMED.contains(&value) {
        return true;
    }
    let rest = value
        .strip_prefix("Ascii")
        .or_else(|| value.strip_prefix("MLLP"));
    let Some(rest) = rest else { return false };
    let byte = |s: &str| !s.is_empty() && s.len() <= 3 && s.parse::<u16>().is_ok_and(|n| n <= 255);
    match rest.split_once('/') {
        Some((a, b)) => byte(a) && byte(b),
        None => byte(rest),
    }
}

/// The class and settings tables of `docs/configuration.md`, generated from this catalog so
/// the documentation cannot drift from the code (a test compares them).
pub fn docs_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "### Classes\n\n| class | kind | hie runs it | what |\n| --- | --- | --- | --- |\n",
    );
    for info in classes() {
        let runs = if info.runs.is_some() {
            "yes"
        } else {
            "no (unknown class)"
        };
        out.push_str(&format!(
            "| `{}` | {} | {runs} | {} |\n",
            info.class,
            info.kind.as_str(),
            info.about
        ));
    }
    for &kind in kinds::KINDS {
        let classes: Vec<String> = kind
            .classes()
            .iter()
            .map(|c| format!("`{}`", c.class))
            .collect();
        out.push_str(&format!(
            "\n### Settings of {}\n\n| setting | target | type | IRIS default | hie | meaning |\n| --- | --- | --- | --- | --- | --- |\n",
            classes.join(", ")
        ));
        for spec in specs(kind) {
            let support = match (spec.supported, spec.required) {
                (true, true) => "required",
                (true, false) => "supported",
                (false, _) => "recorded, not used",
            };
            let default = if spec.default.is_empty() {
                String::new()
            } else {
                format!("`{}`", spec.default.replace('|', "\\|"))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {default} | {support} | {} |\n",
                spec.name,
                spec.target.as_str(),
                spec.ty.describe().replace('|', "\\|"),
                spec.about.replace('|', "\\|"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_BEGIN: &str = "<!-- catalog:begin (generated from core/src/config/catalog.rs) -->\n";
    const DOCS_END: &str = "<!-- catalog:end -->";

    /// Set `HIE_UPDATE_DOCS=1` to rewrite the generated section after changing the catalog.
    #[test]
    fn docs_configuration_tables_match_the_catalog() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
        let start = doc.find(DOCS_BEGIN).expect("catalog:begin marker") + DOCS_BEGIN.len();
        let end = doc.find(DOCS_END).expect("catalog:end marker");
        let expected = docs_markdown();
        if doc[start..end] != expected {
            if std::env::var_os("HIE_UPDATE_DOCS").is_some() {
                let updated = format!("{}{expected}{}", &doc[..start], &doc[end..]);
                std::fs::write(&path, updated).expect("write docs/configuration.md");
            } else {
                panic!("docs/configuration.md is out of date; run with HIE_UPDATE_DOCS=1");
            }
        }
    }

    #[test]
    fn every_runnable_class_has_every_required_setting_without_default() {
        for info in classes().filter(|i| i.runs.is_some()) {
            for spec in specs(info.runs.unwrap()) {
                if spec.required {
                    assert!(spec.default.is_empty(), "{} {}", info.class, spec.name);
                }
            }
        }
    }

    #[test]
    fn specific_groups_override_the_framing_default() {
        let tcp = spec(&kinds::hl7_tcp_operation::KIND, H, "Framing").unwrap();
        let file = spec(&kinds::hl7_file_operation::KIND, H, "Framing").unwrap();
        assert_eq!((tcp.default, file.default), ("MLLP", "AsciiLF"));
    }

    #[test]
    fn settings_on_the_wrong_target_are_not_found() {
        assert!(spec(&kinds::hl7_tcp_service::KIND, A, "Port").is_some());
        assert!(spec(&kinds::hl7_tcp_service::KIND, H, "Port").is_none());
    }

    #[test]
    fn framing_accepts_named_and_byte_forms_and_rejects_others() {
        for ok in [
            "Flexible",
            "MLLP",
            "Ascii115/101",
            "MLLP11/28",
            "Ascii11",
            "",
        ] {
            assert!(is_framing(ok), "{ok}");
        }
        for bad in ["Ascii", "Ascii256", "MLLP1/", "Smoke", "Ascii1/2/3"] {
            assert!(!is_framing(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_classes_have_unknown_kind() {
        assert_eq!(kind_of("Demo.Custom.BS"), ItemKind::Unknown);
        assert_eq!(kind_of("EnsLib.HL7.Service.TCPService"), ItemKind::Service);
    }

    #[test]
    fn every_default_satisfies_its_own_type() {
        for info in classes().filter(|i| i.runs.is_some()) {
            for spec in specs(info.runs.unwrap()) {
                if spec.required {
                    continue;
                }
                let ok = match spec.ty {
                    ValueType::Int { min, max } => spec
                        .default
                        .parse::<i64>()
                        .is_ok_and(|n| (min..=max).contains(&n)),
                    ValueType::Seconds { max } => {
                        crate::config::settings::parse_seconds(spec.default, max).is_ok()
                    }
                    ValueType::Bool => matches!(spec.default, "0" | "1"),
                    ValueType::Port => spec.default.parse::<u16>().is_ok_and(|p| p > 0),
                    ValueType::OneOf(values) => values.contains(&spec.default),
                    ValueType::Framing => is_framing(spec.default),
                    _ => true,
                };
                assert!(
                    ok,
                    "{} {} default {:?}",
                    info.class, spec.name, spec.default
                );
            }
        }
    }
}
