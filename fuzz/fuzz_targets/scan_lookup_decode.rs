//! Fuzz target: scan + batch split + path lookup + decode + validation + index round trip
//! + ACK + writer, on arbitrary bytes. The body lives in `hie_hl7::fuzz` so the crate's
//! stable test suite runs the same code over the corpus and proptest inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hie_hl7::fuzz::scan_lookup_decode(data);
});
