//! `EnsLib.HL7.Service.TCPService`: receives HL7 over MLLP, stores each message in the
//! shard's WAL, acknowledges it per `AckMode`, and passes it to `TargetConfigNames`.
//!
//! One instance per shard it is placed on (PoolSize), all on the same port
//! (SO_REUSEPORT): the kernel spreads connections over them.
//!
//! Per frame, in order:
//! 1. a paused item stops here (the connection is not read: TCP flow control pushes back);
//!    if it is disabled or the run stops meanwhile, the connection closes unanswered;
//! 2. scan; bytes that are not HL7 get `AR` with an ERR segment (HL7 code 100) and are not
//!    stored; nor are bytes that break the character set MSH-18 declares
//!    (`CharsetValidation`): `AR`, ERR code 102 naming the segment, text naming the byte
//!    offset;
//! 3. a first-hop queue with `Overflow = reject` that is full gets `AE` (code 207);
//! 4. `MessageReceived` + `Enqueued` per target appended and durable (a WAL failure: `AE`
//!    code 207, nothing acknowledged);
//! 5. delivered to the targets (waiting while a `block` queue is full); a service whose
//!    port is shared over several shards then waits, up to [`ORDERED_ACK_WAIT_MAX`],
//!    until the message is in the queue of every operation it goes to (past its router),
//!    so that a message the sender sends after this ACK, on a connection another shard
//!    took, cannot overtake it (`Shard::expect_entered`; not when a router it goes to is
//!    not running, whose queue holds messages for as long as it stays so);
//! 6. acknowledged: `AckMode=App` waits for the downstream system's reply and returns it
//!    (AA when delivered where no reply comes back, AE when not delivered or after
//!    [`APPLICATION_ACK_TIMEOUT`]); `AckMode=Immed` sends AA (original mode) or CA (enhanced mode, when
//!    MSH-15 is present); `AckMode=Msh` (MSH-determined) does the same but honours MSH-15
//!    `NE`/`ER`/`SU`; `AckMode=Never` sends nothing.
//!
//! A frame that begins with `FHS` or `BHS` is a batch (`BatchHandling`; hie runs
//! `1Session`, `Batch` and `Indiv` alike, having no sessions): steps 2 to 6 run for each
//! of its messages in order, each stored and routed on its own, and the reply is a batch
//! holding each message's ACK (as IRIS replies with `NoBatchReply` off, its default).
//!
//! `BatchHandling=Whole` takes the frame as one document instead (IRIS: "don't process
//! child documents individually; accumulate and send the whole batch as one composite
//! document"; the operation "outputs the entire batch at once"). Step 2 checks every
//! message of it, and one that fails refuses the whole batch (nothing stored); steps 3 to
//! 5 run once for the batch, its bytes stored as one WAL record and delivered as they came;
//! the reply is still the batch of one ACK per message, all with the batch's one outcome,
//! since IRIS's batch reply (`NoBatchReply` off) does not depend on `BatchHandling`.
//! Sources: InterSystems, "HL7 Batch Messages" (`DocBook.UI.Page.cls?KEY=EHL72_batch_msg`,
//! the batch modes table and the batch reply), and the `BatchHandling` property of
//! `EnsLib.EDI.X12.Service.TCPService` and `EnsLib.RecordMap.Service.BatchStandard`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use hie_hl7::{AckCode, Batch, Envelope, ErrDetail, Message, Path, ScanError, ScanIndex};
use hie_net::{ConnInfo, FrameHandler, Reply};

use crate::config::{AckMode, BatchHandling, CharsetValidation};
use crate::engine::control::ItemState;
use crate::engine::ingest::envelope;
use crate::engine::ordered_acks::service_orders_acks;
use crate::engine::runtime::{Phase, Shard, partition_key};
use crate::envelope::{AppReply, ItemId, MessageId};
use crate::items::kinds::hl7_tcp_service::Hl7TcpServiceSettings;

