//! Built-in message templates: ADT^A01, ADT^A08 and ORU^R01 with N OBX segments, grown to
//! a target size.
//!
//! A template is plain HL7 v2.5.1 text with CR segment terminators. MSH-10 holds a
//! placeholder of [`CONTROL_ID_LEN`] characters and PID-3.1 one of [`PATIENT_ID_LEN`]
//! characters; [`crate::source`] records their offsets and the sender overwrites them in
//! place for every message. When a target size is given the message is padded with one
//! `ZLG` segment (a Z-segment engines pass through) so that its length is exactly the
//! target; a target smaller than the bare template leaves the template as it is.

use crate::ids::{CONTROL_ID_LEN, PATIENT_ID_LEN};

/// Which built-in message to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateKind {
    /// ADT^A01 admit: MSH, EVN, PID, PV1.
    AdtA01,
    /// ADT^A08 update patient information: MSH, EVN, PID, PV1.
    AdtA08,
    /// ORU^R01 observation result: MSH, PID, OBR and `--obx` OBX segments.
    Oru,
}

/// Bytes of the `ZLG|1|` prefix and the segment terminator the padding segment adds.
const PAD_OVERHEAD: usize = "ZLG|1|".len() + 1;

/// Builds the template text (no MLLP framing). `obx` only applies to [`TemplateKind::Oru`];
/// `size_bytes` is the target length of the whole message.
pub fn build(kind: TemplateKind, obx: usize, size_bytes: Option<usize>) -> Vec<u8> {
    let control_id = "0".repeat(CONTROL_ID_LEN);
    let patient = "0".repeat(PATIENT_ID_LEN);
    let (event, structure) = match kind {
        TemplateKind::AdtA01 => ("ADT^A01", "ADT_A01"),
        TemplateKind::AdtA08 => ("ADT^A08", "ADT_A01"),
        TemplateKind::Oru => ("ORU^R01", "ORU_R01"),
    };
    let mut text = format!(
        "MSH|^~\\&|HIE-LOADGEN|LOADGEN|ENGINE|HIE|20250101120000||{event}^{structure}|{control_id}|P|2.5.1\r"
    );
    match kind {
        TemplateKind::AdtA01 | TemplateKind::AdtA08 => {
            let code = &event[4..];
            text.push_str(&format!("EVN|{code}|20250101120000\r"));
            text.push_str(&pid(&patient));
            text.push_str("PV1|1|I|WARD1^ROOM1^BED1||||1234^SMITH^JANE|||MED\r");
        }
        TemplateKind::Oru => {
            text.push_str(&pid(&patient));
            text.push_str("OBR|1|ORD1|FIL1|CBC^Full blood count^L|||20250101113000\r");
            for i in 1..=obx {
                let value = 3 + i % 7;
                text.push_str(&format!(
                    "OBX|{i}|NM|GLU^Glucose^L||{value}.2|mmol/L|3.9-6.1|N|||F\r"
                ));
            }
        }
    }
    let mut bytes = text.into_bytes();
    if let Some(target) = size_bytes {
        pad_to(&mut bytes, target);
    }
    bytes
}

fn pid(patient: &str) -> String {
    format!("PID|1||{patient}^^^HIE^MR||DOE^JOHN^Q||19700101|M|||1 MAIN ST^^LEEDS^^LS1 1AA^GBR\r")
}

/// Appends a `ZLG` segment so that `bytes` is exactly `target` long, if there is room for
/// the segment's own overhead.
fn pad_to(bytes: &mut Vec<u8>, target: usize) {
    if target < bytes.len() + PAD_OVERHEAD {
        return;
    }
    let filler = target - bytes.len() - PAD_OVERHEAD;
    bytes.extend_from_slice(b"ZLG|1|");
    bytes.extend((0..filler).map(|i| b'a' + (i % 26) as u8));
    bytes.push(b'\r');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adt_template_is_padded_to_exactly_the_target_size() {
        let msg = build(TemplateKind::AdtA01, 0, Some(300));
        assert_eq!(msg.len(), 300);
        assert!(msg.starts_with(b"MSH|^~\\&|"));
        assert_eq!(*msg.last().unwrap(), b'\r');
    }

    #[test]
    fn target_smaller_than_the_template_leaves_it_unpadded() {
        let bare = build(TemplateKind::AdtA08, 0, None);
        assert_eq!(build(TemplateKind::AdtA08, 0, Some(10)), bare);
        assert!(!bare.windows(3).any(|w| w == b"ZLG"));
    }

    #[test]
    fn oru_template_has_the_requested_obx_count() {
        let msg = build(TemplateKind::Oru, 25, None);
        let obx = msg
            .split(|&b| b == b'\r')
            .filter(|s| s.starts_with(b"OBX|"))
            .count();
        assert_eq!(obx, 25);
    }
}
