//! The grace period of a key rotation: `apikey rotate KEY_ID --grace DURATION`
//! keeps the old secret working for that long (contract: "e.g. `1h`, `7d`, at
//! most 30 days"), so a deployment can pick up the new secret before the old
//! one stops.
//!
//! Accepted syntax, deliberately small: one run of ASCII digits followed by
//! exactly one lower-case unit, with optional surrounding ASCII whitespace:
//!
//! | unit | meaning |
//! |------|---------|
//! | `s`  | seconds |
//! | `m`  | minutes |
//! | `h`  | hours   |
//! | `d`  | days (86,400 s; calendar-free, so no daylight-saving surprises) |
//!
//! Not accepted, each with its own error so the CLI can say what is wrong:
//! zero (a grace of nothing is the same as no `--grace`: say so rather than
//! silently doing the immediate rotation), a sign, a missing or unknown unit
//! (`w`, `M` and `y` are refused: `M` reads as months to some and minutes to
//! others, and anything a week or longer is better written in days), digits
//! outside ASCII (`٣d`: `char::is_numeric` would accept them, and a grace
//! written in a script the operator did not mean to type is a mistake),
//! compound forms (`1h30m`: write `90m`), fractions and anything over 30 days.
//! Arithmetic is checked, so `99999999999999999999d` is an overflow error, not
//! a wrap-around into a small grace.

use thiserror::Error;

/// The longest grace the contract allows: 30 days, in seconds.
pub const MAX_GRACE_SECS: u32 = 30 * 86_400;

/// Why a grace duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraceError {
    #[error("the grace period is empty: expected a number and a unit, e.g. 1h or 7d")]
    Empty,
    #[error("the grace period {0:?} is negative: expected e.g. 1h or 7d")]
    Negative(String),
    #[error("the grace period is zero: leave out --grace to stop the old secret at once")]
    Zero,
    #[error("the grace period {0:?} has no number: expected e.g. 1h or 7d")]
    MissingNumber(String),
    #[error("the grace period {0:?} has no unit: add s, m, h or d (e.g. 30m, 7d)")]
    MissingUnit(String),
    #[error("the grace period {0:?} uses digits other than 0-9")]
    NonAsciiDigit(String),
    #[error("the grace period {input:?} has an unknown unit {unit:?}: use s, m, h or d")]
    UnknownUnit { input: String, unit: String },
    #[error("the grace period {0:?} is too large a number")]
    Overflow(String),
    #[error("the grace period {input:?} is longer than the 30 days allowed")]
    TooLong { input: String },
}

/// Longest excerpt of the input echoed back in an error (in characters, so a
/// multi-byte character is never cut).
const SHOWN_CHARS: usize = 40;

fn shown(raw: &str) -> String {
    crate::credentials::excerpt(raw, SHOWN_CHARS)
}

/// Seconds in one of the accepted units.
fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3_600),
        "d" => Some(86_400),
        _ => None,
    }
}

