//! What a sending domain's name is: a host name of at least two labels,
//! stored as its lower-case A-label form (RFC 5890; an internationalized
//! name as `xn--…`), without a trailing dot.
//!
//! Refused, each with its reason: an empty name, an address (`a@b`), an IP
//! literal, a single label, empty labels (`a..b`), a label over 63 or a name
//! over 253 characters (RFC 1035 §2.3.4), what UTS 46 refuses, and Unicode a
//! reader could take for another name (UTS 39): a label mixing scripts
//! (Latin with Cyrillic, …), or one whose confusable skeleton is plain
//! ASCII (`аррӏе`, all Cyrillic, reads as `apple`).

use crate::error::{Error, Result};
use unicode_security::MixedScript;

/// RFC 1035 §2.3.4: 255 octets on the wire, so 253 characters written.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;
/// Longest excerpt of bad input echoed back in an error (in characters).
const SHOWN: usize = 80;

fn shown(raw: &str) -> String {
    let cut: String = raw.chars().take(SHOWN).collect();
    if cut.len() < raw.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// The stored form of `raw`, or why it is no sending domain.
pub fn normalise(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let bad = |why: &str| Error::invalid(format!("invalid domain {:?}: {why}", shown(trimmed)));
    if name.is_empty() {
        return Err(Error::invalid("the domain must not be empty"));
    }
    if name.contains('@') {
        return Err(bad("give the domain alone (example.com), not an address"));
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Err(bad("an IP address is not a domain"));
    }
    if name.split('.').any(str::is_empty) {
        return Err(bad("empty label (two dots in a row, or a leading dot)"));
    }
    if name.is_ascii() {
        check_ascii(&name.to_ascii_lowercase()).map_err(|why| bad(&why))?;
    } else if name.chars().count() > MAX_NAME {
        return Err(bad("at most 253 characters"));
    }
    for label in name.split('.').filter(|l| !l.is_ascii()) {
        check_unicode_label(label).map_err(|why| bad(&why))?;
    }
    let ascii = idna::domain_to_ascii_strict(name)
        .map_err(|_| bad("not a valid host name (letters, digits and hyphens per label)"))?;
    check_ascii(&ascii).map_err(|why| bad(&why))?;
    Ok(ascii)
}

/// A Unicode label as UTS 39 wants it: one script, and not a look-alike of
/// an ASCII label.
fn check_unicode_label(label: &str) -> std::result::Result<(), String> {
    let lower = label.to_lowercase();
    if !lower.is_single_script() {
        return Err(format!(
            "the label {lower:?} mixes scripts, so it can pass for another name"
        ));
    }
    let skeleton: String = unicode_security::skeleton(&lower).collect();
    if skeleton.is_ascii() && skeleton != lower {
        return Err(format!(
            "the label {lower:?} looks like the ASCII name {skeleton:?} (confusable characters)"
        ));
    }
    Ok(())
}

/// The A-label form's own rules: lengths, at least two labels, letters,
/// digits and hyphens, a top-level label that is not all digits.
fn check_ascii(name: &str) -> std::result::Result<(), String> {
    if name.len() > MAX_NAME {
        return Err("at most 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("a domain has at least two labels, such as example.com".into());
    }
    for l in &labels {
        if l.is_empty() || l.len() > MAX_LABEL {
            return Err("each label is 1 to 63 characters".into());
        }
        let ok = l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok || l.starts_with('-') || l.ends_with('-') {
            return Err("labels hold letters, digits and inner hyphens only".into());
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the last label must not be all digits".into());
    }
    Ok(())
}

/// The domain part of a mailbox address (lower case), as a domain is stored.
pub fn of_address(address_lower: &str) -> &str {
    address_lower.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_a_labels_without_a_trailing_dot() {
        assert_eq!(normalise(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalise("mail.example.co.uk").unwrap(),
            "mail.example.co.uk"
        );
        assert_eq!(
            normalise("Bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            normalise("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(normalise("münchen.de").unwrap(), "xn--mnchen-3ya.de");
        assert_eq!(normalise("例え.jp").unwrap(), "xn--r8jz45g.jp");
    }

    #[test]
    fn bad_names_say_why() {
        let long = format!("{}.com", "a".repeat(300));
        let long_name = format!("{}.com", ["abcdefghij"; 30].join("."));
        for (bad, why) in [
            ("", "empty"),
            ("a..b.com", "empty label"),
            (".example.com", "empty label"),
            ("a@b", "address"),
            ("ceo@example.com", "address"),
            ("example", "two labels"),
            ("192.0.2.1", "IP address"),
            ("[2001:db8::1]", "IP address"),
            ("2001:db8::1", "IP address"),
            (long.as_str(), "characters"),
            (long_name.as_str(), "253"),
            ("exa_mple.com", "letters"),
            ("-example.com", "hyphens"),
            ("example.123", "digits"),
            ("ex ample.com", "letters, digits"),
            ("аpple.com", "mixes scripts"),
            ("аррӏе.com", "looks like"),
            ("pаypal.com", "mixes scripts"),
        ] {
            let e = normalise(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_domain_of_an_address() {
        assert_eq!(of_address("a@example.com"), "example.com");
        assert_eq!(of_address("nope"), "");
    }
}
