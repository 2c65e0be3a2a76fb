//! The production model: what every reader produces, every writer consumes and the engine
//! runs from.
//!
//! A [`Production`] is a name, a description, the IRIS production attributes that must
//! round-trip (`TestingEnabled`, `LogGeneralTraceEvents`, `ActorPoolSize`), hie's own
//! [`EngineSettings`] and the ordered list of [`Item`]s.
//!
//! Invariants:
//! - Item order is file order; it is the order of shard placement and of every output.
//! - Raw settings are kept verbatim (`host_settings`, `adapter_settings`, keyed by their
//!   IRIS name, sorted by name so output is deterministic). They are the source of truth
//!   for conversion; the typed [`ItemSettings`] is derived from them by validation, with
//!   IRIS defaults applied, so the engine never parses a string.
//! - [`SourceLocation`]s point into the file the item came from (1-based lines; 0 when a
//!   model was built in memory). They are diagnostics only and are ignored by
//!   [`Production::same_definition`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::settings::ItemSettings;
use crate::items::kind::{HostKind, Listening};

/// Default WAL segment size: 64 MiB.
pub const WAL_SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest WAL segment accepted: 1 MiB.
pub const WAL_SEGMENT_BYTES_MIN: u64 = 1024 * 1024;
/// Smallest `[engine] inbound_buffer_bytes_max`: 1 MiB.
pub const INBOUND_BUFFER_BYTES_MIN: u64 = 1 << 20;
/// Largest `[engine] inbound_buffer_bytes_max`: 1 TiB.
pub const INBOUND_BUFFER_BYTES_MAX: u64 = 1 << 40;
/// Largest WAL segment accepted: 4 GiB.
pub const WAL_SEGMENT_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// WAL segments are written with O_DIRECT, so their size is a multiple of this.
pub const WAL_SEGMENT_ALIGN_BYTES: u64 = 4096;
/// Most shards a production may ask for.
pub const SHARDS_MAX: usize = 1024;
/// Largest `PoolSize` (and `ActorPoolSize`) accepted.
pub const POOL_SIZE_MAX: u32 = 256;
/// IRIS's default `ActorPoolSize` when the production does not give one.
pub const ACTOR_POOL_SIZE_DEFAULT: u32 = 2;
/// Longest WAL sync interval accepted, in milliseconds.
pub const WAL_SYNC_INTERVAL_MS_MAX: u32 = 60_000;

/// One production: a named set of items and their settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Production {
    /// `Name` attribute of `<Production>` (the IRIS class name by convention).
    pub name: String,
    /// `<Description>` text, possibly multi-line; empty when absent.
    pub description: String,
    /// `TestingEnabled` attribute, `None` when absent.
    pub testing_enabled: Option<bool>,
    /// `LogGeneralTraceEvents` attribute, `None` when absent.
    pub log_general_trace_events: Option<bool>,
    /// `<ActorPoolSize>`: instances shared by processes whose `PoolSize` is 0.
    pub actor_pool_size: Option<u32>,
    /// hie's own engine settings (not part of IRIS; TOML `[engine]`).
    pub engine: EngineSettings,
    /// Items in file order.
    pub items: Vec<Item>,
}

impl Production {
    /// The item named `name`, if any.
    pub fn item(&self, name: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.name == name)
    }

    /// `ActorPoolSize` with the IRIS default applied.
    pub fn actor_pool_size_or_default(&self) -> u32 {
        self.actor_pool_size.unwrap_or(ACTOR_POOL_SIZE_DEFAULT)
    }

    /// True when both define the same production, ignoring where items came from and the
    /// derived typed settings: the equality the round-trip guarantees are about.
    pub fn same_definition(&self, other: &Production) -> bool {
        self.without_derived() == other.without_derived()
    }

    fn without_derived(&self) -> Production {
        let mut copy = self.clone();
        copy.engine.source_dir = None;
        for item in &mut copy.items {
            item.source = SourceLocation::default();
            item.settings = None;
        }
        copy
    }
}

