//! The kind `EnsLib.HL7.Service.FileService`: HL7 files from a directory. Its runtime is
//! [`items::hl7_file_service`](crate::items::hl7_file_service).

use std::rc::Rc;

use crate::config::catalog::{
    A, BOOL, DAY_S, HL7_SERVICE_HOST, HOST_ALL, SERVICE_HOST, SettingSpec, TEXT, int, no, req, s,
};
use crate::config::model::{ItemKind, SettingTarget};
use crate::config::settings::{Hl7FileServiceSettings, ItemSettings, Reader};
use crate::engine::plan::{FileServicePlan, PlannedItem, Role};
use crate::engine::runtime::Shard;
use crate::items::hl7_file_service;
use crate::items::kind::{ClassDef, HostKind, PlanContext, mismatched};

/// The kind.
#[derive(Debug)]
pub struct Hl7FileService;

/// Its registry entry.
pub static KIND: Hl7FileService = Hl7FileService;

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
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let (h, a) = (SettingTarget::Host, SettingTarget::Adapter);
        ItemSettings::Hl7FileService(Hl7FileServiceSettings {
            common: r.common(),
            file_path: r.string(a, "FilePath"),
            file_spec: Some(r.string(a, "FileSpec"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "*".to_owned()),
            archive_path: r.optional(a, "ArchivePath"),
            call_interval_s: r.u32(a, "CallInterval"),
            targets: r.list(h, "TargetConfigNames", false),
            batch_handling: r.batch_handling(),
            charset_validation: r.charset_validation(),
        })
    }

    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Role {
        let ItemSettings::Hl7FileService(s) = settings else {
            return mismatched(self);
        };
        Role::FileService(FileServicePlan {
            settings: s.clone(),
        })
    }

    fn start_service(&self, shard: &Rc<Shard>, item: &PlannedItem) -> Option<glommio::Task<()>> {
        let Role::FileService(plan) = &item.role else {
            return None;
        };
        shard.set_state(item.id, shard.shared().start_state(item.id));
        let run = hl7_file_service::run(Rc::clone(shard), item.id, plan.clone());
        Some(glommio::spawn_local(run))
    }
}
