//! IRIS file name specifications (`Filename` of file operations, as
//! `Ens.Util.File.CreateTimestamp` reads them), expanded at write time.
//!
//! Supported codes:
//! - `%f` the source name (the file a file service read, or the peer address of a TCP
//!   connection), stripped of characters no file name should hold (`| ? \ / : [ ] < > & ,
//!   ;` NUL BEL TAB CR LF; a space becomes `_`); `%#f` without its last extension, `%$f`
//!   the extension only; `%F`, `%#F`, `%$F` the same in upper case.
//! - `%Q` ODBC time `YYYY-MM-DD_HH.MM.SS.mmm` (`:` → `.`, space → `_` as IRIS writes it in
//!   file names), `%q` HL7 time `YYYYMMDDHHMMSS`, `%N` milliseconds.
//! - `%Y %y %m %d %H %M %S %j` as strftime.
//! - `%+(spec)`: a uniqueness counter, `%!+(spec)`: a counter only when the name without
//!   it is taken. `spec` ending in digits or `n`s counts in decimal with that many digits
//!   (`%+(nn)`, `%+(001)`), ending in another letter counts `a`, `b`, … `z`, `aa`… after
//!   the text before it (`%!+(_a)` → `_a`, `_b`). A bare `%+` counts from 1.
//! - `%%` a percent sign. Any other code is kept as written.
//!
//! Times are local time, as in IRIS.

/// The broken-down local time a name is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    /// Day of the year, 1..=366.
    pub yday: u32,
}

impl LocalTime {
    /// Now, in the machine's time zone.
    pub fn now() -> LocalTime {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs() as libc::time_t;
        // SAFETY: localtime_r reads `secs` and writes only into `tm`, which we own; both
        // pointers are valid for the call. It is the thread-safe form.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
        if !ok {
            return LocalTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                millis: 0,
                yday: 1,
            };
        }
        LocalTime {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec.min(59) as u32,
            millis: now.subsec_millis(),
            yday: (tm.tm_yday + 1) as u32,
        }
    }
}

/// A counter code found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    only_if_needed: bool,
    prefix: String,
    style: CounterStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CounterStyle {
    Decimal { width: usize },
    Letters,
}

impl Counter {
    fn render(&self, n: u32) -> String {
        let body = match self.style {
            CounterStyle::Decimal { width } => format!("{n:0width$}"),
            CounterStyle::Letters => letters(n),
        };
        format!("{}{body}", self.prefix)
    }
}

/// 1 → a, 26 → z, 27 → aa.
fn letters(mut n: u32) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// Characters IRIS strips from `%f`.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| {
            !matches!(
                c,
                '|' | '?'
                    | '\\'
                    | '/'
                    | ':'
                    | '['
                    | ']'
                    | '<'
                    | '>'
                    | '&'
                    | ','
                    | ';'
                    | '\0'
                    | '\x07'
                    | '\t'
                    | '\r'
                    | '\n'
            )
        })
        .map(|c| if c == ' ' { '_' } else { c })
        .collect()
}

fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot + 1..]),
        _ => (name, ""),
    }
}

/// Expands `spec` without its counter: the text before and after it, and the counter.
fn expand_parts(spec: &str, source: &str, t: &LocalTime) -> (String, Option<Counter>, String) {
    let source = sanitize(source);
    let (stem, ext) = split_extension(&source);
    let mut before = String::new();
    let mut after = String::new();
    let mut counter = None;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        let out = if counter.is_some() {
            &mut after
        } else {
            &mut before
        };
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut modifier = None;
        if let Some(&m) = chars.peek().filter(|m| matches!(m, '#' | '$' | '!')) {
            modifier = Some(m);
            chars.next();
        }
        let Some(code) = chars.next() else {
            out.push('%');
            break;
        };
        match code {
            'f' | 'F' => {
                let part = match modifier {
                    Some('#') => stem,
                    Some('$') => ext,
                    _ => source.as_str(),
                };
                if code == 'F' {
                    out.push_str(&part.to_uppercase());
                } else {
                    out.push_str(part);
                }
            }
            'Q' => out.push_str(&format!(
                "{:04}-{:02}-{:02}_{:02}.{:02}.{:02}.{:03}",
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
            )),
            'q' => out.push_str(&format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )),
            'N' => out.push_str(&format!("{:03}", t.millis)),
            'Y' => out.push_str(&format!("{:04}", t.year)),
            'y' => out.push_str(&format!("{:02}", t.year.rem_euclid(100))),
            'm' => out.push_str(&format!("{:02}", t.month)),
            'd' => out.push_str(&format!("{:02}", t.day)),
            'H' => out.push_str(&format!("{:02}", t.hour)),
            'M' => out.push_str(&format!("{:02}", t.minute)),
            'S' => out.push_str(&format!("{:02}", t.second)),
            'j' => out.push_str(&format!("{:03}", t.yday)),
            '%' => out.push('%'),
            '+' if counter.is_none() => {
                let mut spec_text = String::new();
                if chars.peek() == Some(&'(') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c == ')' {
                            break;
                        }
                        spec_text.push(c);
                    }
                }
                counter = Some(parse_counter(&spec_text, modifier == Some('!')));
            }
            other => {
                out.push('%');
                if let Some(m) = modifier {
                    out.push(m);
                }
                out.push(other);
            }
        }
    }
    (before, counter, after)
}