/// hie's engine settings. Defaults are documented per field; the TOML form writes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Number of shards (pinned executors). `None`: one per online core.
    pub shards: Option<usize>,
    /// Directory holding the WAL and message store. Default `data`.
    pub data_dir: PathBuf,
    /// When an append counts as durable. Default [`WalSync::Fsync`].
    pub wal_sync: WalSync,
    /// WAL segment size in bytes, a multiple of 4096 in 1 MiB..=4 GiB. Default 64 MiB.
    pub wal_segment_bytes: u64,
    /// Address of the admin HTTP endpoint. `None`: `hie run`'s default (127.0.0.1:9090,
    /// unless `--admin` says otherwise).
    pub admin_address: Option<SocketAddr>,
    /// File holding the bearer token the admin endpoint requires (except for its health
    /// probes). `None`: no token.
    pub admin_token_file: Option<PathBuf>,
    /// Budget of the read buffers of every inbound connection together, in bytes (frames
    /// in progress). Default 1 GiB; 1 MiB..=1 TiB.
    pub inbound_buffer_bytes_max: u64,
    /// Folders searched for rule classes (`BusinessRuleName`) after the production file's
    /// own folder; relative ones are taken from that folder. Default none.
    pub rules_path: Vec<PathBuf>,
    /// Load DTL classes holding `<code>` / `<sql>` blocks (ObjectScript hie cannot run)
    /// without those blocks; otherwise such a class does not load. Default false.
    pub transform_skip_code: bool,
    /// The folder of the file the production was read from (set by [`super::read`] and
    /// [`super::analyze`]; not part of any file form). `None` for a model built in memory:
    /// rule classes are then looked for in `rules_path` only.
    pub source_dir: Option<PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            shards: None,
            data_dir: PathBuf::from("data"),
            wal_sync: WalSync::Fsync,
            wal_segment_bytes: WAL_SEGMENT_BYTES_DEFAULT,
            admin_address: None,
            admin_token_file: None,
            inbound_buffer_bytes_max: hie_net::INBOUND_BUFFER_BYTES_MAX_DEFAULT as u64,
            rules_path: Vec::new(),
            transform_skip_code: false,
            source_dir: None,
        }
    }
}

/// WAL durability mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// `fdatasync` every group commit before acknowledging.
    Fsync,
    /// `fdatasync` at most every `interval_ms` milliseconds (1..=60000); a crash may lose
    /// acknowledged messages received within the interval.
    Interval {
        /// Milliseconds between syncs.
        interval_ms: u32,
    },
    /// Never sync explicitly: the page cache decides. For tests and benchmarks.
    None,
}

impl WalSync {
    /// The TOML spelling: `fsync`, `none`, `interval:<ms>ms`.
    pub fn to_text(self) -> String {
        match self {
            WalSync::Fsync => "fsync".to_owned(),
            WalSync::None => "none".to_owned(),
            WalSync::Interval { interval_ms } => format!("interval:{interval_ms}ms"),
        }
    }

    /// Parses the TOML spelling; the error says what is accepted.
    pub fn parse(text: &str) -> Result<WalSync, String> {
        match text {
            "fsync" => return Ok(WalSync::Fsync),
            "none" => return Ok(WalSync::None),
            _ => {}
        }
        let expected = || {
            format!(
                "wal_sync {text:?} is not one of \"fsync\", \"none\", \"interval:<ms>ms\" \
                 (1..={WAL_SYNC_INTERVAL_MS_MAX})"
            )
        };
        let digits = text
            .strip_prefix("interval:")
            .and_then(|rest| rest.strip_suffix("ms"))
            .ok_or_else(expected)?;
        match digits.parse::<u32>() {
            Ok(ms) if (1..=WAL_SYNC_INTERVAL_MS_MAX).contains(&ms) => {
                Ok(WalSync::Interval { interval_ms: ms })
            }
            _ => Err(expected()),
        }
    }
}

/// What an item does in the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// Inbound: receives messages from outside.
    Service,
    /// Routing or transformation.
    Process,
    /// Outbound: delivers messages outside.
    Operation,
    /// A class hie does not know (custom ObjectScript): its kind cannot be told.
    Unknown,
}

impl ItemKind {
    /// Lower-case name, as printed by `hie check`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Service => "service",
            ItemKind::Process => "process",
            ItemKind::Operation => "operation",
            ItemKind::Unknown => "unknown",
        }
    }
}

/// Whether a setting belongs to the host (the item class) or its adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingTarget {
    /// `Target="Host"`.
    Host,
    /// `Target="Adapter"`.
    Adapter,
}

impl SettingTarget {
    /// The IRIS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SettingTarget::Host => "Host",
            SettingTarget::Adapter => "Adapter",
        }
    }
}

/// Where something was defined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceLocation {
    /// The file as given to the loader.
    pub file: PathBuf,
    /// 1-based line; 0 when unknown.
    pub line: u32,
}

/// One raw setting value and the line it was written on (0 when unknown).
#[derive(Debug, Clone, Default, Eq)]
pub struct SettingValue {
    /// The value exactly as written (CDATA sections joined, entities decoded).
    pub value: String,
    /// 1-based line of the `<Setting>` element or TOML key; ignored by equality.
    pub line: u32,
}

impl PartialEq for SettingValue {
    fn eq(&self, other: &Self) -> bool {
        // A value read from XML and the same value read back from TOML are the same setting.
        self.value == other.value
    }
}

