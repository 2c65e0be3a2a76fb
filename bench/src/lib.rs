//! hie-bench: criterion benchmarks live in `benches/`; this library holds the inputs they
//! share (corpus loading, synthetic messages) so every benchmark measures the same bytes.
//!
//! - [`corpus_messages`]: every message of `../shared/corpus/hl7/`, batch files split,
//!   BOM and envelope segments dropped, in file-name order.
//! - [`ADT_A01`]: a typical ~300-byte ADT^A01 with CR terminators.
//! - [`oru_r01`]: a synthetic ORU^R01 of at least the requested size (e.g. ~100 KB), made
//!   of many OBX segments, to measure messages past the inline index.
//!
//! Inputs are deterministic (no randomness), so figures compare across runs and machines.

use std::path::PathBuf;

/// A ~300-byte ADT^A01 (CR terminators, standard delimiters, control id `MSG00001`).
pub const ADT_A01: &[u8] = b"MSH|^~\\&|REGADT|GOOD HEALTH HOSPITAL|HIE|TRUST|20240101120000||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r\
EVN|A01|20240101120000\r\
PID|1||PATID1234^^^GOOD HEALTH HOSPITAL^MR~123456789^^^USSSA^SS||EVERYMAN^ADAM^A^III||19610615|M||C|2222 HOME STREET^^GREENSBORO^NC^27401-1020\r\
PV1|1|I|2000^2012^01||||004777^ATTEND^AARON^A|||SUR\r";

/// The workspace's shared corpus directory (`../shared/corpus/hl7` from the workspace).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7")
}

/// Every message in the corpus (batch files split into their messages), as owned bytes.
///
/// Panics if the corpus directory cannot be read: a benchmark without its input is a
/// setup error, not a result.
pub fn corpus_messages() -> Vec<Vec<u8>> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        out.extend(hie_hl7::Batch::new(&bytes).map(<[u8]>::to_vec));
    }
    out
}

/// A synthetic ORU^R01 of at least `min_bytes` bytes: MSH, PID, ORC, OBR, then numbered
/// OBX segments (each ~200 bytes, with components, repetitions and an escape) until the
/// size is reached. The control id is `ORU00001`; the last OBX's OBX-5 is `LAST`.
pub fn oru_r01(min_bytes: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(min_bytes + 512);
    m.extend_from_slice(
        b"MSH|^~\\&|LAB|GOOD HEALTH HOSPITAL|HIE|TRUST|20240101120000||ORU^R01^ORU_R01|ORU00001|P|2.5.1|||||UNICODE UTF-8\r\
PID|1||PATID1234^^^GOOD HEALTH HOSPITAL^MR||EVERYMAN^ADAM^A^III||19610615|M\r\
ORC|RE|ORD448811|R-511|||||||||1234^WELBY^MARCUS\r\
OBR|1|ORD448811|R-511|80048^BASIC METABOLIC PANEL^CPT|||20240101110000\r",
    );
    let mut i = 1u32;
    loop {
        let last = format!("OBX|{i}|ST|LAST^Last result^L||LAST|||N|||F|||20240101113000\r");
        if m.len() + last.len() >= min_bytes {
            m.extend_from_slice(last.as_bytes());
            return m;
        }
        let obx = format!(
            "OBX|{i}|NM|2345-7^GLUCOSE^LN~GLU^Glucose^L||{}|mg/dL^milligrams per deciliter^UCUM|70-99|N|||F|||20240101113000|LAB^Main \\T\\ Core Lab|||ANALYZER-7^Cobas&1.2.3&ISO\r",
            80 + i % 40
        );
        m.extend_from_slice(obx.as_bytes());
        i += 1;
    }
}

/// Number of OBX segments in an [`oru_r01`] message.
pub fn obx_count(message: &[u8]) -> usize {
    message
        .split(|&b| b == b'\r')
        .filter(|s| s.starts_with(b"OBX|"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adt_is_about_300_bytes_and_scans() {
        assert!((250..=350).contains(&ADT_A01.len()), "{}", ADT_A01.len());
        let m = hie_hl7::Message::scan(ADT_A01).unwrap();
        assert_eq!(m.control_id(), Some(&b"MSG00001"[..]));
    }

    #[test]
    fn oru_reaches_its_size_and_ends_with_the_last_obx() {
        let oru = oru_r01(100_000);
        assert!((100_000..101_000).contains(&oru.len()), "{}", oru.len());
        let m = hie_hl7::Message::scan(&oru).unwrap();
        let last = obx_count(&oru) as u32;
        let p = hie_hl7::Path::field_of(*b"OBX", 5).with_occurrence(last);
        assert_eq!(m.get(&p), Some(&b"LAST"[..]));
        assert_eq!(m.validate_text(), Ok(()));
    }

    #[test]
    fn corpus_loads_every_message() {
        let msgs = corpus_messages();
        assert!(msgs.len() > 60, "{}", msgs.len());
        assert!(msgs.iter().all(|m| m.starts_with(b"MSH")));
    }
}
