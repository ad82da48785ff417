//! A credential's last day (`--expires YYYY-MM-DD`), the same rule for API
//! keys and mailbox auth keys.

use crate::error::{Error, Result};

/// `--expires YYYY-MM-DD` is the last day the key works: it ends at 24:00 UTC
/// that day. A day already past is refused.
pub fn parse_expiry(raw: Option<&str>) -> Result<Option<i64>> {
    let Some(raw) = raw
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "never")
    else {
        return Ok(None);
    };
    let well_formed = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| {
            Error::invalid(format!("invalid expiry date {raw:?}: expected YYYY-MM-DD"))
        })?;
    if day.format("%Y").to_string().as_str() > "9998" {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is too far in the future"
        )));
    }
    let today = chrono::Utc::now().date_naive();
    if day < today {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is in the past"
        )));
    }
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| Error::invalid(format!("invalid expiry date {raw:?}")))?;
    Ok(Some(end.and_utc().timestamp()))
}
