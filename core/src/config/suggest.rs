//! "Did you mean": the closest known name to a misspelt one, for setting names, item
//! attributes and TOML keys.
//!
//! Closeness is the edit distance (insert, delete, replace one character, or swap two
//! neighbours), compared without case, so `Targetconfignames`, `TargetConfigName` and
//! `TragetConfigNames` all find `TargetConfigNames`. A name is suggested only when it is
//! close enough to be a slip: at most [`DISTANCE_MAX`] edits, and at most one per three
//! characters of the name (at least one).
//!
//! Limits: names longer than [`NAME_CHARS_MAX`] characters get no suggestion (the distance
//! is quadratic in the length), so a hostile file cannot make the check slow.

/// Most edits between a misspelt name and the one suggested.
pub const DISTANCE_MAX: usize = 3;

/// Longest name compared, in characters.
pub const NAME_CHARS_MAX: usize = 64;

/// The known name closest to `name`, if one is close enough (see the module header).
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name: Vec<char> = name.to_lowercase().chars().collect();
    if name.is_empty() || name.len() > NAME_CHARS_MAX {
        return None;
    }
    let limit = DISTANCE_MAX.min((name.len() / 3).max(1));
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let other: Vec<char> = candidate.to_lowercase().chars().collect();
        if other.len() > NAME_CHARS_MAX || other.len().abs_diff(name.len()) > limit {
            continue;
        }
        let d = distance(&name, &other);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `" (did you mean X?)"` for the closest known name, or an empty string.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, known).map_or_else(String::new, |n| format!(" (did you mean {n}?)"))
}

/// Edit distance with swaps of neighbours (optimal string alignment), over three rows.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 0..a.len() {
        current[0] = i + 1;
        for j in 0..b.len() {
            let replace = previous[j] + usize::from(a[i] != b[j]);
            let mut d = replace.min(previous[j + 1] + 1).min(current[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            current[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["TargetConfigNames", "Port", "ReplyCodeActions", "AckMode"];

    #[test]
    fn a_slip_finds_the_known_name_whatever_the_case() {
        let known = KNOWN.iter().copied();
        assert_eq!(
            closest("TargetConfigName", known.clone()),
            Some("TargetConfigNames")
        );
        assert_eq!(
            closest("targetconfignames", known.clone()),
            Some("TargetConfigNames")
        );
        assert_eq!(closest("Prot", known.clone()), Some("Port"));
        assert_eq!(closest("AckMod", known.clone()), Some("AckMode"));
        assert_eq!(
            closest("TragetConfigNames", known),
            Some("TargetConfigNames")
        );
    }

    #[test]
    fn a_different_name_gets_no_suggestion() {
        let known = KNOWN.iter().copied();
        assert_eq!(closest("Host", known.clone()), None);
        assert_eq!(closest("ArchiveIO", known.clone()), None);
        assert_eq!(closest("", known.clone()), None);
        assert_eq!(closest(&"x".repeat(1000), known.clone()), None);
        assert_eq!(did_you_mean("Schmedule", known), "");
    }
}