pub use crate::engine::ordered_acks::ORDERED_ACK_WAIT_MAX;

/// Most messages one batch frame may hold: a larger batch is refused whole (`AR`, nothing
/// stored), which bounds the reply (one ACK per message) and the time the sender waits.
pub const BATCH_MESSAGES_MAX: usize = 10_000;

/// HL7 table 0357 codes used in our NAKs.
const HL7_SEGMENT_SEQUENCE_ERROR: u16 = 100;
const HL7_DATA_TYPE_ERROR: u16 = 102;
const HL7_APPLICATION_INTERNAL_ERROR: u16 = 207;

/// How long an `AckMode=App` service waits for the downstream reply before it answers AE.
pub const APPLICATION_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Connection names kept for `%f` before the cache is cleared.
const ORIGIN_NAMES_MAX: usize = 1024;

/// The frame handler of one service instance.
#[derive(Debug)]
pub struct TcpServiceHandler {
    shard: Rc<Shard>,
    item: ItemId,
    ack_mode: AckMode,
    charset_validation: CharsetValidation,
    batch_handling: BatchHandling,
    /// The item's instances are on more than one shard and the sender waits for ACKs:
    /// acknowledge once the message is in its operations' queues.
    ordered_acks: bool,
    /// Peer address text per connection id, so `%f` costs no allocation per message.
    origin_names: RefCell<Vec<(u64, Arc<str>)>>,
}

impl TcpServiceHandler {
    pub fn new(shard: Rc<Shard>, item: ItemId, settings: &Hl7TcpServiceSettings) -> Self {
        let ack_mode = settings.ack_mode;
        let ordered_acks = service_orders_acks(&shard.plan().item(item).shards, ack_mode);
        TcpServiceHandler {
            shard,
            item,
            ack_mode,
            charset_validation: settings.charset_validation,
            batch_handling: settings.batch_handling,
            ordered_acks,
            origin_names: RefCell::new(Vec::new()),
        }
    }

    fn origin_name(&self, conn: &ConnInfo) -> Arc<str> {
        let mut names = self.origin_names.borrow_mut();
        if let Some((_, name)) = names.iter().rev().find(|(id, _)| *id == conn.id) {
            return Arc::clone(name);
        }
        if names.len() >= ORIGIN_NAMES_MAX {
            names.clear();
        }
        let name: Arc<str> = Arc::from(conn.peer.to_string());
        names.push((conn.id, Arc::clone(&name)));
        name
    }

    /// Whether this message gets an accept acknowledgment: always with `Immed`, never with
    /// `Never`, as MSH-15 asks with `Msh` (MSH-determined).
    fn acks(&self, msg: &Message<'_>, success: bool) -> bool {
        match self.ack_mode {
            AckMode::Never => false,
            AckMode::Msh => accept_ack_wanted(msg, success),
            _ => true,
        }
    }

    fn nak(
        &self,
        msg: &Message<'_>,
        code: AckCode,
        err: &ErrDetail<'_>,
        out: &mut Vec<u8>,
    ) -> Reply {
        tracing::warn!(item = %self.shard.plan().item(self.item).name, "NAK {}: {}", code.as_str(), err.text);
        self.nak_unlogged(msg, code, err, out)
    }

    /// [`Self::nak`] without its log line, for a refusal logged once elsewhere (the WAL
    /// logs when it becomes unavailable and when it resumes, not each message refused).
    fn nak_unlogged(
        &self,
        msg: &Message<'_>,
        code: AckCode,
        err: &ErrDetail<'_>,
        out: &mut Vec<u8>,
    ) -> Reply {
        bump_rejected(&self.shard, self.item);
        if !self.acks(msg, false) {
            return Reply::Silent;
        }
        let code = enhanced(msg, code);
        self.shard
            .ack_builder()
            .write_ack(out, msg, code, Some(err));
        Reply::Respond
    }
}

