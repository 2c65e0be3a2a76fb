//! The kind `EnsLib.HL7.Service.TCPService`: HL7 over MLLP/TCP, inbound. Its runtime is
//! [`items::hl7_tcp_service`](crate::items::hl7_tcp_service).

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use crate::config::catalog::{
    A, BOOL, DAY_S, H, HL7_SERVICE_HOST, HOST_ALL, SERVICE_HOST, SettingSpec, TEXT, ValueType, int,
    no, req, s,
};
use crate::config::model::{Item, ItemKind, SettingTarget};
use crate::config::settings::{
    AckMode, BatchHandling, CharsetValidation, ItemSettings, Reader, StayConnected,
};
use crate::config::startup::StartupChecks;
use crate::engine::plan::{KindPlan, PlannedItem};
use crate::engine::runtime::Shard;
use crate::items::hl7_tcp_server;
use crate::items::kind::{ClassDef, HostKind, Listening, PlanContext, mismatched};

/// The kind.
#[derive(Debug)]
pub struct Hl7TcpService;

/// Its registry entry.
pub static KIND: Hl7TcpService = Hl7TcpService;

/// `EnsLib.HL7.Service.TCPService`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7TcpServiceSettings {
    /// `Port` (required).
    pub port: u16,
    /// `AckMode`, default `Immed`.
    pub ack_mode: AckMode,
    /// `ReadTimeout` seconds, default 5.
    pub read_timeout_s: u32,
    /// `StayConnected`, default forever.
    pub stay_connected: StayConnected,
    /// hie `MaxConnections`, default 4096.
    pub max_connections: u32,
    /// hie `MaxConnectionsPerPeer`, default 256.
    pub max_connections_per_peer: u32,
    /// hie `MaxMessageSize` in bytes, default 64 MiB.
    pub max_message_size: u32,
    /// `BatchHandling`, default `1Session`.
    pub batch_handling: BatchHandling,
    /// `AlertGracePeriod` seconds the port may stay unbindable before `AlertOnError`
    /// alerts, default 0.
    pub alert_grace_s: u32,
    /// hie `CharsetValidation`, default `Declared`.
    pub charset_validation: CharsetValidation,
    /// `LocalInterface`: the address to listen on, default every interface (0.0.0.0).
    pub local_interface: IpAddr,
}

/// What a TCP service runs with.
#[derive(Debug, Clone)]
pub struct TcpServicePlan {
    /// Its settings.
    pub settings: Hl7TcpServiceSettings,
    /// The address it listens on.
    pub listen: SocketAddr,
    /// The service's connection table, shared by its instances on every shard.
    pub connections: hie_net::ConnectionTable,
    /// The process's inbound buffer budget, shared by every service.
    pub inbound_budget: hie_net::InboundBudget,
}

/// `EnsLib.HL7.Adapter.TCPInboundAdapter`.
const TCP_INBOUND_ADAPTER: &[SettingSpec] = &[
    req("Port", A, ValueType::Port, "TCP port to listen on"),
    s(
        "ReadTimeout",
        A,
        int(0, 3600),
        "5",
        "seconds a message may take to arrive whole once started (0 = no limit)",
    ),
    s(
        "StayConnected",
        A,
        int(-1, DAY_S),
        "-1",
        "idle seconds before closing (-1 = never, 0 = after each message)",
    ),
    s(
        "MaxConnections",
        A,
        int(1, 1_000_000),
        "4096",
        "hie: connections open at once to the service (all shards together); more are refused, or one is displaced to make room (see Inbound limits of a TCP service)",
    ),
    s(
        "MaxConnectionsPerPeer",
        A,
        int(1, 1_000_000),
        "256",
        "hie: connections open at once to the service from one IP address (all shards together); more are refused",
    ),
    s(
        "MaxMessageSize",
        A,
        int(1024, 1 << 30),
        "67108864",
        "hie: largest message in bytes; a larger one gets a NAK and its connection closes",
    ),
    no(
        "AllowedIPAddresses",
        A,
        TEXT,
        "",
        "IP allow list; leading ! = connect out",
    ),
    no(
        "CallInterval",
        A,
        int(0, DAY_S),
        "5",
        "seconds between listen checks",
    ),
    no("QSize", A, int(0, 10_000), "100", "listen backlog"),
    no("SSLConfig", A, TEXT, "", "TLS configuration name"),
    s(
        "LocalInterface",
        A,
        TEXT,
        "",
        "IP address to listen on (its first word; empty = every interface, 0.0.0.0)",
    ),
    no("JobPerConnection", A, BOOL, "0", "one job per connection"),
];

