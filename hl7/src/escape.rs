//! HL7 v2 escape sequences: [`decode`] turns a raw value into text only when a caller asks;
//! [`encode`] is its inverse, used by the writer and the ACK builder.
//!
//! ```text
//! sequence    decoded to                 encode produces it for
//! \F\         field separator            the field separator
//! \S\         component separator        the component separator
//! \T\         sub-component separator    the sub-component separator
//! \R\         repetition separator       the repetition separator
//! \E\         escape character           the escape character
//! \P\         truncation character (2.7) the truncation character, when declared
//! \Xhhhh…\    the bytes of the hex pairs CR (\X0D\) and LF (\X0A\)
//! \.br\ \.sp\ LF (line break)            -
//! \H\ \N\     nothing (highlight on/off) -
//! anything else (\Zxx\, \Cxxyy\, \.in+4\, a lone escape…) is kept verbatim
//! ```
//!
//! (`\` stands for the message's escape character.) Invariant: for any bytes `x` and any
//! delimiters with an escape character, `decode(encode(x)) == x`. When the message
//! declares a space as its escape character, which real feeds do to mean "none", decode
//! copies the value as it is and encode can only replace CR and LF by spaces: a segment
//! terminator must never be written inside a value.

use crate::scan::Delimiters;
use crate::swar::find_any;

/// Appends the text of the raw value `raw` to `out`, decoding escape sequences.
pub fn decode(raw: &[u8], d: &Delimiters, out: &mut Vec<u8>) {
    let Some(esc) = d.escape_char() else {
        out.extend_from_slice(raw);
        return;
    };
    let mut i = 0;
    while let Some(p) = memchr::memchr(esc, &raw[i..]) {
        let open = i + p;
        out.extend_from_slice(&raw[i..open]);
        let Some(q) = memchr::memchr(esc, &raw[open + 1..]) else {
            out.extend_from_slice(&raw[open..]);
            return;
        };
        let close = open + 1 + q;
        if !decode_one(&raw[open + 1..close], d, out) {
            out.extend_from_slice(&raw[open..=close]);
        }
        i = close + 1;
    }
    out.extend_from_slice(&raw[i..]);
}

/// Decodes one sequence body (between the escape characters); false if unknown.
fn decode_one(body: &[u8], d: &Delimiters, out: &mut Vec<u8>) -> bool {
    let byte = match body {
        b"F" => d.field,
        b"S" => d.component,
        b"T" => d.subcomponent,
        b"R" => d.repetition,
        b"E" => d.escape,
        b"P" => match d.truncation {
            Some(t) => t,
            None => return false,
        },
        b"H" | b"N" => return true,
        b".br" | b".sp" => b'\n',
        [b'X', hex @ ..] => return decode_hex(hex, out),
        _ => return false,
    };
    out.push(byte);
    true
}

fn decode_hex(hex: &[u8], out: &mut Vec<u8>) -> bool {
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    out.extend(
        hex.chunks_exact(2)
            .map(|p| (hex_val(p[0]) << 4) | hex_val(p[1])),
    );
    true
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Appends `text` to `out` as a raw value, escaping delimiters, CR and LF.
pub fn encode(text: &[u8], d: &Delimiters, out: &mut Vec<u8>) {
    let Some(esc) = d.escape_char() else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        return;
    };
    let mut targets = [
        b'\r',
        b'\n',
        d.field,
        d.component,
        d.repetition,
        esc,
        d.subcomponent,
        b'\r',
    ];
    if let Some(t) = d.truncation {
        targets[7] = t;
    }
    let mut start = 0;
    while let Some(p) = find_any(&text[start..], &targets) {
        let i = start + p;
        let b = text[i];
        let code: &[u8] = if b == d.field {
            b"F"
        } else if b == d.component {
            b"S"
        } else if b == d.subcomponent {
            b"T"
        } else if b == d.repetition {
            b"R"
        } else if b == esc {
            b"E"
        } else if b == b'\r' {
            b"X0D"
        } else if b == b'\n' {
            b"X0A"
        } else {
            b"P"
        };
        out.extend_from_slice(&text[start..i]);
        out.push(esc);
        out.extend_from_slice(code);
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// True if `text` can be written as a raw value unchanged (no delimiter, CR or LF).
pub fn needs_no_escaping(text: &[u8], d: &Delimiters) -> bool {
    !text
        .iter()
        .any(|&b| d.is_delimiter(b) || b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decode(raw, &Delimiters::STANDARD, &mut out);
        out
    }

    fn enc(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(text, &Delimiters::STANDARD, &mut out);
        out
    }

    #[test]
    fn delimiter_escapes_decode() {
        assert_eq!(dec(br"a\F\b\S\c\T\d\R\e\E\f"), b"a|b^c&d~e\\f");
        assert_eq!(dec(br"\H\bold\N\ text\.br\next"), b"bold text\nnext");
        assert_eq!(dec(br"\X0D0A\\X41\"), b"\r\nA");
    }

    #[test]
    fn unknown_and_malformed_sequences_are_kept_verbatim() {
        assert_eq!(
            dec(br"\Zabc\ \X4\ \Xzz\ \.in+4\ \P\"),
            br"\Zabc\ \X4\ \Xzz\ \.in+4\ \P\"
        );
        assert_eq!(dec(br"trailing \F"), br"trailing \F");
        assert_eq!(dec(br"\\"), br"\\");
    }

    #[test]
    fn truncation_escape_needs_a_declared_truncation_character() {
        let d = Delimiters {
            truncation: Some(b'#'),
            ..Delimiters::STANDARD
        };
        let mut out = Vec::new();
        decode(br"1\P\2", &d, &mut out);
        assert_eq!(out, b"1#2");
        out.clear();
        encode(b"1#2", &d, &mut out);
        assert_eq!(out, br"1\P\2");
    }

    #[test]
    fn encode_escapes_delimiters_and_terminators() {
        assert_eq!(
            enc(b"a|b^c&d~e\\f\r\n"),
            br"a\F\b\S\c\T\d\R\e\E\f\X0D\\X0A\"
        );
        assert_eq!(dec(&enc(b"a|b^c&d~e\\f\r\n")), b"a|b^c&d~e\\f\r\n");
        assert!(needs_no_escaping(b"plain text", &Delimiters::STANDARD));
        assert!(!needs_no_escaping(b"a^b", &Delimiters::STANDARD));
    }

    #[test]
    fn space_escape_character_means_no_escaping() {
        let d = Delimiters {
            escape: b' ',
            ..Delimiters::STANDARD
        };
        let mut out = Vec::new();
        decode(b"JOHN F SMITH", &d, &mut out);
        assert_eq!(out, b"JOHN F SMITH");
        out.clear();
        encode(b"a\rb", &d, &mut out);
        assert_eq!(out, b"a b");
    }
}
