//! IRIS `ReplyCodeActions`: the setting of an HL7 operation that says what to do with each
//! kind of reply, parsed once at startup and evaluated for every message sent.
//!
//! ```text
//! setting = entry *( "," entry )             empty or blank: the HL7 default below
//! entry   = codes "=" actions
//! codes   = code | "(" code *( "," code ) ")"
//! code    = ":?A"  MSA-1 is AA or CA         ":?E"  AE or CE        ":?R"  AR or CR
//!         | ":" 1*char  MSA-1 is exactly this (":AA")
//!         | ":_"   MSA-1 is empty            ":*"   any MSA-1 no MSA code of the list matches
//!         | ":~"   the reply has no MSA      ":I?"  MSA-2 is not the sent MSH-10
//!         | ":T?"  the reply's type is not the expected reply type (MSH-9.1, ACK by default)
//!         | "E"    an error: transport failure, error reply (AE AR CE CR), bad reply
//!         | "E#" code   an error whose code is this (ERR-3.1 or ERR-1.4.1, or ours below)
//!         | "E*" text   an error whose text contains this (MSA-3, ERR-8, ERR-1.4.2, ours)
//!         | "X"    no reply at all (ResponseTimeout, closed, cannot connect)
//! actions = 1*( "C" | "W" | "R" | "S" | "D" | "F" )
//!           C complete · W warn · R retry (RetryInterval, until FailureTimeout, then F unless
//!           S or D is given) · S suspend · D disable the operation · F fail
//! HL7 default  ":?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C"
//! ```
//!
//! Evaluation (IRIS semantics): every entry whose actions are only `W` is evaluated and each
//! match is reported as a warning; the other entries are tried left to right and the first
//! match wins (its `W`, if any, is a warning too). When nothing but warnings matches: a
//! retryable failure retries then fails, an accepted reply (AA, CA) completes, anything
//! else fails (IRIS: `:*` defaults to F, `E` defaults to F).
//!
//! One departure, on purpose: a reply whose MSA-2 is not the control id sent is never
//! taken as the answer to the message (it may be a late or duplicated ACK of another one).
//! For it the MSA codes (`:?A`, `:XX`, `:_`, `:*`, `:~`) do not match; `:I?`, `E` codes and
//! `:T?` do, and with the HL7 default (`:I?=W`) it warns then retries on a new connection.
//!
//! Our own error codes for `E#`: `ResponseTimeout`, `ConnectFailed`, `ConnectionClosed`,
//! `ControlIdMismatch`, `UnparseableReply`, `NoMsa`.
//!
//! Limits: an `E*` text cannot contain a comma (the list separator), as in IRIS.

use memchr::memmem;

use crate::config::ConfigError;

/// The HL7 operations' default setting.
pub const HL7_DEFAULT: &str = ":?R=RF,:?E=S,:~=S,:?A=C,:*=S,:I?=W,:T?=C";

/// What the engine does with the message just sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Completed: delivered and accepted.
    Complete,
    /// Send again after RetryInterval, until FailureTimeout, then give up as said.
    Retry {
        /// What to do when retrying stops.
        then: GiveUp,
    },
    /// Suspend the message (kept for an operator), log an error, go on with the next.
    Suspend,
    /// Disable the operation, log an error, put the message back at the front of its queue.
    Disable,
    /// Fail the message with an error, go on with the next.
    Fail,
}

/// What a retry ends in once FailureTimeout expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// `RF` (and `R` alone).
    Fail,
    /// `RS`.
    Suspend,
    /// `RD`.
    Disable,
}

/// What happened to one sent message, as ReplyCodeActions sees it. An operation fills it
/// in from its adapter's outcome (the MLLP client's: [`crate::items::mllp_reply`]); tests
/// and other adapters can build it directly.
#[derive(Debug, Clone, Default)]
pub struct ReplyFacts<'a> {
    /// A reply message arrived (false: `X`).
    pub replied: bool,
    /// The reply's MSA-1 (`Some(b"")` when MSA-1 is empty); `None` when it has no MSA.
    pub msa_1: Option<&'a [u8]>,
    /// The reply's MSA-2 is not the control id that was sent (`:I?`).
    pub control_id_mismatch: bool,
    /// The reply's type is not the expected reply type (`:T?`).
    pub reply_type_mismatch: bool,
    /// An error condition (`E`): transport failure, error-class reply, unusable reply.
    pub error: bool,
    /// Error codes for `E#`.
    pub error_codes: Vec<&'a [u8]>,
    /// Error texts for `E*`.
    pub error_texts: Vec<&'a [u8]>,
    /// The failure is worth retrying when nothing else is said (transport failures).
    pub retryable: bool,
}