fn bump_rejected(shard: &Shard, item: ItemId) {
    let c = &shard.counters(item).rejected;
    c.set(c.get() + 1);
}

/// MSH-15 (accept acknowledgment type): AL always, NE never, ER only on error, SU only on
/// success; absent means original mode, where every message is acknowledged.
fn accept_ack_wanted(msg: &Message<'_>, success: bool) -> bool {
    static MSH_15: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    let path = MSH_15.get_or_init(|| Path::parse("MSH-15").expect("valid path"));
    match msg.get(path).map(<[u8]>::trim_ascii) {
        Some(b"NE") => false,
        Some(b"ER") => !success,
        Some(b"SU") => success,
        _ => true,
    }
}

/// The enhanced-mode code (CA/CE/CR) when MSH-15 is present, else the original one.
fn enhanced(msg: &Message<'_>, code: AckCode) -> AckCode {
    static MSH_15: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    let path = MSH_15.get_or_init(|| Path::parse("MSH-15").expect("valid path"));
    if msg.get(path).is_none_or(|v| v.trim_ascii().is_empty()) {
        return code;
    }
    match code {
        AckCode::AA | AckCode::CA => AckCode::CA,
        AckCode::AE | AckCode::CE => AckCode::CE,
        AckCode::AR | AckCode::CR => AckCode::CR,
    }
}

impl FrameHandler for TcpServiceHandler {
    async fn on_frame(&self, conn: &ConnInfo, frame: &[u8], response: &mut Vec<u8>) -> Reply {
        let shard = &self.shard;
        if shard.states().get(self.item) == ItemState::Paused {
            futures_lite::future::or(
                async {
                    shard
                        .states()
                        .wait_until(self.item, |s| s != ItemState::Paused)
                        .await;
                },
                shard.until_phase(Phase::StopServices),
            )
            .await;
            if shard.states().get(self.item) != ItemState::Running
                || shard.phase() >= Phase::StopServices
            {
                // Disabled, restarted away or shutting down while paused: the frame was
                // never taken. Close without an answer; the sender sends it again.
                return Reply::Close;
            }
        }
        if Batch::has_envelope(frame) {
            return self.on_batch(conn, frame, response).await;
        }
        self.on_message(conn, frame, response).await
    }
}

impl TcpServiceHandler {
    /// A batch: each message handled as a frame of its own, the ACKs gathered in a batch.
    async fn on_batch(&self, conn: &ConnInfo, frame: &[u8], response: &mut Vec<u8>) -> Reply {
        let env = Envelope::of(frame);
        if Batch::new(frame).nth(BATCH_MESSAGES_MAX).is_some() {
            return self.refuse_batch(&env, response);
        }
        if self.batch_handling == BatchHandling::Whole {
            return self.on_whole(conn, frame, response).await;
        }
        let answer = self.ack_mode != AckMode::Never;
        if answer {
            self.shard.ack_builder().write_batch_open(response, &env);
        }
        let mut acks = 0;
        for message in Batch::new(frame) {
            let before = response.len();
            self.on_message(conn, message, response).await;
            if response.len() > before {
                acks += 1;
                if !response.ends_with(b"\r") && !response.ends_with(b"\n") {
                    // A downstream reply relayed as it came may lack its last terminator.
                    response.push(b'\r');
                }
            }
        }
        if !answer {
            return Reply::Silent;
        }
        self.shard
            .ack_builder()
            .write_batch_close(response, &env, acks);
        Reply::Respond
    }

    /// A batch of more than [`BATCH_MESSAGES_MAX`] messages: one NAK for the batch, whose
    /// MSA-2 is the batch's control id (BHS-11, else FHS-11); nothing is stored.
    fn refuse_batch(&self, env: &Envelope<'_>, response: &mut Vec<u8>) -> Reply {
        bump_rejected(&self.shard, self.item);
        let text = format!(
            "batch of more than {BATCH_MESSAGES_MAX} messages refused; none of them was \
             stored: send it in smaller batches"
        );
        tracing::warn!(item = %self.shard.plan().item(self.item).name, "NAK AR: {text}");
        if self.ack_mode == AckMode::Never {
            return Reply::Silent;
        }
        let err = ErrDetail {
            code: HL7_SEGMENT_SEQUENCE_ERROR,
            severity: b'E',
            location: None,
            text: &text,
        };
        let id = env.control_id();
        self.shard
            .ack_builder()
            .write_nak_unscanned(response, id, AckCode::AR, Some(&err));
        Reply::Respond
    }