impl SettingValue {
    /// A value with no known line.
    pub fn new(value: impl Into<String>) -> Self {
        SettingValue {
            value: value.into(),
            line: 0,
        }
    }
}

/// Raw settings of one target, by IRIS name.
pub type RawSettings = BTreeMap<String, SettingValue>;

/// One configured item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `Name`: unique within the production.
    pub name: String,
    /// `ClassName`.
    pub class: String,
    /// Derived from `class` by the catalog.
    pub kind: ItemKind,
    /// `Category`: a comma list, kept verbatim.
    pub category: String,
    /// `Comment`, possibly multi-line.
    pub comment: String,
    /// `PoolSize`: instances to run; 0 for a process means "use the actor pool".
    pub pool_size: u32,
    /// `Enabled`.
    pub enabled: bool,
    /// `Foreground` (IRIS debugging aid; recorded, not used).
    pub foreground: bool,
    /// `LogTraceEvents`.
    pub log_trace_events: bool,
    /// `Schedule`: empty, or an IRIS schedule string / schedule spec name.
    pub schedule: String,
    /// `<Setting Target="Adapter">` values.
    pub adapter_settings: RawSettings,
    /// `<Setting Target="Host">` values.
    pub host_settings: RawSettings,
    /// Where the `<Item>` (or TOML `[[item]]`) was written.
    pub source: SourceLocation,
    /// Typed settings, set by validation; `None` before it, and for items hie does not
    /// run.
    pub settings: Option<ItemSettings>,
}

impl Item {
    /// A new item with IRIS's attribute defaults (PoolSize 1, enabled) and no settings.
    pub fn new(name: impl Into<String>, class: impl Into<String>) -> Item {
        let class = class.into();
        Item {
            name: name.into(),
            kind: super::catalog::kind_of(&class),
            class,
            category: String::new(),
            comment: String::new(),
            pool_size: 1,
            enabled: true,
            foreground: false,
            log_trace_events: false,
            schedule: String::new(),
            adapter_settings: RawSettings::new(),
            host_settings: RawSettings::new(),
            source: SourceLocation::default(),
            settings: None,
        }
    }

    /// The raw settings of `target`.
    pub fn raw(&self, target: SettingTarget) -> &RawSettings {
        match target {
            SettingTarget::Host => &self.host_settings,
            SettingTarget::Adapter => &self.adapter_settings,
        }
    }

    /// The raw value of setting `name` of `target`, if written.
    pub fn raw_value(&self, target: SettingTarget, name: &str) -> Option<&str> {
        self.raw(target).get(name).map(|v| v.value.as_str())
    }

    /// Its kind (`items::kinds`) and typed settings, once validation resolved them.
    pub fn resolved(&self) -> Option<(&'static dyn HostKind, &ItemSettings)> {
        self.settings.as_ref().map(|s| (s.host, s))
    }

    /// Where it listens, if its kind listens on TCP ([`HostKind::listens`]).
    pub fn listens(&self) -> Option<Listening> {
        let (kind, settings) = self.resolved()?;
        kind.listens(settings)
    }

    /// The host and port it connects to, if its kind connects out over TCP
    /// ([`HostKind::connects_to`]).
    pub fn connects_to(&self) -> Option<(&str, u16)> {
        let (kind, settings) = self.resolved()?;
        kind.connects_to(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_sync_text_round_trips_every_mode() {
        for mode in [
            WalSync::Fsync,
            WalSync::None,
            WalSync::Interval { interval_ms: 10 },
        ] {
            assert_eq!(WalSync::parse(&mode.to_text()), Ok(mode));
        }
    }

    #[test]
    fn wal_sync_rejects_zero_interval_and_unknown_words() {
        assert!(WalSync::parse("interval:0ms").is_err());
        assert!(WalSync::parse("interval:10").is_err());
        assert!(WalSync::parse("always").is_err());
    }

    #[test]
    fn same_definition_ignores_source_lines() {
        let mut a = Item::new("A", "EnsLib.HL7.Operation.TCPOperation");
        a.host_settings.insert(
            "Port".into(),
            SettingValue {
                value: "1".into(),
                line: 7,
            },
        );
        let mut b = a.clone();
        b.source.line = 99;
        b.host_settings.get_mut("Port").unwrap().line = 3;
        let p = |item: Item| Production {
            name: "P".into(),
            description: String::new(),
            testing_enabled: None,
            log_general_trace_events: None,
            actor_pool_size: None,
            engine: EngineSettings::default(),
            items: vec![item],
        };
        assert!(p(a.clone()).same_definition(&p(b)));
        let mut c = a.clone();
        c.pool_size = 2;
        assert!(!p(a).same_definition(&p(c)));
    }
}
