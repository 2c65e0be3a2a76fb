//! Property tests: scanning never panics (arbitrary bytes, mutated corpus messages); a
//! writer with no edits is byte-identical; set-then-get returns the value and leaves every
//! other segment alone; `decode(encode(x)) == x`; a lenient MSH-2 (3 characters, a doubled
//! or repeated character) reads as its standard form and always yields distinct, usable
//! delimiters; splitting a batch and re-joining it loses no message byte.

use hie_hl7::{
    AckBuilder, AckCode, Batch, Delimiters, Envelope, Message, MessageWriter, Path, decode, encode,
};
use proptest::prelude::*;
use std::path::PathBuf;

fn delimiters() -> impl Strategy<Value = Delimiters> {
    let pool = b"|^~\\&#$%@*!}".to_vec();
    (Just(pool.clone()).prop_shuffle(), any::<bool>()).prop_map(|(p, trunc)| Delimiters {
        field: p[0],
        component: p[1],
        repetition: p[2],
        escape: p[3],
        subcomponent: p[4],
        truncation: trunc.then_some(p[5]),
    })
}

/// A field built from text and the placeholders C, R, S (component, repetition,
/// sub-component separators).
fn field() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcXYZ09 .CRS".to_vec()), 0..10)
}

#[derive(Debug, Clone)]
struct Shape {
    d: Delimiters,
    bom: bool,
    segments: Vec<(usize, Vec<Vec<u8>>, usize)>,
    final_term: bool,
}

const IDS: [&str; 5] = ["PID", "OBX", "EVN", "NTE", "ZX1"];
const TERMS: [&[u8]; 3] = [b"\r", b"\n", b"\r\n"];

fn shape() -> impl Strategy<Value = Shape> {
    let seg = (
        0..IDS.len(),
        prop::collection::vec(field(), 0..12),
        0..TERMS.len(),
    );
    (
        delimiters(),
        any::<bool>(),
        prop::collection::vec(seg, 1..8),
        any::<bool>(),
    )
        .prop_map(|(d, bom, segments, final_term)| Shape {
            d,
            bom,
            segments,
            final_term,
        })
}

fn render(s: &Shape) -> Vec<u8> {
    let d = &s.d;
    let mut out = Vec::new();
    if s.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let n = s.segments.len();
    for (i, (id, fields, term)) in s.segments.iter().enumerate() {
        if i == 0 {
            out.extend_from_slice(b"MSH");
            d.write_separators(&mut out);
        } else {
            out.extend_from_slice(IDS[*id].as_bytes());
        }
        for f in fields {
            out.push(d.field);
            out.extend(f.iter().map(|&b| match b {
                b'C' => d.component,
                b'R' => d.repetition,
                b'S' => d.subcomponent,
                b => b,
            }));
        }
        if i + 1 < n || s.final_term {
            out.extend_from_slice(TERMS[*term]);
        }
    }
    out
}