    /// One message: steps 2 to 6 of the module header; its ACK (if any) is appended to
    /// `response`.
    async fn on_message(&self, conn: &ConnInfo, frame: &[u8], response: &mut Vec<u8>) -> Reply {
        let shard = &self.shard;
        let msg = match Message::scan(frame) {
            Ok(msg) => msg,
            Err(e) => {
                bump_rejected(shard, self.item);
                tracing::warn!(item = %shard.plan().item(self.item).name, peer = %conn.peer, "not an HL7 message: {e}");
                if self.ack_mode == AckMode::Never {
                    return Reply::Silent;
                }
                let text = format!("not an HL7 message: {e}");
                let err = ErrDetail {
                    code: HL7_SEGMENT_SEQUENCE_ERROR,
                    severity: b'E',
                    location: None,
                    text: &text,
                };
                let control_id = best_effort_control_id(frame);
                shard.ack_builder().write_nak_unscanned(
                    response,
                    control_id,
                    AckCode::AR,
                    Some(&err),
                );
                return Reply::Respond;
            }
        };
        if let Err(e) = check_charset(&msg, self.charset_validation) {
            let (location, text) = charset_error(&msg, &e);
            let err = ErrDetail {
                code: HL7_DATA_TYPE_ERROR,
                severity: b'E',
                location: Some(&location),
                text: &text,
            };
            return self.nak(&msg, AckCode::AR, &err, response);
        }
        let plan_item = shard.plan().item(self.item);
        let partition = crate::envelope::partition_hash(partition_key(&msg));
        let full = plan_item.targets.iter().find_map(|t| match t {
            crate::engine::plan::Target::Item(id) if shard.refuses(*id, partition) => Some(*id),
            _ => None,
        });
        if let Some(full) = full {
            let text = format!(
                "queue of {} is full; message refused",
                shard.plan().item(full).name
            );
            let err = internal_error(&text);
            return self.nak(&msg, AckCode::AE, &err, response);
        }
        if shard.wal().unavailable().is_some() {
            let err = internal_error("message store unavailable after a write failure");
            return self.nak_unlogged(&msg, AckCode::AE, &err, response);
        }
        let (id, targets) = match shard.receive(self.item, &msg).await {
            Ok(stored) => stored,
            Err(e) => {
                let text = format!("cannot store the message: {e}");
                let err = internal_error(&text);
                if e.is_storage() {
                    return self.nak_unlogged(&msg, AckCode::AE, &err, response);
                }
                return self.nak(&msg, AckCode::AE, &err, response);
            }
        };
        let scan = Some(Arc::new(msg.index()));
        self.deliver(conn, (id, targets), (frame, scan), partition_key(&msg))
            .await;
        if self.ack_mode == AckMode::Application {
            return self.application_ack(&msg, id, response).await;
        }
        if !self.acks(&msg, true) {
            return Reply::Silent;
        }
        let code = enhanced(&msg, AckCode::AA);
        shard.ack_builder().write_ack(response, &msg, code, None);
        Reply::Respond
    }

