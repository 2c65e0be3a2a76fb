//! What IRIS `ReplyCodeActions` sees of an MLLP client's outcome, and the operation's
//! decision on it: the MLLP adapter reports what happened to a message (a reply, which
//! may answer another message, or none and why); which codes, texts and conditions of
//! the setting it matches is the engine's policy, and lives here.
//!
//! A reply is read for its MSA-1, MSA-3 and ERR codes and texts; a batch of ACKs (the
//! reply to a batch sent whole) reads as its worst ACK (see [`reply_facts`]). Our own error
//! codes for `E#`: the client's [`hie_net::NoReplyReason::code`], `ControlIdMismatch`,
//! `UnparseableReply`, `NoMsa`.

use hie_hl7::{AckCode, Batch, Message, Path};
use hie_net::ReplyOutcome;

use crate::reply_code_actions::{Action, Decision, ReplyCodeActions, ReplyFacts};

/// ReplyCodeActions on an MLLP client's [`ReplyOutcome`].
pub trait OutcomeFacts {
    /// What ReplyCodeActions sees of this outcome (borrowing the reply bytes).
    fn facts(&self, expected_reply_type: &[u8]) -> ReplyFacts<'_>;

    /// The decision of `actions` for this outcome; warnings are logged here.
    fn decide<'r>(&self, actions: &'r ReplyCodeActions, expected_reply_type: &[u8])
    -> Decision<'r>;
}

impl OutcomeFacts for ReplyOutcome {
    fn facts(&self, expected_reply_type: &[u8]) -> ReplyFacts<'_> {
        match self {
            Self::Sent => ReplyFacts {
                replied: true,
                msa_1: Some(b"AA"),
                ..ReplyFacts::default()
            },
            Self::Replied(bytes) => reply_facts(bytes, expected_reply_type),
            Self::Mismatched(bytes) => ReplyFacts {
                control_id_mismatch: true,
                error: true,
                error_codes: vec![b"ControlIdMismatch"],
                ..reply_facts(bytes, expected_reply_type)
            },
            Self::Unparseable(_) => ReplyFacts {
                replied: true,
                error: true,
                error_codes: vec![b"UnparseableReply"],
                ..ReplyFacts::default()
            },
            Self::NoReply(reason, text) => ReplyFacts {
                error: true,
                retryable: true,
                error_codes: vec![reason.code().as_bytes()],
                error_texts: vec![text.as_bytes()],
                ..ReplyFacts::default()
            },
        }
    }

    fn decide<'r>(
        &self,
        actions: &'r ReplyCodeActions,
        expected_reply_type: &[u8],
    ) -> Decision<'r> {
        if matches!(self, Self::Sent) {
            return Decision {
                action: Action::Complete,
                matched: None,
                warnings: Vec::new(),
            };
        }
        let decision = actions.evaluate(&self.facts(expected_reply_type));
        for entry in &decision.warnings {
            tracing::warn!(entry, outcome = self.summary(), "ReplyCodeActions warning");
        }
        decision
    }
}

/// Facts of a scannable reply (an unscannable one is a reply without MSA). A batch of ACKs
/// (the reply to a batch sent whole) reads as its first ACK that does not accept, else its
/// first ACK; one with none accepts, as HL7 v2 lets a batch reply that holds no negative
/// ACK acknowledge every message of the batch.
fn reply_facts<'a>(bytes: &'a [u8], expected_reply_type: &[u8]) -> ReplyFacts<'a> {
    if Batch::has_envelope(bytes) {
        let accepts = |ack: &&[u8]| {
            Message::scan(ack).is_ok_and(|m| m.ack_code().is_some_and(AckCode::is_accept))
        };
        let mut acks = Batch::new(bytes);
        let Some(first) = acks.clone().next() else {
            return ReplyFacts {
                replied: true,
                msa_1: Some(b"AA"),
                ..ReplyFacts::default()
            };
        };
        let worst = acks.find(|a| !accepts(a)).unwrap_or(first);
        return message_reply_facts(worst, expected_reply_type);
    }
    message_reply_facts(bytes, expected_reply_type)
}

/// [`reply_facts`] of one reply message.
fn message_reply_facts<'a>(bytes: &'a [u8], expected_reply_type: &[u8]) -> ReplyFacts<'a> {
    let Ok(msg) = Message::scan(bytes) else {
        return ReplyFacts {
            replied: true,
            error: true,
            error_codes: vec![b"UnparseableReply"],
            ..ReplyFacts::default()
        };
    };
    let msa_1 = msg
        .find_segment(b"MSA", 1)
        .map(|msa| msa.field(1).unwrap_or_default().trim_ascii());
    let mut facts = ReplyFacts {
        replied: true,
        msa_1,
        reply_type_mismatch: msg.message_type().is_none_or(|t| t != expected_reply_type),
        ..ReplyFacts::default()
    };
    match msa_1.map(AckCode::parse) {
        None => {
            facts.error = true;
            facts.error_codes.push(b"NoMsa");
        }
        Some(Some(code)) if code.is_accept() => {}
        Some(_) => {
            facts.error = true;
            collect_error_details(&msg, &mut facts);
        }
    }
    facts
}

/// ERR-3.1 (2.5+) and ERR-1.4.1 (older) codes; MSA-3, ERR-8 and ERR-1.4.2 texts.
fn collect_error_details<'a>(msg: &Message<'a>, facts: &mut ReplyFacts<'a>) {
    for (path, is_code) in [
        ("ERR-3.1", true),
        ("ERR-1.4.1", true),
        ("MSA-3", false),
        ("ERR-8", false),
        ("ERR-1.4.2", false),
    ] {
        let Ok(path) = Path::parse(path) else {
            continue;
        };
        if let Some(value) = msg.get(&path).filter(|v| !v.is_empty()) {
            if is_code {
                facts.error_codes.push(value)
            } else {
                facts.error_texts.push(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH_ACK: &[u8] = b"BHS|^~\\&|R|F|S|F|20260101||||B9|B1\r\
MSH|^~\\&|R|F|S|F|20260101||ACK|A1|P|2.5\rMSA|AA|M1\r\
MSH|^~\\&|R|F|S|F|20260101||ACK|A2|P|2.5\rMSA|AE|M2\rERR||||E||||bad one\r\
BTS|2\r";

    #[test]
    fn a_batch_reply_reads_as_its_first_ack_that_does_not_accept() {
        let facts = reply_facts(BATCH_ACK, b"ACK");
        assert_eq!(facts.msa_1, Some(&b"AE"[..]));
        assert!(facts.error);
        assert_eq!(facts.error_texts, [&b"bad one"[..]]);
        let all_aa = String::from_utf8_lossy(BATCH_ACK)
            .replace("MSA|AE|M2\rERR||||E||||bad one\r", "MSA|AA|M2\r")
            .into_bytes();
        let facts = reply_facts(&all_aa, b"ACK");
        assert_eq!((facts.msa_1, facts.error), (Some(&b"AA"[..]), false));
        let empty = reply_facts(b"BHS|^~\\&|R|F|S|F|1||||B9|B1\rBTS|0\r", b"ACK");
        assert_eq!((empty.msa_1, empty.error), (Some(&b"AA"[..]), false));
    }
}