fn corpus_messages() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn scan_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        hie_hl7::fuzz::scan_lookup_decode(&bytes);
    }

    #[test]
    fn scan_never_panics_on_arbitrary_bytes_after_a_valid_header(
        tail in prop::collection::vec(prop::sample::select(b"|^~\\&\r\nPIDOBX0123".to_vec()), 0..300)
    ) {
        let mut bytes = b"MSH|^~\\&|".to_vec();
        bytes.extend_from_slice(&tail);
        hie_hl7::fuzz::scan_lookup_decode(&bytes);
    }

    #[test]
    fn scan_never_panics_on_mutated_corpus_messages(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let corpus = corpus_messages();
        let mut m = corpus[which.index(corpus.len())].clone();
        for (at, byte, kind) in edits {
            if m.is_empty() { break; }
            let i = at.index(m.len());
            match kind {
                0 => m[i] = byte,
                1 => m.insert(i, byte),
                _ => { m.remove(i); }
            }
        }
        let keep = cut.index(m.len() + 1);
        hie_hl7::fuzz::scan_lookup_decode(&m);
        hie_hl7::fuzz::scan_lookup_decode(&m[..keep]);
    }

    #[test]
    fn writer_with_no_edits_is_byte_identical(s in shape()) {
        let bytes = render(&s);
        let m = Message::scan(&bytes).unwrap();
        prop_assert_eq!(MessageWriter::new(&m).to_vec(), bytes);
    }

    #[test]
    fn set_then_get_returns_the_value_and_leaves_other_segments_alone(
        s in shape(),
        seg in any::<prop::sample::Index>(),
        field in 1u32..15,
        levels in (prop::option::of(1u32..4), prop::option::of(1u32..5), prop::option::of(1u32..4)),
        value in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let bytes = render(&s);
        let m = Message::scan(&bytes).unwrap();
        let target = m.segment(seg.index(m.segment_count())).unwrap();
        let id = target.id();
        let occurrence = m.segments().take(target.index() + 1).filter(|x| x.id() == id).count() as u32;
        let field = if target.index() == 0 { field + 2 } else { field };
        let (rep, comp, sub) = levels;
        let mut path = Path::field_of([id[0], id[1], id[2]], field).with_occurrence(occurrence).with_repetition(rep);
        if let Some(c) = comp {
            path = path.with_component(Some(c)).with_subcomponent(sub);
        }
        let mut w = MessageWriter::new(&m);
        w.set(&path, &value).unwrap();
        let out = w.to_vec();
        let n = Message::scan(&out).unwrap();
        let raw = n.get(&path).unwrap();
        let mut text = Vec::new();
        decode(raw, n.delimiters(), &mut text);
        prop_assert_eq!(&text, &value);
        prop_assert_eq!(n.segment_count(), m.segment_count());
        for (a, b) in m.segments().zip(n.segments()) {
            if a.index() != target.index() {
                prop_assert_eq!(a.as_bytes(), b.as_bytes());
            }
        }
    }

    #[test]
    fn decode_of_encode_is_identity(d in delimiters(), text in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut raw = Vec::new();
        encode(&text, &d, &mut raw);
        prop_assert!(!raw.iter().any(|&b| b == b'\r' || b == b'\n' || b == d.field));
        let mut back = Vec::new();
        decode(&raw, &d, &mut back);
        prop_assert_eq!(back, text);
    }

    #[test]
    fn three_character_msh_2_reads_as_the_four_character_form(s in shape()) {
        let mut s = s;
        let d = &mut s.d;
        prop_assume!(![d.field, d.component, d.repetition, d.escape].contains(&b'&'));
        d.subcomponent = b'&';
        d.truncation = None;
        let four = render(&s);
        let mut three = four.clone();
        let msh2 = if s.bom { 3 } else { 0 } + 4;
        three.remove(msh2 + 3);
        let (a, b) = (Message::scan(&four).unwrap(), Message::scan(&three).unwrap());
        prop_assert_eq!(a.delimiters(), b.delimiters());
        prop_assert_eq!(a.segment_count(), b.segment_count());
        for (x, y) in a.segments().zip(b.segments()).skip(1) {
            prop_assert_eq!(x.as_bytes(), y.as_bytes());
            let (fx, fy): ([&[u8]; 12], [&[u8]; 12]) = (x.fields_array(), y.fields_array());
            prop_assert_eq!(fx, fy);
        }
    }

    #[test]
    fn a_doubled_msh_2_character_is_read_once(s in shape(), which in any::<prop::sample::Index>()) {
        let bytes = render(&s);
        let msh2 = if s.bom { 3 } else { 0 } + 4;
        let len = if s.d.truncation.is_some() { 5 } else { 4 };
        let at = msh2 + which.index(len);
        let mut doubled = bytes.clone();
        doubled.insert(at, bytes[at]);
        let (a, b) = (Message::scan(&bytes).unwrap(), Message::scan(&doubled).unwrap());
        prop_assert_eq!(a.delimiters(), b.delimiters());
        for (x, y) in a.segments().zip(b.segments()).skip(1) {
            prop_assert_eq!(x.as_bytes(), y.as_bytes());
        }
    }

    #[test]
    fn any_msh_2_that_scans_yields_distinct_usable_delimiters(
        enc in prop::collection::vec(prop::sample::select(b"|^~\\&#$!a9 \r".to_vec()), 0..9),
    ) {
        let mut bytes = b"MSH|".to_vec();
        bytes.extend_from_slice(&enc);
        bytes.extend_from_slice(b"|A|B\rPID|1|x^y~z&w\r");
        hie_hl7::fuzz::scan_lookup_decode(&bytes);
        if let Ok(m) = Message::scan(&bytes) {
            let d = m.delimiters();
            let mut all = vec![d.field, d.component, d.repetition, d.escape, d.subcomponent];
            all.extend(d.truncation);
            for (i, b) in all.iter().enumerate() {
                prop_assert!(!b.is_ascii_alphanumeric() && *b != b'\r' && *b != b'\n');
                prop_assert!(!all[..i].contains(b), "{:?} repeats a delimiter", *b as char);
            }
        }
    }

    #[test]
    fn a_batch_splits_into_its_messages_and_is_answered_one_ack_each(
        members in prop::collection::vec(shape(), 0..6),
        fhs in any::<bool>(),
        bhs in any::<bool>(),
        term in 0..TERMS.len(),
    ) {
        let t = TERMS[term];
        let mut batch = Vec::new();
        if fhs {
            batch.extend_from_slice(b"FHS|^~\\&|A|B|C|D|20260101||||F1");
            batch.extend_from_slice(t);
        }
        if bhs {
            batch.extend_from_slice(b"BHS|^~\\&|A|B|C|D|20260101||||B1");
            batch.extend_from_slice(t);
        }
        let mut expected = Vec::new();
        for m in &members {
            let mut m = m.clone();
            m.bom = false;
            m.final_term = true;
            let bytes = render(&m);
            batch.extend_from_slice(&bytes);
            expected.push(bytes);
        }
        if bhs {
            batch.extend_from_slice(format!("BTS|{}", members.len()).as_bytes());
            batch.extend_from_slice(t);
        }
        if fhs {
            batch.extend_from_slice(b"FTS|1");
        }
        let split: Vec<&[u8]> = Batch::new(&batch).collect();
        prop_assert_eq!(split.len(), expected.len());
        for (got, want) in split.iter().zip(&expected) {
            prop_assert_eq!(*got, &want[..]);
        }
        let env = Envelope::of(&batch);
        prop_assert_eq!((env.fhs.is_some(), env.bhs.is_some()), (fhs, bhs));
        prop_assert_eq!(Batch::has_envelope(&batch), fhs || bhs);

        let mut acks = AckBuilder::new();
        let mut reply = Vec::new();
        acks.write_batch_open(&mut reply, &env);
        for raw in &split {
            acks.write_ack(&mut reply, &Message::scan(raw).unwrap(), AckCode::AA, None);
        }
        acks.write_batch_close(&mut reply, &env, split.len());
        let answered: Vec<&[u8]> = Batch::new(&reply).collect();
        prop_assert_eq!(answered.len(), split.len());
        for a in answered {
            prop_assert_eq!(Message::scan(a).unwrap().ack_code(), Some(AckCode::AA));
        }
        prop_assert_eq!(Envelope::of(&reply).fhs.is_some(), fhs);
        prop_assert_eq!(Envelope::of(&reply).bhs.is_some(), bhs);

        // Taken whole: the batch is listed by its outermost header and its control id
        // (BHS-11, else FHS-11), and the reply batch refers back to that id.
        let (id, header): (&[u8], &str) = match (fhs, bhs) {
            (_, true) => (b"B1", if fhs { "FHS" } else { "BHS" }),
            (true, false) => (b"F1", "FHS"),
            (false, false) => (b"", ""),
        };
        prop_assert_eq!(env.control_id(), id);
        prop_assert_eq!(env.header_id(), header);
        prop_assert_eq!(Envelope::of(&reply).reference_id(), id);
    }
}
