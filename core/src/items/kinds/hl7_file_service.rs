//! The kind `EnsLib.HL7.Service.FileService`: HL7 files from a directory. Its runtime is
//! [`items::hl7_file_service`](crate::items::hl7_file_service).

use std::rc::Rc;
use std::sync::Arc;

use crate::config::catalog::{
    A, BOOL, DAY_S, H, HL7_SERVICE_HOST, HOST_ALL, SERVICE_HOST, SettingSpec, TEXT, int, no, req, s,
};
use crate::config::model::{ItemKind, SettingTarget};
use crate::config::settings::{BatchHandling, CharsetValidation, ItemSettings, Reader};
use crate::engine::plan::{KindPlan, PlannedItem};
use crate::engine::runtime::Shard;
use crate::items::hl7_file_service;
use crate::items::kind::{ClassDef, HostKind, PlanContext, mismatched};

/// The kind.
#[derive(Debug)]
pub struct Hl7FileService;

/// Its registry entry.
pub static KIND: Hl7FileService = Hl7FileService;

/// `EnsLib.HL7.Service.FileService`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7FileServiceSettings {
    /// `FilePath` (required).
    pub file_path: String,
    /// `FileSpec`, default `*`.
    pub file_spec: String,
    /// `ArchivePath`: `None` deletes processed files.
    pub archive_path: Option<String>,
    /// `CallInterval` seconds between polls, default 5.
    pub call_interval_s: u32,
    /// `BatchHandling`, default `1Session`.
    pub batch_handling: BatchHandling,
    /// hie `CharsetValidation`, default `Declared`.
    pub charset_validation: CharsetValidation,
    /// `AlertGracePeriod` seconds an unreadable `FilePath` may last before
    /// `AlertOnError` alerts, default 0 (see [`crate::items::error_spell`]).
    pub alert_grace_s: u32,
}

/// What a file service runs with.
#[derive(Debug, Clone)]
pub struct FileServicePlan {
    /// Its settings.
    pub settings: Hl7FileServiceSettings,
}

/// Host settings of the file service.
const FILE_SERVICE_HOST: &[SettingSpec] = &[s(
    "AlertGracePeriod",
    H,
    int(0, DAY_S),
    "0",
    "seconds FilePath may stay unreadable before AlertOnError alerts",
)];

/// `EnsLib.File.InboundAdapter`.
const FILE_INBOUND_ADAPTER: &[SettingSpec] = &[
    req("FilePath", A, TEXT, "directory to read files from"),
    s(
        "FileSpec",
        A,
        TEXT,
        "*",
        "file name pattern (* and ? wildcards, ; separated)",
    ),
    s(
        "ArchivePath",
        A,
        TEXT,
        "",
        "directory to move processed files to (empty = delete)",
    ),
    no(
        "WorkPath",
        A,
        TEXT,
        "",
        "directory to move files to while processing",
    ),
    s(
        "CallInterval",
        A,
        int(1, DAY_S),
        "5",
        "seconds between directory polls",
    ),
    no(
        "FileAccessTimeout",
        A,
        int(0, 3600),
        "2",
        "seconds a file must be stable before reading",
    ),
    no(
        "AppendTimestamp",
        A,
        BOOL,
        "1",
        "append a timestamp to archived names",
    ),
    no("Charset", A, TEXT, "Default", "file character set"),
    no(
        "SubdirectoryLevels",
        A,
        int(0, 100),
        "0",
        "subdirectories to descend into",
    ),
    no("SemaphoreSpec", A, TEXT, "", "semaphore file pattern"),
];

impl HostKind for Hl7FileService {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "EnsLib.HL7.Service.FileService",
            kind: ItemKind::Service,
            about: "HL7 files from a directory",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[
            HL7_SERVICE_HOST,
            FILE_INBOUND_ADAPTER,
            SERVICE_HOST,
            FILE_SERVICE_HOST,
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let a = SettingTarget::Adapter;
        r.settings(|r| Hl7FileServiceSettings {
            file_path: r.string(a, "FilePath"),
            file_spec: Some(r.string(a, "FileSpec"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "*".to_owned()),
            archive_path: r.optional(a, "ArchivePath"),
            call_interval_s: r.u32(a, "CallInterval"),
            batch_handling: r.batch_handling(),
            charset_validation: r.charset_validation(),
            alert_grace_s: r.u32(SettingTarget::Host, "AlertGracePeriod"),
        })
    }

    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let s = settings
            .of::<Hl7FileServiceSettings>()
            .ok_or_else(|| mismatched(self))?;
        Ok(Arc::new(FileServicePlan {
            settings: s.clone(),
        }))
    }

    fn start_service(&self, shard: &Rc<Shard>, item: &PlannedItem) -> Option<glommio::Task<()>> {
        let plan = item.role.data::<FileServicePlan>()?;
        shard.set_state(item.id, shard.shared().start_state(item.id));
        let run = hl7_file_service::run(Rc::clone(shard), item.id, plan.clone());
        Some(glommio::spawn_local(run))
    }
}