    /// Step 5: delivers stored message `id` (`frame`, its `scan`, partition `key`) to
    /// `targets`, then waits for it to reach its operations' queues when acknowledgments
    /// are ordered.
    async fn deliver(
        &self,
        conn: &ConnInfo,
        (id, targets): (MessageId, Vec<ItemId>),
        (frame, scan): (&[u8], Option<Arc<ScanIndex>>),
        key: &[u8],
    ) {
        let shard = &self.shard;
        let plan_item = shard.plan().item(self.item);
        let application = self.ack_mode == AckMode::Application;
        if application {
            shard.expect_reply(id);
        }
        let ordered = self.ordered_acks && shard.orders_message(&targets);
        let entered = ordered.then(|| shard.expect_entered(id, targets.len()));
        if let Some(&first) = targets.first() {
            let bytes = (Arc::from(frame), scan);
            let mut env = envelope(id, bytes, self.item, self.origin_name(conn), first, key);
            env.wants_reply = application;
            env.ordered = ordered;
            shard.hook_before(self.item, &env);
            shard.fan_out(env, &targets).await;
        }
        if let Some(entered) = entered {
            entered.wait_or_log(&plan_item.name).await;
        }
    }
}

/// Why a batch taken whole is refused: which of its messages failed, and how.
struct WholeRefusal {
    /// 0-based index of the message that failed.
    index: usize,
    code: u16,
    location: Option<String>,
    text: String,
}

impl TcpServiceHandler {
    /// `BatchHandling=Whole`: steps 2 to 6 for the batch as one document (module header).
    async fn on_whole(&self, conn: &ConnInfo, frame: &[u8], response: &mut Vec<u8>) -> Reply {
        let shard = &self.shard;
        let name = &shard.plan().item(self.item).name;
        if let Some(refusal) = self.check_whole(frame) {
            bump_rejected(shard, self.item);
            tracing::warn!(item = %name, peer = %conn.peer, "batch refused whole: message {}: {}", refusal.index + 1, refusal.text);
            let other = format!(
                "not stored: the batch is taken whole (BatchHandling=Whole) and its message {} \
                 was refused",
                refusal.index + 1
            );
            return self.whole_reply(frame, AckCode::AR, response, |i| {
                if i == refusal.index {
                    ErrDetail {
                        code: refusal.code,
                        severity: b'E',
                        location: refusal.location.as_deref(),
                        text: &refusal.text,
                    }
                } else {
                    internal_error(&other)
                }
            });
        }
        let env = Envelope::of(frame);
        let key = env.control_id();
        let partition = crate::envelope::partition_hash(key);
        let full = shard
            .plan()
            .item(self.item)
            .targets
            .iter()
            .find_map(|t| match t {
                crate::engine::plan::Target::Item(id) if shard.refuses(*id, partition) => Some(*id),
                _ => None,
            });
        if let Some(full) = full {
            bump_rejected(shard, self.item);
            let text = format!(
                "queue of {} is full; batch refused",
                shard.plan().item(full).name
            );
            tracing::warn!(item = %name, "NAK AE: {text}");
            return self.whole_reply(frame, AckCode::AE, response, |_| internal_error(&text));
        }
        let control_id = crate::engine::runtime::text_of(key);
        let meta = hie_persist::MessageMeta {
            message_type: env.header_id(),
            control_id: &control_id,
            partition_key: &control_id,
        };
        // A storage failure is logged once by the WAL, not per batch refused.
        let stored = match shard.wal().unavailable() {
            Some(_) => Err("message store unavailable after a write failure".to_owned()),
            None => shard
                .receive_document(self.item, frame, meta)
                .await
                .map_err(|e| {
                    let text = format!("cannot store the batch: {e}");
                    if !e.is_storage() {
                        tracing::warn!(item = %name, "NAK AE: {text}");
                    }
                    text
                }),
        };
        let (id, targets) = match stored {
            Ok(stored) => stored,
            Err(text) => {
                bump_rejected(shard, self.item);
                return self.whole_reply(frame, AckCode::AE, response, |_| internal_error(&text));
            }
        };
        self.deliver(conn, (id, targets), (frame, None), key).await;
        if self.ack_mode != AckMode::Application {
            return self.whole_reply(frame, AckCode::AA, response, |_| internal_error(""));
        }
        match shard.wait_reply(id, APPLICATION_ACK_TIMEOUT).await {
            Some(AppReply::Ack(ack)) => {
                response.extend_from_slice(&ack);
                Reply::Respond
            }
            Some(AppReply::Accepted) => {
                self.whole_reply(frame, AckCode::AA, response, |_| internal_error(""))
            }
            Some(AppReply::Error(reason)) => {
                tracing::warn!(item = %name, "NAK AE: {reason}");
                self.whole_reply(frame, AckCode::AE, response, |_| internal_error(&reason))
            }
            None => {
                let text = format!(
                    "no application acknowledgment within {} s",
                    APPLICATION_ACK_TIMEOUT.as_secs()
                );
                tracing::warn!(item = %name, "NAK AE: {text}");
                self.whole_reply(frame, AckCode::AE, response, |_| internal_error(&text))
            }
        }
    }

