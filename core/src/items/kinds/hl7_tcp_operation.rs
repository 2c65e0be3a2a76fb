//! The kind `EnsLib.HL7.Operation.TCPOperation`: HL7 over MLLP/TCP, outbound. Its runtime
//! is [`items::hl7_tcp_operation`](crate::items::hl7_tcp_operation).

use std::sync::Arc;
use std::time::Duration;

use crate::config::catalog::{
    A, BOOL, DAY_S, H, HL7_OPERATION_HOST, HOST_ALL, OPERATION_HOST, QUEUE_HOST, SettingSpec, TEXT,
    ValueType, int, no, req, s,
};
use crate::config::model::{Item, ItemKind, SettingTarget};
use crate::config::settings::{ItemSettings, Reader, ReplyCodeActions, StayConnected, Timeout};
use crate::config::startup::StartupChecks;
use crate::engine::plan::{KindPlan, failure_timeout};
use crate::items::hl7_tcp_operation;
use crate::items::kind::{ClassDef, HostKind, PlanContext, Worker, WorkerRun, mismatched};

/// The kind.
#[derive(Debug)]
pub struct Hl7TcpOperation;

/// Its registry entry.
pub static KIND: Hl7TcpOperation = Hl7TcpOperation;

/// `EnsLib.HL7.Operation.TCPOperation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7TcpOperationSettings {
    /// `IPAddress` (required); a leading `!` means "wait for the peer to connect".
    pub ip_address: String,
    /// `Port` (required).
    pub port: u16,
    /// `ConnectTimeout` seconds, default 5.
    pub connect_timeout_s: u32,
    /// `ReconnectRetry`, default 5.
    pub reconnect_retry: u32,
    /// `StayConnected`, default forever.
    pub stay_connected: StayConnected,
    /// `ResponseTimeout`, default 30 s.
    pub response_timeout: Timeout,
    /// `GetReply`, default true.
    pub get_reply: bool,
    /// `RetryInterval` seconds, default 5, at least
    /// [`RETRY_INTERVAL_MIN_S`](crate::config::RETRY_INTERVAL_MIN_S).
    pub retry_interval_s: u32,
    /// `FailureTimeout`, default 15 s.
    pub failure_timeout: Timeout,
    /// `AlertRetryGracePeriod` seconds failed attempts may last before `AlertOnError`
    /// alerts, default 0 (see [`crate::items::error_spell`]).
    pub alert_retry_grace_s: u32,
    /// `ReplyCodeActions`, default `:?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C`.
    pub reply_code_actions: ReplyCodeActions,
}

/// What a TCP operation runs with.
#[derive(Debug, Clone)]
pub struct TcpOperationPlan {
    /// Its settings; `ip_address` and `port` say where it connects (resolved at connect).
    pub settings: Hl7TcpOperationSettings,
    /// What each ACK code leads to.
    pub reply_code_actions: ReplyCodeActions,
    /// Wait between attempts.
    pub retry_interval: Duration,
    /// `None`: retry forever (FailureTimeout -1).
    pub failure_timeout: Option<Duration>,
}

/// `EnsLib.HL7.Operation.ReplyStandard` (TCP operations).
const HL7_REPLY_OPERATION_HOST: &[SettingSpec] = &[
    s(
        "ReplyCodeActions",
        H,
        ValueType::ReplyCodeActions,
        ":?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C",
        "what each ACK code leads to",
    ),
    no(
        "Framing",
        H,
        ValueType::Framing,
        "MLLP",
        "message framing on the wire (hie always sends MLLP)",
    ),
    no(
        "NoFailWhileDisconnected",
        H,
        BOOL,
        "0",
        "do not count time disconnected toward FailureTimeout",
    ),
    no("SaveReplies", H, TEXT, "None", "keep replies in the store"),
];

/// `EnsLib.TCP.OutboundAdapter`.
const TCP_OUTBOUND_ADAPTER: &[SettingSpec] = &[
    req(
        "IPAddress",
        A,
        TEXT,
        "host to connect to (leading ! = wait for it to connect)",
    ),
    req("Port", A, ValueType::Port, "TCP port to connect to"),
    s(
        "ConnectTimeout",
        A,
        int(0, 600),
        "5",
        "seconds to wait for a connection",
    ),
    s(
        "ReconnectRetry",
        A,
        int(0, 10_000),
        "5",
        "connection attempts per message before it counts as a failure",
    ),
    s(
        "StayConnected",
        A,
        int(-1, DAY_S),
        "-1",
        "idle seconds before closing (-1 = never, 0 = after each message)",
    ),
    s(
        "ResponseTimeout",
        A,
        int(-1, DAY_S),
        "30",
        "seconds to wait for the ACK (-1 = forever)",
    ),
    no(
        "ReadTimeout",
        A,
        int(0, DAY_S),
        "5",
        "seconds to wait for the rest of an ACK once started (hie: ResponseTimeout covers it)",
    ),
    s("GetReply", A, BOOL, "1", "wait for an ACK"),
    no("SSLConfig", A, TEXT, "", "TLS configuration name"),
    no("LocalInterface", A, TEXT, "", "interface to connect from"),
];