/// Host settings of the TCP service.
const TCP_SERVICE_HOST: &[SettingSpec] = &[s(
    "AlertGracePeriod",
    H,
    int(0, DAY_S),
    "0",
    "seconds the port may stay unbindable (enable, restart) before AlertOnError alerts",
)];

impl HostKind for Hl7TcpService {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "EnsLib.HL7.Service.TCPService",
            kind: ItemKind::Service,
            about: "HL7 over MLLP/TCP, inbound",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[
            HL7_SERVICE_HOST,
            TCP_INBOUND_ADAPTER,
            SERVICE_HOST,
            TCP_SERVICE_HOST,
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let a = SettingTarget::Adapter;
        r.settings(|r| Hl7TcpServiceSettings {
            port: r.port(a, "Port"),
            ack_mode: r.ack_mode(),
            read_timeout_s: r.u32(a, "ReadTimeout"),
            stay_connected: r.stay_connected(a),
            max_connections: r.u32(a, "MaxConnections"),
            max_connections_per_peer: r.u32(a, "MaxConnectionsPerPeer"),
            max_message_size: r.u32(a, "MaxMessageSize"),
            batch_handling: r.batch_handling(),
            charset_validation: r.charset_validation(),
            local_interface: r.local_interface(),
            alert_grace_s: r.u32(SettingTarget::Host, "AlertGracePeriod"),
        })
    }

    /// `AckMode=Byte` (IRIS's single ACK byte) is not written by hie.
    fn check(&self, item: &Item, settings: &ItemSettings, checks: &mut StartupChecks<'_>) {
        if let Some(s) = settings.of::<Hl7TcpServiceSettings>()
            && s.ack_mode == AckMode::Byte
        {
            let message = "AckMode Byte (a single ACK byte) is not supported by hie; use \
                           Immed, App, Msh or Never"
                .to_owned();
            checks.report(item, SettingTarget::Host, "AckMode", message);
        }
    }

    fn plan(&self, settings: &ItemSettings, ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let s = settings
            .of::<Hl7TcpServiceSettings>()
            .ok_or_else(|| mismatched(self))?;
        Ok(Arc::new(TcpServicePlan {
            settings: s.clone(),
            listen: SocketAddr::new(s.local_interface, s.port),
            connections: hie_net::ConnectionTable::new(
                s.max_connections as usize,
                s.max_connections_per_peer as usize,
            ),
            inbound_budget: ctx.inbound_budget.clone(),
        }))
    }

    fn listens(&self, settings: &ItemSettings) -> Option<Listening> {
        let s = settings.of::<Hl7TcpServiceSettings>()?;
        Some(Listening {
            address: SocketAddr::new(s.local_interface, s.port),
            message_bytes_max: s.max_message_size,
        })
    }

    fn connections_open(&self, item: &PlannedItem) -> Option<usize> {
        Some(item.role.data::<TcpServicePlan>()?.connections.open())
    }

    fn start_service(&self, shard: &Rc<Shard>, item: &PlannedItem) -> Option<glommio::Task<()>> {
        let plan = item.role.data::<TcpServicePlan>()?;
        hl7_tcp_server::start_tcp_service(shard, item, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::{item_with, own_settings};

    #[test]
    fn empty_typed_value_means_default_but_empty_text_stays_empty() {
        let item = item_with(
            "EnsLib.HL7.Service.TCPService",
            &[
                (SettingTarget::Adapter, "Port", "2575"),
                (SettingTarget::Host, "AckMode", ""),
                (SettingTarget::Adapter, "LocalInterface", ""),
            ],
        );
        let mut errors = Vec::new();
        let s: Hl7TcpServiceSettings = own_settings(&item, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(s.ack_mode, AckMode::Immediate);
        assert_eq!(s.local_interface, IpAddr::from([0, 0, 0, 0]));
    }

    #[test]
    fn local_interface_is_the_first_word_and_anything_else_is_an_error_at_its_line() {
        let service = |value: &str| {
            let item = item_with(
                "EnsLib.HL7.Service.TCPService",
                &[
                    (SettingTarget::Adapter, "Port", "2575"),
                    (SettingTarget::Adapter, "LocalInterface", value),
                ],
            );
            let mut errors = Vec::new();
            let s: Hl7TcpServiceSettings = own_settings(&item, &mut errors);
            (s.local_interface, errors)
        };
        let (ip, errors) = service("127.0.0.1 (lo)");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ip, IpAddr::from([127, 0, 0, 1]));
        let (_, errors) = service("eth0");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 11);
        assert!(errors[0].message.contains("LocalInterface"));
    }
}