    /// Step 2 for every message of a batch taken whole: the first that does not scan or
    /// breaks its declared character set.
    fn check_whole(&self, frame: &[u8]) -> Option<WholeRefusal> {
        Batch::new(frame).enumerate().find_map(|(index, raw)| {
            let msg = match Message::scan(raw) {
                Ok(msg) => msg,
                Err(e) => {
                    return Some(WholeRefusal {
                        index,
                        code: HL7_SEGMENT_SEQUENCE_ERROR,
                        location: None,
                        text: format!("not an HL7 message: {e}"),
                    });
                }
            };
            let e = check_charset(&msg, self.charset_validation).err()?;
            let (location, text) = charset_error(&msg, &e);
            Some(WholeRefusal {
                index,
                code: HL7_DATA_TYPE_ERROR,
                location: Some(location),
                text,
            })
        })
    }

    /// The reply to a batch taken whole: a batch holding one ACK per message, each with
    /// `code` (its enhanced-mode form where MSH-15 asks) and, unless `code` accepts,
    /// `err(index)`; none under `AckMode=Never`, and none for a message whose MSH-15 asks
    /// for none under `AckMode=Msh`.
    fn whole_reply<'e>(
        &self,
        frame: &[u8],
        code: AckCode,
        response: &mut Vec<u8>,
        err: impl Fn(usize) -> ErrDetail<'e>,
    ) -> Reply {
        if self.ack_mode == AckMode::Never {
            return Reply::Silent;
        }
        let env = Envelope::of(frame);
        let mut acks = self.shard.ack_builder();
        acks.write_batch_open(response, &env);
        let mut written = 0;
        for (index, raw) in Batch::new(frame).enumerate() {
            let detail = (!code.is_accept()).then(|| err(index));
            match Message::scan(raw) {
                Ok(msg) if self.acks(&msg, code.is_accept()) => {
                    acks.write_ack(response, &msg, enhanced(&msg, code), detail.as_ref());
                }
                Ok(_) => continue,
                Err(_) => {
                    let id = best_effort_control_id(raw);
                    acks.write_nak_unscanned(response, id, code, detail.as_ref());
                }
            }
            written += 1;
        }
        acks.write_batch_close(response, &env, written);
        Reply::Respond
    }
}

impl TcpServiceHandler {
    /// `AckMode=App`: waits for the downstream reply and returns it as it came; AA when
    /// the message was delivered where no reply comes back; AE when it was not delivered
    /// or no reply came within [`APPLICATION_ACK_TIMEOUT`]. The message is durable either
    /// way: an AE here does not undo its delivery.
    async fn application_ack(
        &self,
        msg: &Message<'_>,
        id: MessageId,
        response: &mut Vec<u8>,
    ) -> Reply {
        let shard = &self.shard;
        match shard.wait_reply(id, APPLICATION_ACK_TIMEOUT).await {
            Some(AppReply::Ack(ack)) => {
                response.extend_from_slice(&ack);
                Reply::Respond
            }
            Some(AppReply::Accepted) => {
                shard
                    .ack_builder()
                    .write_ack(response, msg, AckCode::AA, None);
                Reply::Respond
            }
            Some(AppReply::Error(reason)) => {
                self.nak(msg, AckCode::AE, &internal_error(&reason), response)
            }
            None => {
                let text = format!(
                    "no application acknowledgment within {} s",
                    APPLICATION_ACK_TIMEOUT.as_secs()
                );
                self.nak(msg, AckCode::AE, &internal_error(&text), response)
            }
        }
    }
}