impl HostKind for Hl7TcpOperation {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "EnsLib.HL7.Operation.TCPOperation",
            kind: ItemKind::Operation,
            about: "HL7 over MLLP/TCP, outbound",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[
            HL7_REPLY_OPERATION_HOST,
            HL7_OPERATION_HOST,
            TCP_OUTBOUND_ADAPTER,
            OPERATION_HOST,
            QUEUE_HOST,
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let (h, a) = (SettingTarget::Host, SettingTarget::Adapter);
        r.settings(|r| Hl7TcpOperationSettings {
            ip_address: r.string(a, "IPAddress"),
            port: r.port(a, "Port"),
            connect_timeout_s: r.u32(a, "ConnectTimeout"),
            reconnect_retry: r.u32(a, "ReconnectRetry"),
            stay_connected: r.stay_connected(a),
            response_timeout: r.timeout(a, "ResponseTimeout"),
            get_reply: r.bool(a, "GetReply"),
            retry_interval_s: r.retry_interval(),
            failure_timeout: r.timeout(h, "FailureTimeout"),
            reply_code_actions: r.reply_code_actions(),
            alert_retry_grace_s: r.u32(h, "AlertRetryGracePeriod"),
        })
    }

    /// IRIS's leading `!` in `IPAddress` waits for the downstream system to connect in;
    /// hie only connects out. A `RetryInterval` below the minimum is raised (a warning).
    fn check(&self, item: &Item, settings: &ItemSettings, checks: &mut StartupChecks<'_>) {
        if let Some(s) = settings.of::<Hl7TcpOperationSettings>()
            && s.ip_address.trim_start().starts_with('!')
        {
            let message = format!(
                "IPAddress {:?}: a leading '!' makes IRIS wait for the downstream system to \
                 connect in; hie only connects out, so give the host to connect to",
                s.ip_address
            );
            checks.report(item, SettingTarget::Adapter, "IPAddress", message);
        }
        checks.retry_interval(item);
    }

    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let s = settings
            .of::<Hl7TcpOperationSettings>()
            .ok_or_else(|| mismatched(self))?;
        Ok(Arc::new(TcpOperationPlan {
            settings: s.clone(),
            reply_code_actions: s.reply_code_actions.clone(),
            retry_interval: Duration::from_secs(u64::from(s.retry_interval_s)),
            failure_timeout: failure_timeout(s.failure_timeout),
        }))
    }

    fn connects_to<'a>(&self, settings: &'a ItemSettings) -> Option<(&'a str, u16)> {
        let s = settings.of::<Hl7TcpOperationSettings>()?;
        Some((s.ip_address.as_str(), s.port))
    }

    fn run_worker(&self, w: Worker) -> Option<WorkerRun> {
        let plan = w.plan_data::<TcpOperationPlan>()?;
        Some(Box::pin(hl7_tcp_operation::run(
            w.shard, w.item, w.queue, plan,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::{item_with, resolve_by_class};
    use crate::config::settings::{OverflowStrategy, ReplyCodeActions, StayConnected, Timeout};

    #[test]
    fn tcp_operation_defaults_are_the_iris_defaults() {
        let item = item_with(
            "EnsLib.HL7.Operation.TCPOperation",
            &[
                (SettingTarget::Adapter, "IPAddress", "10.0.0.1"),
                (SettingTarget::Adapter, "Port", "6661"),
            ],
        );
        let mut errors = Vec::new();
        let resolved = resolve_by_class(&item, &mut errors);
        let Some(s) = resolved.of::<Hl7TcpOperationSettings>() else {
            panic!("wrong family");
        };
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (s.port, s.connect_timeout_s, s.reconnect_retry),
            (6661, 5, 5)
        );
        assert_eq!(s.stay_connected, StayConnected::Forever);
        assert_eq!(s.response_timeout, Timeout::Seconds(30));
        assert_eq!(s.failure_timeout, Timeout::Seconds(15));
        assert_eq!(s.retry_interval_s, 5);
        assert_eq!(s.reply_code_actions, ReplyCodeActions::default());
        assert_eq!(resolved.common.overflow, OverflowStrategy::Block);
        assert_eq!(resolved.common.queue_size, 10_000);
    }

    #[test]
    fn a_bad_reply_code_actions_value_is_reported_at_its_line() {
        let item = item_with(
            "EnsLib.HL7.Operation.TCPOperation",
            &[
                (SettingTarget::Adapter, "IPAddress", "h"),
                (SettingTarget::Adapter, "Port", "6661"),
                (SettingTarget::Host, "ReplyCodeActions", ":?R=Q"),
            ],
        );
        let mut errors = Vec::new();
        resolve_by_class(&item, &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 12);
        assert!(
            errors[0].message.contains("ReplyCodeActions"),
            "{}",
            errors[0].message
        );
    }
}
