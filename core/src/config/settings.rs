//! Typed item settings: what the engine reads instead of strings.
//!
//! [`resolve`] turns an item's raw IRIS settings into its [`ItemSettings`]: what every
//! item has ([`CommonSettings`], [`Routes`]) and its kind's own settings, a type of the
//! kind's file (`items::kinds`) behind [`KindSettings`], with the catalog's IRIS defaults
//! applied; it reports every bad value as a diagnostic at the line of its `<Setting>`.
//! This module names no kind: the value types here are shared by several.
//!
//! Rules applied to raw values:
//! - An empty value of a typed setting (integer, boolean, port, choice, framing, reply code
//!   actions) means "the default"; an empty text value is kept empty, as IRIS does.
//! - Booleans accept `0`/`1` and `true`/`false` (any case).
//! - `-1` means "forever" where the catalog range allows it ([`Timeout`], [`StayConnected`]).
//! - Lists (`TargetConfigNames`, `Recipient`) split on commas (and semicolons for e-mail
//!   addresses), trimming spaces and dropping empty entries.
//! - `ReplyCodeActions` is parsed by [`crate::reply_code_actions::ReplyCodeActions`], the
//!   same parser the operations evaluate replies with (its module documents the grammar).

use std::any::Any;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Diagnostic;
use super::catalog::{
    self, OVERFLOW_VALUES, QUEUE_ORDER_VALUES, RESTART_POLICY_VALUES, SettingSpec, ValueType,
};
use super::model::{Item, SettingTarget};
use crate::items::kind::HostKind;
use crate::priority::{self, QueueOrder};

/// Typed settings of one item: the kind that resolved them, what every item has
/// ([`CommonSettings`], [`Routes`]) and its kind's own, which only its kind
/// (`items::kinds`) reads ([`ItemSettings::of`]). Everything after validation reaches the
/// item's kind through [`ItemSettings::host`], not through a list of kinds.
#[derive(Debug, Clone)]
pub struct ItemSettings {
    /// The kind of the item's class, which resolved these settings.
    pub host: &'static dyn HostKind,
    /// Settings every host has.
    pub common: CommonSettings,
    /// Where it sends messages by configuration.
    pub routes: Routes,
    /// Its kind's own settings (a type of its kind's file).
    pub own: Arc<dyn KindSettings>,
}

impl ItemSettings {
    /// Its kind's own settings as `T`; `None` when they are of another type.
    pub fn of<T: KindSettings>(&self) -> Option<&T> {
        // `*self.own`: the settings, not their `Arc` (which is `KindSettings` too).
        (*self.own).as_any().downcast_ref()
    }

    /// Items this one sends to by configuration (TargetConfigNames, BadMessageHandler).
    pub fn targets(&self) -> Vec<&str> {
        let r = &self.routes;
        r.targets
            .iter()
            .map(String::as_str)
            .chain(r.bad_message_handler.as_deref())
            .collect()
    }
}

impl PartialEq for ItemSettings {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(self.host, other.host)
            && self.common == other.common
            && self.routes == other.routes
            && (*self.own).eq_dyn((*other.own).as_any())
    }
}

impl Eq for ItemSettings {}

/// A kind's own typed settings (one type per kind, in its file): any type that is
/// `Debug`, `PartialEq`, `Send` and `Sync` is one.
pub trait KindSettings: Any + fmt::Debug + Send + Sync {
    /// Itself, to downcast.
    fn as_any(&self) -> &dyn Any;
    /// True when `other` is of its type and equal.
    fn eq_dyn(&self, other: &dyn Any) -> bool;
}

impl<T: Any + fmt::Debug + PartialEq + Send + Sync> KindSettings for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn eq_dyn(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// Where an item sends messages by configuration: the settings the engine routes by,
/// read for the kinds whose catalog supports them ([`catalog::routed_by`]); empty for the
/// others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `TargetConfigNames` (services; routers: where a router without
    /// `BusinessRuleName` forwards every message).
    pub targets: Vec<String>,
    /// `BadMessageHandler` (routers): where a message goes that no target takes.
    pub bad_message_handler: Option<String>,
    /// `AlertOnBadMessage` (routers): alert when no target takes a message.
    pub alert_on_bad_message: bool,
}

