//! Cursor paging of lists, newest first (the admin API's lists): a page is
//! the rows after the cursor, the key of the last row shown. Keys only grow
//! with time (UUIDv7 ids), so rows inserted meanwhile land before the first
//! page, never between pages: no gap, no duplicate.

use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// The longest cursor accepted (a key is far shorter).
const MAX_CURSOR_LEN: usize = 200;

/// Which page: at most `limit` rows after `cursor` (none: the newest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Paging {
    /// `?limit=` (1 to 100, default 20) and `?cursor=` as given; the error
    /// says what is wrong (a bad request).
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Paging, String> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("limit must be a whole number from 1 to {MAX_LIMIT}"))?,
        };
        let cursor = match cursor {
            None => None,
            Some(c) if !c.is_empty() && c.len() <= MAX_CURSOR_LEN && c.is_ascii() => {
                Some(c.to_string())
            }
            Some(_) => return Err("cursor is not one this API gave".to_string()),
        };
        Ok(Paging { limit, cursor })
    }

    /// How many rows to load: one more than shown, to know whether more follow.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page of `rows` (loaded with [`Paging::fetch`]), `key` naming a
    /// row for the next cursor.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> Listed<T> {
        let has_more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if has_more { rows.last().map(key) } else { None };
        Listed {
            data: rows,
            has_more,
            next_cursor,
        }
    }
}

/// A page: `{"data":[…],"has_more":bool,"next_cursor":…}`.
#[derive(Serialize, Clone, Debug)]
pub struct Listed<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
            next_cursor: self.next_cursor,
        }
    }
    /// A list of zero or one (a lookup by a unique key).
    pub fn one(found: Option<T>) -> Listed<T> {
        Listed {
            data: found.into_iter().collect(),
            has_more: false,
            next_cursor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(Paging::parse(None, None).unwrap().limit, 20);
        assert_eq!(Paging::parse(Some("100"), None).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "x", ""] {
            assert!(Paging::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert!(Paging::parse(None, Some("")).is_err());
        let p = Paging::parse(Some("2"), None).unwrap();
        let page = p.page(vec![3, 2, 1], |n| n.to_string());
        assert_eq!((page.data, page.has_more), (vec![3, 2], true));
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = p.page(vec![1], |n| n.to_string());
        assert!(!last.has_more && last.next_cursor.is_none());
    }
}