impl ReplyFacts<'_> {
    fn msa_usable(&self) -> bool {
        self.replied && !self.control_id_mismatch
    }

    fn accepted(&self) -> bool {
        self.msa_usable() && matches!(self.msa_1, Some(b"AA" | b"CA"))
    }
}

/// One code of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    MsaAccept,
    MsaError,
    MsaReject,
    MsaLiteral(Vec<u8>),
    MsaEmpty,
    MsaOther,
    NoMsa,
    ControlIdMismatch,
    ReplyTypeMismatch,
    Error,
    ErrorCode(Vec<u8>),
    ErrorText(Vec<u8>),
    NoReply,
}

impl Condition {
    fn parse(text: &str) -> Result<Self, String> {
        let code = match text {
            ":?A" => Self::MsaAccept,
            ":?E" => Self::MsaError,
            ":?R" => Self::MsaReject,
            ":_" => Self::MsaEmpty,
            ":*" => Self::MsaOther,
            ":~" => Self::NoMsa,
            ":I?" => Self::ControlIdMismatch,
            ":T?" => Self::ReplyTypeMismatch,
            "E" => Self::Error,
            "X" => Self::NoReply,
            ":" => return Err("a ':' code needs an MSA-1 value or ?A ?E ?R _ * ~ I? T?".into()),
            _ if text.starts_with(':') => Self::MsaLiteral(text.as_bytes()[1..].to_vec()),
            _ if text.starts_with("E#") && text.len() > 2 => Self::ErrorCode(text[2..].into()),
            _ if text.starts_with("E*") && text.len() > 2 => Self::ErrorText(text[2..].into()),
            _ => return Err(format!("unknown code {text:?}")),
        };
        Ok(code)
    }

    /// Whether this code tests the MSA-1 value (the codes `:*` is "other than").
    fn matches_msa_value(&self, msa_1: &[u8]) -> Option<bool> {
        match self {
            Self::MsaAccept => Some(matches!(msa_1, b"AA" | b"CA")),
            Self::MsaError => Some(matches!(msa_1, b"AE" | b"CE")),
            Self::MsaReject => Some(matches!(msa_1, b"AR" | b"CR")),
            Self::MsaLiteral(v) => Some(v.as_slice() == msa_1),
            Self::MsaEmpty => Some(msa_1.is_empty()),
            _ => None,
        }
    }

    fn matches(&self, facts: &ReplyFacts<'_>, msa_matched_elsewhere: bool) -> bool {
        let msa = if facts.msa_usable() {
            Some(facts.msa_1)
        } else {
            None
        };
        match self {
            Self::NoMsa => msa == Some(None),
            Self::MsaOther => matches!(msa, Some(Some(_))) && !msa_matched_elsewhere,
            Self::ControlIdMismatch => facts.replied && facts.control_id_mismatch,
            Self::ReplyTypeMismatch => facts.replied && facts.reply_type_mismatch,
            Self::Error => facts.error,
            Self::ErrorCode(c) => facts.error && facts.error_codes.contains(&c.as_slice()),
            Self::ErrorText(t) => {
                facts.error
                    && facts
                        .error_texts
                        .iter()
                        .any(|e| memmem::find(e, t).is_some())
            }
            Self::NoReply => !facts.replied,
            msa_code => match msa {
                Some(Some(value)) => msa_code.matches_msa_value(value) == Some(true),
                _ => false,
            },
        }
    }
}

/// The action letters of an entry, as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Letters {
    complete: bool,
    warn: bool,
    retry: bool,
    then: Option<GiveUp>,
}