/// What a full queue does (hie setting `Overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowStrategy {
    /// Stop reading upstream until there is room (TCP flow control carries it back).
    Block,
    /// Drop the oldest queued message, logged and counted.
    DropOldest,
    /// Refuse the new message (NAK to the sender).
    Reject,
}

/// Settings of every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonSettings {
    /// `AlertOnError`.
    pub alert_on_error: bool,
    /// hie `QueueSize`: bound of the item's queue.
    pub queue_size: u32,
    /// hie `Overflow`.
    pub overflow: OverflowStrategy,
    /// hie `QueueOrder` with its `PriorityMessageTypes` (items with a queue; services are
    /// always FIFO).
    pub queue_order: QueueOrder,
    /// hie `RestartPolicy`, `MaxRestarts`, `RestartDelay`.
    pub restart: RestartPolicy,
}

/// When a failed item instance is started again (hie settings `RestartPolicy`,
/// `MaxRestarts`, `RestartDelay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub when: RestartWhen,
    /// Restarts in a row allowed before the item stays failed (`OnFailure`). Default 10.
    pub max_restarts: u32,
    /// Wait before each restart. Default 5 s.
    pub delay: Duration,
}

/// hie `RestartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartWhen {
    /// `never`: a failed instance stays failed.
    Never,
    /// `on_failure`: started again up to `max_restarts` failures in a row.
    OnFailure,
    /// `always`: started again after every failure; `max_restarts` does not apply.
    Always,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            when: RestartWhen::OnFailure,
            max_restarts: 10,
            delay: Duration::from_secs(5),
        }
    }
}

/// `AckMode` of an HL7 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `Never`: no ACK.
    Never,
    /// `Immed`: ACK as soon as the message is durable (hie's default, as IRIS's).
    Immediate,
    /// `App`: relay the application ACK from the downstream operation.
    Application,
    /// `Msh`: as MSH-15/MSH-16 ask.
    Msh,
    /// `Byte`: a single ACK byte.
    Byte,
}

/// `BatchHandling` of an HL7 service: how the messages of a batch (`FHS`/`BHS` … `BTS`/`FTS`)
/// are taken. hie has no sessions: `1Session`, `Batch` and `Indiv` store and route each
/// message of the batch on its own; `Whole` stores and routes the batch as one document.
/// Every mode answers the batch with a batch of one ACK per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchHandling {
    /// `Whole` (Whole Batch): the batch, headers and trailers included, is one document.
    Whole,
    /// `1Session` (Single-Session Batch), IRIS's default.
    SingleSession,
    /// `Batch` (Multi-Session Batch).
    MultiSession,
    /// `Indiv` (Individual).
    Individual,
}

/// hie `CharsetValidation`: which messages are checked against the character set MSH-18
/// declares before they are stored (a message that fails gets `AR` and is not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetValidation {
    /// `Declared` (default): when MSH-18 names ASCII or UTF-8; an empty MSH-18 is not
    /// checked (IRIS reads it as `DefCharEncoding`, Latin-1 by default).
    Declared,
    /// `Strict`: as `Declared`, and an empty MSH-18 must be UTF-8.
    Strict,
    /// `Off`: no check.
    Off,
}

/// A duration that may be "forever" (IRIS `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Never time out.
    Forever,
    /// Seconds.
    Seconds(u32),
}

/// `StayConnected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StayConnected {
    /// `-1`: keep the connection open.
    Forever,
    /// `0`: close after each message.
    AfterEachMessage,
    /// `n`: close after n idle seconds.
    IdleSeconds(u32),
}

/// HL7 `Framing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Detect the framing from the first bytes.
    Flexible,
    /// No framing: one message per read or file.
    None,
    /// MLLP: 0x0B … 0x1C 0x0D.
    Mllp,
    /// MLLP with other start and end bytes (`MLLP<start>/<end>`).
    MllpBytes {
        /// Start byte.
        start: u8,
        /// End byte (followed by CR).
        end: u8,
    },
    /// Messages separated by LF.
    AsciiLf,
    /// Messages separated by CR.
    AsciiCr,
    /// Messages separated by CR LF.
    AsciiCrLf,
    /// `Ascii<a>[/<b>]`: message followed by byte a (and then b).
    AsciiBytes {
        /// First terminator byte.
        first: u8,
        /// Second terminator byte, if any.
        second: Option<u8>,
    },
    /// `LLP`: the older block framing.
    Llp,
    /// `MsgEnvelope`.
    MsgEnvelope,
    /// `MLLPMsgEnvelope`.
    MllpMsgEnvelope,
}