/// Checks `msg` against the character set its MSH-18 declares, as `mode` says.
pub(crate) fn check_charset(msg: &Message<'_>, mode: CharsetValidation) -> Result<(), ScanError> {
    match mode {
        CharsetValidation::Declared => msg.validate_declared_text(),
        CharsetValidation::Strict => msg.validate_text(),
        CharsetValidation::Off => Ok(()),
    }
}

/// ERR-2 (segment id and sequence) and the text for a message that failed
/// [`check_charset`].
pub(crate) fn charset_error(msg: &Message<'_>, e: &ScanError) -> (String, String) {
    let at = match *e {
        ScanError::InvalidUtf8 { segment, .. } | ScanError::NonAscii { segment, .. } => segment,
        _ => 0,
    };
    let id = msg.segment(at).map(|s| s.id()).unwrap_or_default();
    let sequence = msg.segments().take(at + 1).filter(|s| s.id() == id).count();
    let id = String::from_utf8_lossy(id);
    let declared = msg.character_set().unwrap_or_default();
    let declared = if declared.is_empty() {
        "nothing (read as UTF-8)".into()
    } else {
        String::from_utf8_lossy(declared)
    };
    (
        format!("{id}^{sequence}"),
        format!("{e}: the bytes do not hold the character set MSH-18 declares, {declared}"),
    )
}

fn internal_error(text: &str) -> ErrDetail<'_> {
    ErrDetail {
        code: HL7_APPLICATION_INTERNAL_ERROR,
        severity: b'E',
        location: None,
        text,
    }
}

/// MSH-10 read naively (10th `|`-separated field of the first line) from bytes that did
/// not scan, so a NAK can still name the message when possible.
fn best_effort_control_id(frame: &[u8]) -> &[u8] {
    let line = frame
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    if !line.starts_with(b"MSH") || line.len() < 4 {
        return b"";
    }
    let sep = line[3];
    line.split(|&b| b == sep).nth(9).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msh_15_decides_whether_an_accept_ack_is_sent() {
        let with = |msh15: &str| {
            format!("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5|||{msh15}\rPID|||1\r")
        };
        let cases = [
            ("", true, true),
            ("AL", true, true),
            ("NE", false, false),
            ("ER", false, true),
            ("SU", true, false),
        ];
        for (msh15, on_success, on_error) in cases {
            let text = with(msh15);
            let msg = Message::scan(text.as_bytes()).unwrap();
            assert_eq!(accept_ack_wanted(&msg, true), on_success, "{msh15} success");
            assert_eq!(accept_ack_wanted(&msg, false), on_error, "{msh15} error");
        }
    }

    #[test]
    fn enhanced_mode_codes_are_used_when_msh_15_is_present() {
        let original = Message::scan(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r").unwrap();
        let enhanced_msg = Message::scan(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||AL\r").unwrap();
        assert_eq!(enhanced(&original, AckCode::AA), AckCode::AA);
        assert_eq!(enhanced(&enhanced_msg, AckCode::AA), AckCode::CA);
        assert_eq!(enhanced(&enhanced_msg, AckCode::AE), AckCode::CE);
    }

    #[test]
    fn best_effort_control_id_reads_msh_10_of_broken_bytes() {
        assert_eq!(
            best_effort_control_id(b"MSH|^~\\&|A|B|C|D|1||ADT|CTRL9|P"),
            b"CTRL9"
        );
        assert_eq!(best_effort_control_id(b"garbage"), b"");
    }
}