impl Letters {
    fn parse(text: &str) -> Result<Self, String> {
        let mut letters = Self {
            complete: false,
            warn: false,
            retry: false,
            then: None,
        };
        if text.is_empty() {
            return Err("no action after '='".into());
        }
        for ch in text.chars() {
            let then = match ch.to_ascii_uppercase() {
                'C' => {
                    letters.complete = true;
                    continue;
                }
                'W' => {
                    letters.warn = true;
                    continue;
                }
                'R' => {
                    letters.retry = true;
                    continue;
                }
                'S' => GiveUp::Suspend,
                'D' => GiveUp::Disable,
                'F' => GiveUp::Fail,
                other => return Err(format!("unknown action {other:?} (expected C W R S D F)")),
            };
            if letters.then.is_some_and(|t| t != then) {
                return Err("at most one of S, D, F".into());
            }
            letters.then = Some(then);
        }
        if letters.complete && (letters.retry || letters.then.is_some()) {
            return Err("C cannot be combined with R, S, D or F".into());
        }
        Ok(letters)
    }

    fn warn_only(&self) -> bool {
        self.warn && !self.complete && !self.retry && self.then.is_none()
    }

    fn action(&self) -> Action {
        match (self.retry, self.then) {
            (true, then) => Action::Retry {
                then: then.unwrap_or(GiveUp::Fail),
            },
            (false, Some(GiveUp::Fail)) => Action::Fail,
            (false, Some(GiveUp::Suspend)) => Action::Suspend,
            (false, Some(GiveUp::Disable)) => Action::Disable,
            (false, None) => Action::Complete,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    text: String,
    codes: Vec<Condition>,
    letters: Letters,
}

/// A parsed `ReplyCodeActions` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyCodeActions {
    entries: Vec<Entry>,
}

/// The result of evaluating a reply: the action, and the entries that asked for a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'r> {
    /// What to do with the message.
    pub action: Action,
    /// The entry that chose the action, as written; `None` when nothing matched and the
    /// default applied.
    pub matched: Option<&'r str>,
    /// Entries with a `W` that matched (W-only entries, and the chosen one if it has W).
    pub warnings: Vec<&'r str>,
}

impl Default for ReplyCodeActions {
    fn default() -> Self {
        Self::parse(HL7_DEFAULT).expect("the HL7 default ReplyCodeActions parses")
    }
}