impl Framing {
    /// True for the framings hie can write after each message (file operations): a
    /// terminator or an MLLP block. `Flexible` only reads; `LLP` and the envelopes are
    /// not written by hie.
    pub fn terminates_output(self) -> bool {
        !matches!(
            self,
            Framing::Flexible | Framing::Llp | Framing::MsgEnvelope | Framing::MllpMsgEnvelope
        )
    }

    /// Parses a value accepted by [`catalog::is_framing`] (empty is not a framing).
    pub fn parse(value: &str) -> Option<Framing> {
        if !catalog::is_framing(value) {
            return None;
        }
        let named = match value {
            "Flexible" => Some(Framing::Flexible),
            "None" => Some(Framing::None),
            "MLLP" => Some(Framing::Mllp),
            "AsciiLF" => Some(Framing::AsciiLf),
            "AsciiCR" => Some(Framing::AsciiCr),
            "AsciiCRLF" => Some(Framing::AsciiCrLf),
            "LLP" => Some(Framing::Llp),
            "MsgEnvelope" => Some(Framing::MsgEnvelope),
            "MLLPMsgEnvelope" => Some(Framing::MllpMsgEnvelope),
            _ => None,
        };
        if named.is_some() {
            return named;
        }
        let (mllp, rest) = match value.strip_prefix("MLLP") {
            Some(rest) => (true, rest),
            None => (false, value.strip_prefix("Ascii")?),
        };
        let (a, b) = match rest.split_once('/') {
            Some((a, b)) => (a.parse::<u8>().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (rest.parse::<u8>().ok()?, None),
        };
        Some(if mllp {
            Framing::MllpBytes {
                start: a,
                end: b.unwrap_or(0x1C),
            }
        } else {
            Framing::AsciiBytes {
                first: a,
                second: b,
            }
        })
    }
}

pub use crate::reply_code_actions::ReplyCodeActions;

/// Smallest `RetryInterval` hie waits between attempts, in seconds: IRIS accepts 0, which
/// would retry in a busy loop (tens of thousands of attempts a second); hie waits 1 s.
pub const RETRY_INTERVAL_MIN_S: u32 = 1;

fn parse_reply_code_actions(value: &str) -> Result<ReplyCodeActions, String> {
    ReplyCodeActions::parse(value).map_err(|e| e.to_string())
}

/// Checks one raw value against its spec; `Err` says why it is not valid.
pub fn check_value(spec: &SettingSpec, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    match spec.ty {
        ValueType::Bool => parse_bool(value).map(|_| ()),
        ValueType::Int { min, max } => parse_int(value, min, max).map(|_| ()),
        ValueType::Seconds { max } => parse_seconds(value, max).map(|_| ()),
        ValueType::Port => parse_port(value).map(|_| ()),
        ValueType::Text | ValueType::Target | ValueType::Targets => Ok(()),
        ValueType::OneOf(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not one of {}", values.join(", ")))
            }
        }
        ValueType::Framing => Framing::parse(value)
            .map(|_| ())
            .ok_or_else(|| format!("{value:?} is not an HL7 framing")),
        ValueType::ReplyCodeActions => parse_reply_code_actions(value).map(|_| ()),
        ValueType::MessageTypes => priority::parse_patterns(value).map(|_| ()),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (0 or 1)")),
    }
}

fn parse_int(value: &str, min: i64, max: i64) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is out of range {min}..={max}")),
        Err(_) => Err(format!("{value:?} is not an integer")),
    }
}

/// Seconds in `0..=max`, fractions allowed.
pub(crate) fn parse_seconds(value: &str, max: i64) -> Result<Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=max as f64).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Ok(_) => Err(format!("{value:?} is out of range 0..={max} seconds")),
        Err(_) => Err(format!("{value:?} is not a number of seconds")),
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{value:?} is not a TCP port (1..=65535)")),
    }
}