fn parse_counter(spec: &str, only_if_needed: bool) -> Counter {
    let digits = spec
        .chars()
        .rev()
        .take_while(char::is_ascii_alphanumeric)
        .count();
    let tail: String = spec.chars().skip(spec.chars().count() - digits).collect();
    let prefix: String = spec.chars().take(spec.chars().count() - digits).collect();
    // `n` stands for a digit (`%+(nn)`: two digits), any other letter counts in letters.
    let letter_counter =
        tail.chars().all(|c| c.is_ascii_alphabetic()) && !tail.chars().all(|c| c == 'n');
    let style = if !tail.is_empty() && letter_counter {
        CounterStyle::Letters
    } else {
        CounterStyle::Decimal {
            width: tail.len().max(1),
        }
    };
    Counter {
        only_if_needed,
        prefix,
        style,
    }
}

/// The file name for `spec`, made unique in `dir` when the spec has a counter.
///
/// `exists` says whether a name is taken (the file system in production, a set in tests).
/// A spec without a counter may name an existing file: the caller appends or overwrites
/// per the operation's `Overwrite` setting, as IRIS does.
pub fn expand(spec: &str, source: &str, t: &LocalTime, exists: impl Fn(&str) -> bool) -> String {
    let (before, counter, after) = expand_parts(spec, source, t);
    let Some(counter) = counter else {
        return before + &after;
    };
    if counter.only_if_needed {
        let plain = format!("{before}{after}");
        if !exists(&plain) {
            return plain;
        }
    }
    (1..)
        .map(|n| format!("{before}{}{after}", counter.render(n)))
        .find(|name| !exists(name))
        .expect("an unused name exists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const T: LocalTime = LocalTime {
        year: 2026,
        month: 11,
        day: 23,
        hour: 9,
        minute: 5,
        second: 7,
        millis: 42,
        yday: 327,
    };

    #[test]
    fn the_iris_default_spec_names_source_and_odbc_time() {
        let name = expand("%f_%Q", "in/adt feed.hl7", &T, |_| false);
        assert_eq!(name, "inadt_feed.hl7_2026-11-23_09.05.07.042");
    }

    #[test]
    fn source_parts_and_time_codes_expand() {
        let name = expand("%#f-%$F-%q-%Y%m%d%j-%%", "lab.result.hl7", &T, |_| false);
        assert_eq!(name, "lab.result-HL7-20261123090507-20261123327-%");
    }

    #[test]
    fn an_only_if_needed_counter_appears_only_on_collision() {
        let taken: HashSet<&str> = ["a.hl7", "a_a.hl7"].into();
        assert_eq!(
            expand("b%!+(_a).hl7", "", &T, |n| taken.contains(n)),
            "b.hl7"
        );
        assert_eq!(
            expand("a%!+(_a).hl7", "", &T, |n| taken.contains(n)),
            "a_b.hl7"
        );
    }

    #[test]
    fn a_counter_counts_in_decimal_with_its_width() {
        let taken: HashSet<&str> = ["out01.hl7"].into();
        assert_eq!(
            expand("out%+(nn).hl7", "", &T, |n| taken.contains(n)),
            "out02.hl7"
        );
        assert_eq!(expand("x%+.hl7", "", &T, |_| false), "x1.hl7");
    }

    #[test]
    fn letters_count_like_spreadsheet_columns() {
        assert_eq!(letters(1), "a");
        assert_eq!(letters(26), "z");
        assert_eq!(letters(27), "aa");
    }

    #[test]
    fn unknown_codes_are_kept() {
        assert_eq!(expand("%Z%#Z", "", &T, |_| false), "%Z%#Z");
    }
}
