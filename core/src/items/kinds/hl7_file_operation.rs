//! The kind `EnsLib.HL7.Operation.FileOperation`: HL7 files to a directory. Its runtime
//! is [`items::hl7_file_operation`](crate::items::hl7_file_operation).

use std::sync::Arc;
use std::time::Duration;

use crate::config::catalog::{
    A, BOOL, H, HL7_OPERATION_HOST, HOST_ALL, OPERATION_HOST, QUEUE_HOST, SettingSpec, TEXT,
    ValueType, int, no, req, s,
};
use crate::config::model::{Item, ItemKind, SettingTarget};
use crate::config::settings::{Framing, ItemSettings, Reader, Timeout};
use crate::config::startup::StartupChecks;
use crate::engine::plan::{KindPlan, failure_timeout};
use crate::items::hl7_file_operation;
use crate::items::kind::{ClassDef, HostKind, PlanContext, Worker, WorkerRun, mismatched};

/// The kind.
#[derive(Debug)]
pub struct Hl7FileOperation;

/// Its registry entry.
pub static KIND: Hl7FileOperation = Hl7FileOperation;

/// `EnsLib.HL7.Operation.FileOperation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7FileOperationSettings {
    /// `FilePath` (required).
    pub file_path: String,
    /// `Filename`, default `%f_%Q`.
    pub filename: String,
    /// `Overwrite`, default false (append).
    pub overwrite: bool,
    /// `RetryInterval` seconds, default 5, at least
    /// [`RETRY_INTERVAL_MIN_S`](crate::config::RETRY_INTERVAL_MIN_S).
    pub retry_interval_s: u32,
    /// `FailureTimeout`, default 15 s.
    pub failure_timeout: Timeout,
    /// `AlertRetryGracePeriod` seconds failed attempts may last before `AlertOnError`
    /// alerts, default 0 (see [`crate::items::error_spell`]).
    pub alert_retry_grace_s: u32,
    /// `Framing`: what ends each message in the file, default `AsciiLF`.
    pub framing: Framing,
}

/// What a file operation runs with.
#[derive(Debug, Clone)]
pub struct FileOperationPlan {
    /// Its settings.
    pub settings: Hl7FileOperationSettings,
    /// Wait between attempts.
    pub retry_interval: Duration,
    /// `None`: retry forever (FailureTimeout -1).
    pub failure_timeout: Option<Duration>,
}

/// `EnsLib.HL7.Operation.BatchStandard` (file operations).
const HL7_BATCH_OPERATION_HOST: &[SettingSpec] = &[
    s(
        "Filename",
        H,
        TEXT,
        "%f_%Q",
        "output file name, with IRIS time stamp specifiers",
    ),
    s(
        "Framing",
        H,
        ValueType::Framing,
        "AsciiLF",
        "what ends each message in the file (None, AsciiLF, AsciiCR, AsciiCRLF, Ascii<n>[/<n>], MLLP, MLLP<n>/<n>)",
    ),
    no(
        "AutoBatchParentSegs",
        H,
        BOOL,
        "0",
        "write batch header and trailer segments",
    ),
];

/// `EnsLib.File.OutboundAdapter`.
const FILE_OUTBOUND_ADAPTER: &[SettingSpec] = &[
    req("FilePath", A, TEXT, "directory to write files to"),
    s(
        "Overwrite",
        A,
        BOOL,
        "0",
        "overwrite an existing file instead of appending",
    ),
    no("Charset", A, TEXT, "Default", "file character set"),
    no(
        "OpenTimeout",
        A,
        int(0, 3600),
        "5",
        "seconds to wait to open the file",
    ),
];

impl HostKind for Hl7FileOperation {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "EnsLib.HL7.Operation.FileOperation",
            kind: ItemKind::Operation,
            about: "HL7 files to a directory",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[
            HL7_BATCH_OPERATION_HOST,
            HL7_OPERATION_HOST,
            FILE_OUTBOUND_ADAPTER,
            OPERATION_HOST,
            QUEUE_HOST,
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let (h, a) = (SettingTarget::Host, SettingTarget::Adapter);
        r.settings(|r| Hl7FileOperationSettings {
            file_path: r.string(a, "FilePath"),
            filename: r.string(h, "Filename"),
            overwrite: r.bool(a, "Overwrite"),
            retry_interval_s: r.retry_interval(),
            failure_timeout: r.timeout(h, "FailureTimeout"),
            alert_retry_grace_s: r.u32(h, "AlertRetryGracePeriod"),
            framing: r.output_framing(),
        })
    }

    /// A `RetryInterval` below the minimum is raised (a warning).
    fn check(&self, item: &Item, _settings: &ItemSettings, checks: &mut StartupChecks<'_>) {
        checks.retry_interval(item);
    }

    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let s = settings
            .of::<Hl7FileOperationSettings>()
            .ok_or_else(|| mismatched(self))?;
        Ok(Arc::new(FileOperationPlan {
            settings: s.clone(),
            retry_interval: Duration::from_secs(u64::from(s.retry_interval_s)),
            failure_timeout: failure_timeout(s.failure_timeout),
        }))
    }

    fn run_worker(&self, w: Worker) -> Option<WorkerRun> {
        let plan = w.plan_data::<FileOperationPlan>()?;
        Some(Box::pin(hl7_file_operation::run(
            w.shard, w.item, w.queue, plan,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::{item_with, own_settings, resolve_by_class};
    use crate::config::settings::{Framing, RETRY_INTERVAL_MIN_S};

    #[test]
    fn retry_interval_below_the_minimum_is_raised_to_it() {
        let item = item_with(
            "EnsLib.HL7.Operation.FileOperation",
            &[
                (SettingTarget::Adapter, "FilePath", "/tmp/x"),
                (SettingTarget::Host, "RetryInterval", "0"),
            ],
        );
        let mut errors = Vec::new();
        let s: Hl7FileOperationSettings = own_settings(&item, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.retry_interval_s, RETRY_INTERVAL_MIN_S);
        assert_eq!(s.framing, Framing::AsciiLf);
    }

    #[test]
    fn a_file_operation_takes_only_framings_it_can_write() {
        for (value, ok) in [
            ("None", true),
            ("AsciiCRLF", true),
            ("Ascii28/13", true),
            ("MLLP", true),
            ("Flexible", false),
            ("MsgEnvelope", false),
            ("LLP", false),
        ] {
            let item = item_with(
                "EnsLib.HL7.Operation.FileOperation",
                &[
                    (SettingTarget::Adapter, "FilePath", "/tmp/x"),
                    (SettingTarget::Host, "Framing", value),
                ],
            );
            let mut errors = Vec::new();
            resolve_by_class(&item, &mut errors);
            assert_eq!(errors.is_empty(), ok, "{value}: {errors:?}");
        }
    }
}