/// Splits a comma list (and `;` when `semicolons`), trimming and dropping empty entries.
pub fn split_list(value: &str, semicolons: bool) -> Vec<String> {
    value
        .split(|c| c == ',' || (semicolons && c == ';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads one item's settings through its kind's setting groups (defaults, ranges),
/// collecting diagnostics at the line of each bad value: what a kind's
/// [`HostKind::resolve`] reads with.
#[derive(Debug)]
pub struct Reader<'a> {
    item: &'a Item,
    kind: &'static dyn HostKind,
    file: &'a Path,
    errors: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    /// The effective text of a setting (raw if non-empty or text-typed, else default) and
    /// the line it came from.
    fn text(&mut self, target: SettingTarget, name: &str) -> (String, u32) {
        let Some(spec) = catalog::spec(self.kind, target, name) else {
            // Our own tables are wrong: say so as a diagnostic rather than panic on a config.
            self.error(
                self.item.source.line,
                format!("hie bug: no catalog entry for {name}"),
            );
            return (String::new(), 0);
        };
        match self.item.raw(target).get(name) {
            Some(raw) if !raw.value.is_empty() || is_textual(spec.ty) => {
                (raw.value.clone(), raw.line)
            }
            _ => (spec.default.to_owned(), self.item.source.line),
        }
    }

    fn error(&mut self, line: u32, message: String) {
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            item: Some(self.item.name.clone()),
            message,
        });
    }

    fn parsed<T>(
        &mut self,
        target: SettingTarget,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
        fallback: T,
    ) -> T {
        let (value, line) = self.text(target, name);
        match parse(&value) {
            Ok(v) => v,
            Err(why) => {
                self.error(line, format!("setting {name}: {why}"));
                fallback
            }
        }
    }

    pub fn int(&mut self, target: SettingTarget, name: &str) -> i64 {
        let (min, max) = match catalog::spec(self.kind, target, name).map(|s| s.ty) {
            Some(ValueType::Int { min, max }) => (min, max),
            _ => (i64::MIN, i64::MAX),
        };
        self.parsed(target, name, |v| parse_int(v, min, max), min.max(0))
    }

    pub fn u32(&mut self, target: SettingTarget, name: &str) -> u32 {
        u32::try_from(self.int(target, name)).unwrap_or(0)
    }

    pub fn timeout(&mut self, target: SettingTarget, name: &str) -> Timeout {
        match self.int(target, name) {
            n if n < 0 => Timeout::Forever,
            n => Timeout::Seconds(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }

    pub fn stay_connected(&mut self, target: SettingTarget) -> StayConnected {
        match self.int(target, "StayConnected") {
            n if n < 0 => StayConnected::Forever,
            0 => StayConnected::AfterEachMessage,
            n => StayConnected::IdleSeconds(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }

    pub fn bool(&mut self, target: SettingTarget, name: &str) -> bool {
        self.parsed(target, name, parse_bool, false)
    }

    pub fn port(&mut self, target: SettingTarget, name: &str) -> u16 {
        let (value, _) = self.text(target, name);
        if value.is_empty() {
            // Missing required values are reported once, by the required-settings check.
            return 0;
        }
        self.parsed(target, name, parse_port, 0)
    }

    pub fn string(&mut self, target: SettingTarget, name: &str) -> String {
        self.text(target, name).0
    }

    pub fn optional(&mut self, target: SettingTarget, name: &str) -> Option<String> {
        Some(self.string(target, name)).filter(|s| !s.is_empty())
    }

    pub fn list(&mut self, target: SettingTarget, name: &str, semicolons: bool) -> Vec<String> {
        split_list(&self.string(target, name), semicolons)
    }

    /// `Framing` of an item that writes messages: one hie can write (see
    /// [`Framing::terminates_output`]).
    pub fn output_framing(&mut self) -> Framing {
        self.parsed(
            SettingTarget::Host,
            "Framing",
            |v| match Framing::parse(v) {
                Some(f) if f.terminates_output() => Ok(f),
                Some(_) => Err(format!(
                    "{v:?} is not a framing hie writes; use None, AsciiLF, AsciiCR, \
                     AsciiCRLF, Ascii<n>[/<n>], MLLP or MLLP<n>/<n>"
                )),
                None => Err(format!("{v:?} is not an HL7 framing")),
            },
            Framing::AsciiLf,
        )
    }

    /// `RetryInterval`, raised to [`RETRY_INTERVAL_MIN_S`] (validation warns when it is).
    pub fn retry_interval(&mut self) -> u32 {
        self.u32(SettingTarget::Host, "RetryInterval")
            .max(RETRY_INTERVAL_MIN_S)
    }

    /// `LocalInterface` of a listening adapter: its first word is the IP address (IRIS
    /// writes the interface name after it); empty means every interface.
    pub fn local_interface(&mut self) -> IpAddr {
        let any = IpAddr::from([0, 0, 0, 0]);
        self.parsed(
            SettingTarget::Adapter,
            "LocalInterface",
            |v| match v.split_whitespace().next() {
                None => Ok(any),
                Some(ip) => ip.parse().map_err(|_| {
                    format!("{v:?} is not an IP address (of an interface to listen on)")
                }),
            },
            any,
        )
    }

    pub fn reply_code_actions(&mut self) -> ReplyCodeActions {
        self.parsed(
            SettingTarget::Host,
            "ReplyCodeActions",
            parse_reply_code_actions,
            ReplyCodeActions::default(),
        )
    }

    /// An item's typed settings: [`Reader::common`], then [`Reader::routes`], then its
    /// kind's own, as `read` reads them (in this order, so diagnostics follow it).
    pub fn settings<T: KindSettings>(&mut self, read: impl FnOnce(&mut Self) -> T) -> ItemSettings {
        let common = self.common();
        let routes = self.routes();
        let own = Arc::new(read(self));
        ItemSettings {
            host: self.kind,
            common,
            routes,
            own,
        }
    }

    /// The settings the engine routes by, for the kinds whose catalog supports them.
    pub fn routes(&mut self) -> Routes {
        let h = SettingTarget::Host;
        let routed = catalog::routed_by(self.kind);
        let supported =
            |r: &Self, name| catalog::spec(r.kind, h, name).is_some_and(|s| s.supported);
        let targets = if routed.contains(&"TargetConfigNames") {
            self.list(h, "TargetConfigNames", false)
        } else {
            Vec::new()
        };
        let bad_message_handler = if routed.contains(&"BadMessageHandler") {
            self.optional(h, "BadMessageHandler")
        } else {
            None
        };
        Routes {
            targets,
            bad_message_handler,
            alert_on_bad_message: supported(self, "AlertOnBadMessage")
                && self.bool(h, "AlertOnBadMessage"),
        }
    }

    /// Settings every host has.
    pub fn common(&mut self) -> CommonSettings {
        let h = SettingTarget::Host;
        let (queue_size, overflow) = self.queue_bound();
        CommonSettings {
            alert_on_error: self.bool(h, "AlertOnError"),
            queue_size,
            overflow,
            queue_order: self.queue_order(),
            restart: self.restart_policy(),
        }
    }

    /// `QueueSize` and `Overflow`, for families with a queue (services have none: the
    /// catalog does not list them there, and the defaults stand in).
    fn queue_bound(&mut self) -> (u32, OverflowStrategy) {
        let h = SettingTarget::Host;
        if catalog::spec(self.kind, h, "QueueSize").is_none() {
            return (10_000, OverflowStrategy::Block);
        }
        let overflow = self.parsed(
            h,
            "Overflow",
            |v| match v {
                "block" => Ok(OverflowStrategy::Block),
                "drop_oldest" => Ok(OverflowStrategy::DropOldest),
                "reject" => Ok(OverflowStrategy::Reject),
                _ => Err(format!(
                    "{v:?} is not one of {}",
                    OVERFLOW_VALUES.join(", ")
                )),
            },
            OverflowStrategy::Block,
        );
        (self.u32(h, "QueueSize"), overflow)
    }

    fn restart_policy(&mut self) -> RestartPolicy {
        let h = SettingTarget::Host;
        let default = RestartPolicy::default();
        let when = self.parsed(
            h,
            "RestartPolicy",
            |v| match v.to_ascii_lowercase().as_str() {
                "never" => Ok(RestartWhen::Never),
                "on_failure" | "onfailure" => Ok(RestartWhen::OnFailure),
                "always" => Ok(RestartWhen::Always),
                _ => Err(format!(
                    "{v:?} is not one of {}",
                    RESTART_POLICY_VALUES.join(", ")
                )),
            },
            default.when,
        );
        let max = match catalog::spec(self.kind, h, "RestartDelay").map(|s| s.ty) {
            Some(ValueType::Seconds { max }) => max,
            _ => i64::MAX,
        };
        RestartPolicy {
            when,
            max_restarts: self.u32(h, "MaxRestarts"),
            delay: self.parsed(h, "RestartDelay", |v| parse_seconds(v, max), default.delay),
        }
    }

    /// `QueueOrder` and `PriorityMessageTypes`, for families that have them: `priority`
    /// needs at least one message type (an empty list would be FIFO in disguise).
    fn queue_order(&mut self) -> QueueOrder {
        let h = SettingTarget::Host;
        if catalog::spec(self.kind, h, "QueueOrder").is_none() {
            return QueueOrder::Fifo;
        }
        let priority = self.parsed(
            h,
            "QueueOrder",
            |v| match v {
                "fifo" => Ok(false),
                "priority" => Ok(true),
                _ => Err(format!(
                    "{v:?} is not one of {}",
                    QUEUE_ORDER_VALUES.join(", ")
                )),
            },
            false,
        );
        let patterns = self.parsed(
            h,
            "PriorityMessageTypes",
            priority::parse_patterns,
            Vec::new(),
        );
        if !priority {
            return QueueOrder::Fifo;
        }
        if patterns.is_empty() && !self.has_bad_value(h, "PriorityMessageTypes") {
            let (_, line) = self.text(h, "QueueOrder");
            self.error(
                line,
                "setting QueueOrder: priority needs PriorityMessageTypes, the MSH-9 types \
                 that go first (e.g. ADT^A40,ORM^*)"
                    .to_owned(),
            );
        }
        QueueOrder::Priority(patterns)
    }

    /// True when `name` has a value that does not parse (already reported).
    fn has_bad_value(&mut self, target: SettingTarget, name: &str) -> bool {
        let (value, _) = self.text(target, name);
        catalog::spec(self.kind, target, name)
            .is_some_and(|spec| check_value(spec, &value).is_err())
    }

    pub fn ack_mode(&mut self) -> AckMode {
        self.parsed(
            SettingTarget::Host,
            "AckMode",
            |v| match v {
                "Never" => Ok(AckMode::Never),
                "Immed" => Ok(AckMode::Immediate),
                "App" => Ok(AckMode::Application),
                "Msh" => Ok(AckMode::Msh),
                "Byte" => Ok(AckMode::Byte),
                _ => Err(format!("{v:?} is not one of Never, Immed, App, Msh, Byte")),
            },
            AckMode::Immediate,
        )
    }
}

impl Reader<'_> {
    pub fn batch_handling(&mut self) -> BatchHandling {
        self.parsed(
            SettingTarget::Host,
            "BatchHandling",
            |v| match v {
                "1Session" => Ok(BatchHandling::SingleSession),
                "Batch" => Ok(BatchHandling::MultiSession),
                "Indiv" => Ok(BatchHandling::Individual),
                "Whole" => Ok(BatchHandling::Whole),
                _ => Err(format!("{v:?} is not one of 1Session, Batch, Indiv, Whole")),
            },
            BatchHandling::SingleSession,
        )
    }

    pub fn charset_validation(&mut self) -> CharsetValidation {
        self.parsed(
            SettingTarget::Host,
            "CharsetValidation",
            |v| match v {
                "Declared" => Ok(CharsetValidation::Declared),
                "Strict" => Ok(CharsetValidation::Strict),
                "Off" => Ok(CharsetValidation::Off),
                _ => Err(format!("{v:?} is not one of Declared, Strict, Off")),
            },
            CharsetValidation::Declared,
        )
    }
}

fn is_textual(ty: ValueType) -> bool {
    matches!(ty, ValueType::Text | ValueType::Target | ValueType::Targets)
}

/// Resolves the typed settings of `item` (of a class of `kind`), pushing every bad value
/// to `errors` at its line. The result is usable even when errors were pushed (bad values
/// fall back to safe values), but a production with errors must not run.
pub fn resolve(
    item: &Item,
    kind: &'static dyn HostKind,
    file: &Path,
    errors: &mut Vec<Diagnostic>,
) -> ItemSettings {
    let mut r = Reader {
        item,
        kind,
        file,
        errors,
    };
    kind.resolve(&mut r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::model::SettingValue;
    use crate::items::kinds;
    use crate::items::kinds::hl7_file_service::Hl7FileServiceSettings;
    use crate::items::kinds::hl7_tcp_service::Hl7TcpServiceSettings;

    /// The kind's own settings of `resolved` as `T`, with its diagnostics.
    fn of<T: KindSettings + Clone>(
        (resolved, errors): (ItemSettings, Vec<Diagnostic>),
    ) -> (Option<T>, Vec<Diagnostic>) {
        (resolved.of::<T>().cloned(), errors)
    }

    /// `item`'s settings resolved by the kind of its class (the kinds' tests use it too).
    pub(crate) fn resolve_by_class(item: &Item, errors: &mut Vec<Diagnostic>) -> ItemSettings {
        let kind = kinds::kind_of_class(&item.class).expect("a class hie runs");
        resolve(item, kind, Path::new("p"), errors)
    }

    /// `item`'s own settings as its kind resolves them, as `T` (a test of that kind).
    pub(crate) fn own_settings<T: KindSettings + Clone>(
        item: &Item,
        errors: &mut Vec<Diagnostic>,
    ) -> T {
        let resolved = resolve_by_class(item, errors);
        resolved
            .of::<T>()
            .cloned()
            .expect("the settings of the item's kind")
    }

    pub(crate) fn item_with(class: &str, settings: &[(SettingTarget, &str, &str)]) -> Item {
        let mut item = Item::new("X", class);
        for (i, (target, name, value)) in settings.iter().enumerate() {
            let raw = SettingValue {
                value: (*value).to_owned(),
                line: 10 + i as u32,
            };
            match target {
                SettingTarget::Host => item.host_settings.insert((*name).to_owned(), raw),
                SettingTarget::Adapter => item.adapter_settings.insert((*name).to_owned(), raw),
            };
        }
        item
    }

    #[test]
    fn bad_number_is_reported_at_the_setting_line() {
        let item = item_with(
            "EnsLib.HL7.Operation.TCPOperation",
            &[
                (SettingTarget::Adapter, "IPAddress", "h"),
                (SettingTarget::Adapter, "Port", "66x1"),
                (SettingTarget::Host, "FailureTimeout", "-2"),
            ],
        );
        let mut errors = Vec::new();
        resolve_by_class(&item, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].line, 11);
        assert!(errors[0].message.contains("Port"), "{}", errors[0].message);
        assert_eq!(errors[1].line, 12);
        assert!(
            errors[1].message.contains("out of range"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn framing_parses_byte_forms() {
        assert_eq!(
            Framing::parse("Ascii115/101"),
            Some(Framing::AsciiBytes {
                first: 115,
                second: Some(101)
            })
        );
        assert_eq!(
            Framing::parse("MLLP11/28"),
            Some(Framing::MllpBytes { start: 11, end: 28 })
        );
        assert_eq!(Framing::parse("Fast"), None);
    }

    #[test]
    fn batch_handling_runs_every_mode_and_charset_validation_defaults_to_declared() {
        let resolved = |class: &str, value: &str, extra: (&str, &str)| {
            let mut settings = vec![
                (SettingTarget::Adapter, "Port", "2575"),
                (SettingTarget::Adapter, "FilePath", "/in"),
                (SettingTarget::Host, "BatchHandling", value),
            ];
            if !extra.0.is_empty() {
                settings.push((SettingTarget::Host, extra.0, extra.1));
            }
            let item = item_with(class, &settings);
            let mut errors = Vec::new();
            let out = resolve_by_class(&item, &mut errors);
            (out, errors)
        };
        let tcp = "EnsLib.HL7.Service.TCPService";
        for (value, mode) in [
            ("", BatchHandling::SingleSession),
            ("1Session", BatchHandling::SingleSession),
            ("Batch", BatchHandling::MultiSession),
            ("Indiv", BatchHandling::Individual),
        ] {
            let (Some(s), errors) = of::<Hl7TcpServiceSettings>(resolved(tcp, value, ("", "")))
            else {
                panic!("wrong family");
            };
            assert!(errors.is_empty(), "{value}: {errors:?}");
            assert_eq!(s.batch_handling, mode);
            assert_eq!(s.charset_validation, CharsetValidation::Declared);
        }
        let file = "EnsLib.HL7.Service.FileService";
        let (Some(s), errors) = of::<Hl7FileServiceSettings>(resolved(file, "Whole", ("", "")))
        else {
            panic!("wrong family");
        };
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.batch_handling, BatchHandling::Whole);
        let (_, errors) = resolved(file, "whole", ("", ""));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (Some(s), errors) =
            of::<Hl7FileServiceSettings>(resolved(file, "Indiv", ("CharsetValidation", "Strict")))
        else {
            panic!("wrong family");
        };
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.charset_validation, CharsetValidation::Strict);
        let (_, errors) = resolved(tcp, "", ("CharsetValidation", "Yes"));
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("CharsetValidation")),
            "{errors:?}"
        );
    }

    fn operation_queue(host: &[(&str, &str)]) -> (CommonSettings, Vec<Diagnostic>) {
        let mut settings = vec![
            (SettingTarget::Adapter, "IPAddress", "h"),
            (SettingTarget::Adapter, "Port", "6661"),
        ];
        settings.extend(host.iter().map(|(n, v)| (SettingTarget::Host, *n, *v)));
        let item = item_with("EnsLib.HL7.Operation.TCPOperation", &settings);
        let mut errors = Vec::new();
        let resolved = resolve_by_class(&item, &mut errors);
        (resolved.common.clone(), errors)
    }

    #[test]
    fn queue_order_is_fifo_by_default_and_priority_takes_its_message_types() {
        let (common, errors) = operation_queue(&[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(common.queue_order, QueueOrder::Fifo);
        let (common, errors) = operation_queue(&[
            ("QueueOrder", "priority"),
            ("PriorityMessageTypes", "ADT^A40, ORM_*"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let QueueOrder::Priority(patterns) = &common.queue_order else {
            panic!("{:?}", common.queue_order);
        };
        let shown: Vec<String> = patterns.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["ADT^A40", "ORM^*"]);
    }

    #[test]
    fn restart_settings_take_fractional_delays_and_report_bad_values_at_their_line() {
        let (common, errors) = operation_queue(&[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(common.restart, RestartPolicy::default());
        let (common, errors) = operation_queue(&[
            ("RestartPolicy", "always"),
            ("MaxRestarts", "3"),
            ("RestartDelay", "0.25"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            common.restart,
            RestartPolicy {
                when: RestartWhen::Always,
                max_restarts: 3,
                delay: Duration::from_millis(250),
            }
        );
        let (_, errors) = operation_queue(&[
            ("RestartPolicy", "sometimes"),
            ("MaxRestarts", "2000000"),
            ("RestartDelay", "-1"),
        ]);
        let found: Vec<(u32, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(errors.len(), 3, "{found:?}");
        assert!(found[0].0 == 12 && found[0].1.contains("never, on_failure, always"));
        assert!(found[1].0 == 13 && found[1].1.contains("out of range 0..=1000000"));
        assert!(found[2].0 == 14 && found[2].1.contains("RestartDelay"));
        assert!(errors.iter().all(|e| e.item.as_deref() == Some("X")));
        let (_, errors) = operation_queue(&[("RestartDelay", "soon")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("not a number of seconds"));
    }

    #[test]
    fn priority_without_message_types_or_with_a_bad_pattern_is_an_error_at_its_line() {
        let (_, errors) = operation_queue(&[("QueueOrder", "priority")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 12);
        assert_eq!(errors[0].item.as_deref(), Some("X"));
        assert!(
            errors[0].message.contains("PriorityMessageTypes"),
            "{}",
            errors[0].message
        );
        let (_, errors) = operation_queue(&[
            ("QueueOrder", "priority"),
            ("PriorityMessageTypes", "ADT^A40,ADT^^"),
        ]);
        assert_eq!(errors.len(), 1, "one error, for the pattern: {errors:?}");
        assert_eq!(errors[0].line, 13);
        assert!(errors[0].message.contains("ADT^^"), "{}", errors[0].message);
        let (_, errors) = operation_queue(&[("QueueOrder", "lifo")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("fifo, priority"));
    }

    #[test]
    fn services_have_no_queue_order() {
        let item = item_with(
            "EnsLib.HL7.Service.TCPService",
            &[(SettingTarget::Adapter, "Port", "2575")],
        );
        let mut errors = Vec::new();
        let resolved = resolve_by_class(&item, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(resolved.common.queue_order, QueueOrder::Fifo);
        assert!(
            catalog::spec(
                &kinds::hl7_tcp_service::KIND,
                SettingTarget::Host,
                "QueueOrder"
            )
            .is_none()
        );
    }

    #[test]
    fn lists_split_on_commas_and_on_semicolons_when_asked() {
        assert_eq!(
            split_list("a@x; b@y, ,c@z", true),
            vec!["a@x", "b@y", "c@z"]
        );
        assert_eq!(split_list("A, B", false), vec!["A", "B"]);
    }
}
