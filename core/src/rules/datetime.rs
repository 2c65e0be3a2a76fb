//! Date and time formats of `ConvertDateTime` and `CurrentDateTime` (IRIS's
//! `Ens.Util.Time` format codes), the subset hie reads and writes:
//!
//! ```text
//! %Y four-digit year   %y two-digit year (00-49 → 20xx, 50-99 → 19xx)
//! %m month 01-12       %d day 01-31
//! %H hour 00-23        %M minute 00-59      %S second 00-59
//! %q, %Q  ODBC form "YYYY-MM-DD HH:MM:SS"   %%  a "%"
//! ```
//! Any other character stands for itself. A format with another code is refused when the
//! rule loads. A value that does not fit its input format is returned unchanged, as IRIS
//! returns it.

/// A moment's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Moment {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Checks that every code of `format` is one hie knows.
pub fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('Y' | 'y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'q' | 'Q' | '%') => {}
                Some(o) => {
                    return Err(format!(
                        "date format {format:?}: code %{o} is not supported by hie"
                    ));
                }
                None => return Err(format!("date format {format:?} ends in a lone %")),
            }
        }
    }
    Ok(())
}

/// Reads `value` by `format`; `None` when it does not fit.
pub fn parse(value: &str, format: &str) -> Option<Moment> {
    let v = value.as_bytes();
    let mut at = 0;
    let mut m = Moment {
        month: 1,
        day: 1,
        ..Moment::default()
    };
    let mut chars = format.chars();
    let digits = |at: &mut usize, n: usize| -> Option<u32> {
        let s = v.get(*at..*at + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *at += n;
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf).as_bytes();
            if !v[at..].starts_with(lit) {
                return None;
            }
            at += lit.len();
            continue;
        }
        match chars.next()? {
            'Y' => m.year = digits(&mut at, 4)?,
            'y' => {
                let y = digits(&mut at, 2)?;
                m.year = if y < 50 { 2000 + y } else { 1900 + y };
            }
            'm' => m.month = digits(&mut at, 2)?,
            'd' => m.day = digits(&mut at, 2)?,
            'H' => m.hour = digits(&mut at, 2)?,
            'M' => m.minute = digits(&mut at, 2)?,
            'S' => m.second = digits(&mut at, 2)?,
            'q' | 'Q' => {
                let odbc = parse(
                    std::str::from_utf8(v.get(at..at + 19)?).ok()?,
                    "%Y-%m-%d %H:%M:%S",
                )?;
                at += 19;
                m = odbc;
            }
            '%' => {
                if v.get(at) != Some(&b'%') {
                    return None;
                }
                at += 1;
            }
            _ => return None,
        }
    }
    let valid = at == v.len()
        && (1..=12).contains(&m.month)
        && (1..=31).contains(&m.day)
        && m.hour < 24
        && m.minute < 60
        && m.second < 61;
    valid.then_some(m)
}

/// Writes `m` by `format`.
pub fn format(m: &Moment, format: &str, out: &mut String) {
    use std::fmt::Write as _;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{:04}", m.year),
            Some('y') => write!(out, "{:02}", m.year % 100),
            Some('m') => write!(out, "{:02}", m.month),
            Some('d') => write!(out, "{:02}", m.day),
            Some('H') => write!(out, "{:02}", m.hour),
            Some('M') => write!(out, "{:02}", m.minute),
            Some('S') => write!(out, "{:02}", m.second),
            Some('q' | 'Q') => write!(
                out,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                m.year, m.month, m.day, m.hour, m.minute, m.second
            ),
            Some('%') => write!(out, "%"),
            Some(o) => write!(out, "%{o}"),
            None => write!(out, "%"),
        };
    }
}

/// The local time now.
pub fn now_local() -> Moment {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value, and
    // localtime_r writes only into it (it is the thread-safe form of localtime).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return Moment::default();
    }
    Moment {
        year: (tm.tm_year + 1900) as u32,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_timestamps_convert_to_odbc_and_back() {
        let m = parse("20240229173005", "%Y%m%d%H%M%S").unwrap();
        let mut out = String::new();
        format(&m, "%q", &mut out);
        assert_eq!(out, "2024-02-29 17:30:05");
        let back = parse(&out, "%Q").unwrap();
        out.clear();
        format(&back, "%d/%m/%y", &mut out);
        assert_eq!(out, "29/02/24");
        assert!(parse("2024022", "%Y%m%d").is_none());
        assert!(parse("20241301", "%Y%m%d").is_none());
        assert!(check_format("%Y%j").is_err());
        assert!(check_format("%Y-%m-%d").is_ok());
    }
}