impl ReplyCodeActions {
    /// Parses the setting; an empty or blank string is the HL7 default.
    pub fn parse(setting: &str) -> Result<Self, ConfigError> {
        if setting.trim().is_empty() {
            return Ok(Self::default());
        }
        let entries = split_entries(setting)
            .enumerate()
            .map(|(index, entry)| {
                parse_entry(entry.trim()).map_err(|reason| ConfigError::ReplyCodeActions {
                    index,
                    entry: entry.to_string(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    /// Decides what to do with a message given what happened to it.
    pub fn evaluate(&self, facts: &ReplyFacts<'_>) -> Decision<'_> {
        let msa_matched = |except_other: bool| {
            facts.msa_usable()
                && facts.msa_1.is_some_and(|value| {
                    self.entries.iter().flat_map(|e| &e.codes).any(|c| {
                        !(except_other && *c == Condition::MsaOther)
                            && c.matches_msa_value(value) == Some(true)
                    })
                })
        };
        let msa_matched_elsewhere = msa_matched(true);
        let mut decision = Decision {
            action: fallback(facts),
            matched: None,
            warnings: Vec::new(),
        };
        for entry in &self.entries {
            if !entry
                .codes
                .iter()
                .any(|c| c.matches(facts, msa_matched_elsewhere))
            {
                continue;
            }
            if entry.letters.warn_only() {
                decision.warnings.push(&entry.text);
            } else if decision.matched.is_none() {
                decision.matched = Some(&entry.text);
                decision.action = entry.letters.action();
                if entry.letters.warn {
                    decision.warnings.push(&entry.text);
                }
            }
        }
        decision
    }
}

fn fallback(facts: &ReplyFacts<'_>) -> Action {
    if facts.retryable || facts.control_id_mismatch {
        Action::Retry { then: GiveUp::Fail }
    } else if facts.accepted() && !facts.error {
        Action::Complete
    } else {
        Action::Fail
    }
}

/// Splits on commas outside parentheses.
fn split_entries(setting: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0u32;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, ch) in setting.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push(&setting[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&setting[start..]);
    pieces.into_iter()
}

fn parse_entry(entry: &str) -> Result<Entry, String> {
    let (codes, actions) = entry.rsplit_once('=').ok_or("expected <code>=<actions>")?;
    let codes = codes.trim();
    let codes = match codes.strip_prefix('(') {
        Some(inner) => inner
            .strip_suffix(')')
            .ok_or("unclosed '(' in the code list")?
            .split(',')
            .map(|c| Condition::parse(c.trim()))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![Condition::parse(codes)?],
    };
    let letters = Letters::parse(actions.trim())?;
    Ok(Entry {
        text: entry.to_string(),
        codes,
        letters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(msa_1: &'static [u8]) -> ReplyFacts<'static> {
        let error = matches!(msa_1, b"AE" | b"AR" | b"CE" | b"CR");
        ReplyFacts {
            replied: true,
            msa_1: Some(msa_1),
            error,
            ..ReplyFacts::default()
        }
    }

    fn no_reply() -> ReplyFacts<'static> {
        ReplyFacts {
            error: true,
            retryable: true,
            error_codes: vec![b"ResponseTimeout"],
            ..ReplyFacts::default()
        }
    }

    fn act(setting: &str, facts: &ReplyFacts<'_>) -> Action {
        ReplyCodeActions::parse(setting)
            .unwrap()
            .evaluate(facts)
            .action
    }

    #[test]
    fn hl7_default_completes_accepts_suspends_errors_and_retries_rejects() {
        let d = ReplyCodeActions::parse("").unwrap();
        assert_eq!(d.evaluate(&reply(b"AA")).action, Action::Complete);
        assert_eq!(d.evaluate(&reply(b"CA")).action, Action::Complete);
        assert_eq!(d.evaluate(&reply(b"AE")).action, Action::Suspend);
        assert_eq!(d.evaluate(&reply(b"CE")).action, Action::Suspend);
        assert_eq!(
            d.evaluate(&reply(b"AR")).action,
            Action::Retry { then: GiveUp::Fail }
        );
        assert_eq!(d.evaluate(&reply(b"ZZ")).action, Action::Suspend);
        assert_eq!(d.evaluate(&reply(b"")).action, Action::Suspend);
        let no_msa = ReplyFacts {
            replied: true,
            msa_1: None,
            ..ReplyFacts::default()
        };
        assert_eq!(d.evaluate(&no_msa).action, Action::Suspend);
    }

    #[test]
    fn hl7_default_warns_on_control_id_mismatch_and_retries_instead_of_accepting() {
        let d = ReplyCodeActions::default();
        let facts = ReplyFacts {
            control_id_mismatch: true,
            error: true,
            ..reply(b"AA")
        };
        let decision = d.evaluate(&facts);
        assert_eq!(decision.action, Action::Retry { then: GiveUp::Fail });
        assert_eq!(decision.warnings, vec![":I?=W"]);
        assert_eq!(decision.matched, None);
    }

    #[test]
    fn reply_type_mismatch_completes_under_the_default_and_can_be_made_to_fail() {
        let facts = ReplyFacts {
            reply_type_mismatch: true,
            ..reply(b"ZZ")
        };
        assert_eq!(act(":T?=C", &facts), Action::Complete);
        assert_eq!(act(":T?=F,:*=S", &facts), Action::Fail);
        assert_eq!(act(":*=S,:T?=F", &facts), Action::Suspend);
    }

    #[test]
    fn no_reply_matches_x_and_retries_by_default() {
        assert_eq!(act("X=S", &no_reply()), Action::Suspend);
        assert_eq!(
            act(HL7_DEFAULT, &no_reply()),
            Action::Retry { then: GiveUp::Fail }
        );
        assert_eq!(
            act(":?A=C", &no_reply()),
            Action::Retry { then: GiveUp::Fail }
        );
    }

    #[test]
    fn generic_error_codes_match_code_and_text() {
        let facts = ReplyFacts {
            error_codes: vec![b"207"],
            error_texts: vec![b"Application internal error: database down"],
            ..reply(b"AE")
        };
        assert_eq!(
            act("E#207=RD", &facts),
            Action::Retry {
                then: GiveUp::Disable
            }
        );
        assert_eq!(
            act("E#208=RD,E*database=RS", &facts),
            Action::Retry {
                then: GiveUp::Suspend
            }
        );
        assert_eq!(act("E*nothing=D,E=F", &facts), Action::Fail);
        assert_eq!(act("E=F", &reply(b"AA")), Action::Complete);
    }

    #[test]
    fn literal_and_empty_msa_codes_match_exactly() {
        assert_eq!(act(":AA=C,:*=F", &reply(b"AA")), Action::Complete);
        assert_eq!(act(":CA=S,:*=F", &reply(b"AA")), Action::Fail);
        assert_eq!(act(":_=C,:*=F", &reply(b"")), Action::Complete);
    }

    #[test]
    fn any_other_msa_does_not_match_values_another_code_matches() {
        // ":*" first in the list still leaves AA to ":?A".
        assert_eq!(act(":*=S,:?A=C", &reply(b"AA")), Action::Complete);
        assert_eq!(act(":*=S,:?A=C", &reply(b"AE")), Action::Suspend);
    }

    #[test]
    fn warn_only_entries_are_all_reported_and_first_other_match_wins() {
        let rca = ReplyCodeActions::parse(":?E=W,E=W,:?E=S,E=F,:*=D").unwrap();
        let decision = rca.evaluate(&reply(b"AE"));
        assert_eq!(decision.action, Action::Suspend);
        assert_eq!(decision.matched, Some(":?E=S"));
        assert_eq!(decision.warnings, vec![":?E=W", "E=W"]);
    }

    #[test]
    fn warn_only_match_with_nothing_else_completes_an_accepted_reply() {
        let rca = ReplyCodeActions::parse(":?A=W").unwrap();
        let decision = rca.evaluate(&reply(b"AA"));
        assert_eq!(decision.action, Action::Complete);
        assert_eq!(decision.warnings, vec![":?A=W"]);
    }

    #[test]
    fn combined_warn_and_action_warns_and_acts() {
        let rca = ReplyCodeActions::parse(":?R=WS").unwrap();
        let decision = rca.evaluate(&reply(b"AR"));
        assert_eq!(decision.action, Action::Suspend);
        assert_eq!(decision.warnings, vec![":?R=WS"]);
    }

    #[test]
    fn parenthesised_code_lists_share_one_action() {
        let rca = ReplyCodeActions::parse("(:?E,:?R)=RF, :?A=C").unwrap();
        assert_eq!(
            rca.evaluate(&reply(b"AE")).action,
            Action::Retry { then: GiveUp::Fail }
        );
        assert_eq!(
            rca.evaluate(&reply(b"CR")).action,
            Action::Retry { then: GiveUp::Fail }
        );
        assert_eq!(rca.evaluate(&reply(b"CA")).action, Action::Complete);
    }

    #[test]
    fn retry_alone_means_retry_then_fail() {
        assert_eq!(
            act(":?E=R", &reply(b"AE")),
            Action::Retry { then: GiveUp::Fail }
        );
        assert_eq!(
            act(":?E=RS", &reply(b"AE")),
            Action::Retry {
                then: GiveUp::Suspend
            }
        );
        assert_eq!(act(":?E=D", &reply(b"AE")), Action::Disable);
    }

    #[test]
    fn unmatched_error_reply_fails() {
        assert_eq!(act(":?A=C", &reply(b"AE")), Action::Fail);
    }

    #[test]
    fn malformed_settings_are_rejected_with_the_entry() {
        for bad in [
            ":?A",
            ":?A=Q",
            ":?A=CF",
            ":?A=SF",
            "Z=C",
            ":=C",
            "(:?A,:?E=C",
            "E#=F",
            ":?A=",
        ] {
            let err = ReplyCodeActions::parse(bad).unwrap_err();
            assert!(
                matches!(err, ConfigError::ReplyCodeActions { index: 0, .. }),
                "{bad}: {err}"
            );
        }
        let err = ReplyCodeActions::parse(":?A=C,:?E=Q").unwrap_err();
        assert!(
            matches!(err, ConfigError::ReplyCodeActions { index: 1, .. }),
            "{err}"
        );
    }
}