/// Parses a grace duration such as `30m`, `1h` or `7d` into seconds, from 1
/// to [`MAX_GRACE_SECS`] inclusive. The result fits a `u32`, so widening it to
/// the `i64` timestamps keygate stores is lossless (`i64::from`).
pub fn parse_grace(raw: &str) -> Result<u32, GraceError> {
    let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return Err(GraceError::Empty);
    }
    if s.starts_with('-') || s.starts_with('\u{2212}') {
        return Err(GraceError::Negative(shown(s)));
    }
    // Split at the first character that is not an ASCII digit; `char_indices`
    // yields character boundaries only, and `split_at_checked` could not panic
    // even if it did not.
    let split = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(i, _)| i);
    let Some((digits, unit)) = s.split_at_checked(split) else {
        return Err(GraceError::MissingNumber(shown(s)));
    };
    if unit.chars().any(|c| c.is_numeric() && !c.is_ascii_digit()) {
        return Err(GraceError::NonAsciiDigit(shown(s)));
    }
    if digits.is_empty() {
        return Err(GraceError::MissingNumber(shown(s)));
    }
    if unit.is_empty() {
        return Err(GraceError::MissingUnit(shown(s)));
    }
    let Some(per_unit) = unit_seconds(unit) else {
        return Err(GraceError::UnknownUnit {
            input: shown(s),
            unit: shown(unit),
        });
    };
    let count = digits.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    });
    let Some(count) = count else {
        return Err(GraceError::Overflow(shown(s)));
    };
    if count == 0 {
        return Err(GraceError::Zero);
    }
    let Some(secs) = count.checked_mul(per_unit) else {
        return Err(GraceError::Overflow(shown(s)));
    };
    match u32::try_from(secs) {
        Ok(secs) if secs <= MAX_GRACE_SECS => Ok(secs),
        _ => Err(GraceError::TooLong { input: shown(s) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse_grace("45s"), Ok(45));
        assert_eq!(parse_grace("30m"), Ok(1_800));
        assert_eq!(parse_grace("1h"), Ok(3_600));
        assert_eq!(parse_grace("7d"), Ok(7 * 86_400));
        assert_eq!(parse_grace(" 2h\n"), Ok(7_200));
        assert_eq!(parse_grace("007d"), Ok(7 * 86_400));
    }

    #[test]
    fn thirty_days_is_the_limit() {
        assert_eq!(parse_grace("30d"), Ok(MAX_GRACE_SECS));
        assert_eq!(parse_grace("720h"), Ok(MAX_GRACE_SECS));
        assert_eq!(parse_grace("2592000s"), Ok(MAX_GRACE_SECS));
        assert!(matches!(
            parse_grace("2592001s"),
            Err(GraceError::TooLong { .. })
        ));
        assert!(matches!(
            parse_grace("31d"),
            Err(GraceError::TooLong { .. })
        ));
        // Large enough to leave u32 but not u64.
        assert!(matches!(
            parse_grace("100000000000d"),
            Err(GraceError::TooLong { .. })
        ));
    }

    #[test]
    fn refuses_with_a_precise_reason() {
        assert_eq!(parse_grace(""), Err(GraceError::Empty));
        assert_eq!(parse_grace("   "), Err(GraceError::Empty));
        assert_eq!(parse_grace("0s"), Err(GraceError::Zero));
        assert_eq!(parse_grace("000d"), Err(GraceError::Zero));
        assert!(matches!(parse_grace("-1h"), Err(GraceError::Negative(_))));
        assert!(matches!(
            parse_grace("\u{2212}1h"),
            Err(GraceError::Negative(_))
        ));
        assert!(matches!(
            parse_grace("h"),
            Err(GraceError::MissingNumber(_))
        ));
        assert!(matches!(
            parse_grace("+1h"),
            Err(GraceError::MissingNumber(_))
        ));
        assert!(matches!(parse_grace("30"), Err(GraceError::MissingUnit(_))));
        for bad in [
            "2w", "1M", "1y", "1H", "1 h", "1h30m", "1.5h", "1hh", "1h\u{0}",
        ] {
            assert!(
                matches!(parse_grace(bad), Err(GraceError::UnknownUnit { .. })),
                "{bad}: {:?}",
                parse_grace(bad)
            );
        }
        assert!(matches!(
            parse_grace("99999999999999999999d"),
            Err(GraceError::Overflow(_))
        ));
        assert!(matches!(
            parse_grace("18446744073709551615d"),
            Err(GraceError::Overflow(_))
        ));
        // Arabic-Indic and full-width digits.
        assert!(matches!(
            parse_grace("\u{663}d"),
            Err(GraceError::NonAsciiDigit(_))
        ));
        assert!(matches!(
            parse_grace("1\u{ff11}h"),
            Err(GraceError::NonAsciiDigit(_))
        ));
    }

    #[test]
    fn errors_echo_a_bounded_excerpt() {
        let long = format!("1{}", "é".repeat(500));
        let msg = parse_grace(&long).unwrap_err().to_string();
        assert!(msg.chars().count() < 200, "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics_on_any_char(chars in proptest::collection::vec(any::<char>(), 0..24)) {
            let raw: String = chars.into_iter().collect();
            let _ = parse_grace(&raw);
        }

        #[test]
        fn never_panics(raw in "\\PC*") {
            let _ = parse_grace(&raw);
        }

        #[test]
        fn never_panics_on_near_misses(raw in "[-+0-9smhdw\u{663} ]{0,24}") {
            if let Ok(secs) = parse_grace(&raw) {
                prop_assert!((1..=MAX_GRACE_SECS).contains(&secs));
            }
        }

        #[test]
        fn seconds_round_trip(secs in 1u32..=MAX_GRACE_SECS) {
            prop_assert_eq!(parse_grace(&format!("{secs}s")), Ok(secs));
        }

        #[test]
        fn beyond_the_limit_is_too_long(secs in (MAX_GRACE_SECS as u64 + 1)..u64::MAX) {
            let is_too_long = matches!(parse_grace(&format!("{secs}s")), Err(GraceError::TooLong { .. }));
            prop_assert!(is_too_long);
        }
    }
}
