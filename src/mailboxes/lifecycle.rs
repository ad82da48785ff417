//! Mailboxes: create, find, list, delete.
//!
//! An address is unique across the whole server, compared without case
//! (`address_lower` carries the unique index), and kept as it was given: that
//! spelling is what SMTP AUTH answers as the login name. Deleting a mailbox
//! deletes its auth keys and revokes every API key restricted to it (such a
//! key could only ever read that mailbox, so nothing would be left for it).

use crate::accounts::audit::Actor;
use crate::credentials::cache::CredentialCache;
use crate::credentials::change::Change;
use crate::credentials::revocation::{Event, EventKind};
use crate::db::schema::{mailbox_auth_keys, mailboxes};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::collections::HashMap;

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = mailboxes)]
pub struct Mailbox {
    pub id: String,
    pub workspace_id: String,
    pub address: String,
    pub address_lower: String,
    pub created_at: i64,
    pub created_by: String,
}

/// A mailbox in a list, with its active auth keys counted.
#[derive(Clone, Debug)]
pub struct MailboxRow {
    pub mailbox: Mailbox,
    pub creator: String,
    pub active_keys: i64,
}

/// RFC 5321 §4.5.3.1: a local part of at most 64 octets, a domain of at most
/// 255, and a path of at most 256 including its angle brackets, so 254 for the
/// address itself.
const MAX_LOCAL: usize = 64;
const MAX_ADDRESS: usize = 254;

/// RFC 5322 §3.2.3 `atext`, the characters of a dot-atom besides letters and
/// digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// An address keygate accepts as a mailbox: `local@domain`, ASCII, the local
/// part a dot-atom (RFC 5322 §3.4.1; no quoted strings), the domain a host name
/// of letters, digits and hyphens (RFC 5321 §4.1.2, RFC 1035 §2.3.1) with at
/// least two labels. Returns the address (trimmed) and its lower-case form.
pub fn validate_address(raw: &str) -> Result<(String, String)> {
    let address = raw.trim();
    let bad = |why: &str| Error::invalid(format!("invalid mailbox address {address:?}: {why}"));
    if address.is_empty() {
        return Err(Error::invalid("the mailbox address must not be empty"));
    }
    if !address.is_ascii() {
        return Err(bad("only ASCII addresses are supported"));
    }
    if address.len() > MAX_ADDRESS {
        return Err(bad("at most 254 characters"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(bad("expected local-part@domain"));
    };
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err(bad("the part before @ must be 1 to 64 characters"));
    }
    let atom_ok = |atom: &str| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
    };
    if !local.split('.').all(atom_ok) {
        return Err(bad(
            "the part before @ may hold letters, digits, single dots and !#$%&'*+-/=?^_`{|}~",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.chars().any(|c| c.is_ascii_alphabetic()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(bad("the domain must be a host name such as example.com"));
    }
    Ok((address.to_string(), address.to_ascii_lowercase()))
}

/// A new mailbox: the address must be in a domain the workspace has
/// verified (`domains`); one taken in another workspace is refused in the
/// same words as one outside them, so nothing tells what another has.
pub fn create(conn: &mut DbConn, workspace_id: &str, address: &str, by: Actor) -> Result<Mailbox> {
    let (address, address_lower) = validate_address(address)?;
    db::write_tx(conn, |conn| {
        super::require_api_access(conn, workspace_id)?;
        super::domains::require_verified(conn, workspace_id, &address, &address_lower)?;
        if let Some(holder) = holder_of(conn, &address_lower)? {
            return Err(taken(workspace_id, &holder, &address));
        }
        let mailbox = Mailbox {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            address: address.clone(),
            address_lower: address_lower.clone(),
            created_at: db::now(),
            created_by: by.id.to_string(),
        };
        db::insert_new(conn, mailboxes::table, &mailbox, |_| {
            super::domains::not_in_verified_domain(&address)
        })?;
        Change::new(&mailbox.id, "mailbox.created", by).record(conn, workspace_id, None)?;
        Ok(mailbox)
    })
}

/// The workspace of the mailbox at `address_lower`, if there is one.
fn holder_of(conn: &mut DbConn, address_lower: &str) -> Result<Option<String>> {
    Ok(mailboxes::table
        .filter(mailboxes::address_lower.eq(address_lower))
        .select(mailboxes::workspace_id)
        .first(conn)
        .optional()?)
}

/// An address already taken: said plainly in its own workspace, and as any
/// address outside its verified domains in another.
fn taken(workspace_id: &str, holder: &str, address: &str) -> Error {
    if holder == workspace_id {
        Error::conflict(format!(
            "the address {address} is already taken by a mailbox"
        ))
    } else {
        super::domains::not_in_verified_domain(address)
    }
}

/// The ids of a workspace's mailboxes in `domain` (a stored domain: lower
/// case, letters, digits, dots and hyphens, so no LIKE wildcard).
pub fn ids_in_domain(conn: &mut DbConn, workspace_id: &str, domain: &str) -> Result<Vec<String>> {
    Ok(mailboxes::table
        .filter(mailboxes::workspace_id.eq(workspace_id))
        .filter(mailboxes::address_lower.like(format!("%@{domain}")))
        .select(mailboxes::id)
        .load(conn)?)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Mailbox> {
    mailboxes::table
        .find(id)
        .select(Mailbox::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no mailbox with id {id:?}")))
}

/// A mailbox of this workspace; another workspace's is as unknown as a made-up id.
pub fn find_in(conn: &mut DbConn, workspace_id: &str, id: &str) -> Result<Mailbox> {
    match find(conn, id) {
        Ok(m) if m.workspace_id == workspace_id => Ok(m),
        Ok(_) => Err(Error::not_found(format!("no mailbox with id {id:?}"))),
        Err(e) => Err(e),
    }
}

/// One page of a workspace's mailboxes, newest first, after `starting_after`
/// (an id of the previous page), and whether more follow. `only` narrows it to
/// one mailbox (the one a restricted API key may see).
pub fn page(
    conn: &mut DbConn,
    workspace_id: &str,
    only: Option<&str>,
    limit: i64,
    starting_after: Option<&str>,
) -> Result<(Vec<Mailbox>, bool)> {
    let limit = limit.max(1);
    let mut q = mailboxes::table
        .filter(mailboxes::workspace_id.eq(workspace_id))
        .select(Mailbox::as_select())
        .order(mailboxes::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(id) = only {
        q = q.filter(mailboxes::id.eq(id.to_string()));
    }
    if let Some(after) = starting_after {
        q = q.filter(mailboxes::id.lt(after.to_string()));
    }
    let mut rows: Vec<Mailbox> = q.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// A workspace's mailboxes, newest first, with their active keys counted.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<MailboxRow>> {
    let found: Vec<Mailbox> = mailboxes::table
        .filter(mailboxes::workspace_id.eq(workspace_id))
        .order(mailboxes::id.desc())
        .select(Mailbox::as_select())
        .load(conn)?;
    let rows = crate::accounts::with_creator_emails(conn, found, |m| &m.created_by)?;
    let ids: Vec<&String> = rows.iter().map(|(m, _)| &m.id).collect();
    let counts: Vec<(String, i64)> = if ids.is_empty() {
        Vec::new()
    } else {
        mailbox_auth_keys::table
            .filter(mailbox_auth_keys::mailbox_id.eq_any(ids))
            .filter(mailbox_auth_keys::disabled_at.is_null())
            .group_by(mailbox_auth_keys::mailbox_id)
            .select((mailbox_auth_keys::mailbox_id, diesel::dsl::count_star()))
            .load(conn)?
    };
    Ok(rows
        .into_iter()
        .map(|(mailbox, email)| {
            let active_keys = counts
                .iter()
                .find(|(id, _)| *id == mailbox.id)
                .map_or(0, |c| c.1);
            MailboxRow {
                creator: crate::accounts::audit::actor_label(&mailbox.created_by, email),
                mailbox,
                active_keys,
            }
        })
        .collect())
}

/// What else ends with a mailbox, owned by an area this one cannot name: the
/// API keys restricted to it (`apikeys::RESTRICTED_KEYS`).
pub trait Dependents {
    /// Inside the transaction that deletes the mailbox: ends what depends on
    /// it, with its security-log rows; returns the revocation events written.
    fn end_with(&self, conn: &mut DbConn, mailbox_id: &str, by: Actor) -> Result<Vec<Event>>;
}

/// Deletes a mailbox for good: its auth keys, and what depends on it ends
/// (every API key restricted to it is revoked). On every node, the next SMTP
/// authentication with one of its keys fails.
pub fn delete(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
    dependents: &dyn Dependents,
) -> Result<Mailbox> {
    let (mailbox, events) = db::write_tx(conn, |conn| delete_in_tx(conn, id, by, dependents))?;
    committed(cache, &events);
    Ok(mailbox)
}

/// After the commit of one or more [`delete_in_tx`]: the cache forgets what
/// ended, and the revocations are counted (never for a rolled-back delete).
pub fn committed(cache: &CredentialCache, events: &[Event]) {
    cache.apply(events);
    let m = &crate::metrics::METRICS.revocations;
    for (kind, label) in [
        (EventKind::Mailbox, "mailbox"),
        (EventKind::ApiKey, "api_key"),
    ] {
        let n = events.iter().filter(|e| e.kind == kind).count() as u64;
        m.with_label_values(&[label]).inc_by(n);
    }
}

/// [`delete`] inside the caller's transaction (a domain's removal deletes
/// its mailboxes so); returns the revocation events, for [`committed`] once
/// the transaction is.
pub fn delete_in_tx(
    conn: &mut DbConn,
    id: &str,
    by: Actor,
    dependents: &dyn Dependents,
) -> Result<(Mailbox, Vec<Event>)> {
    let mailbox = find(conn, id)?;
    let keys: Vec<String> = mailbox_auth_keys::table
        .filter(mailbox_auth_keys::mailbox_id.eq(id))
        .select(mailbox_auth_keys::id)
        .load(conn)?;
    diesel::delete(mailbox_auth_keys::table.filter(mailbox_auth_keys::mailbox_id.eq(id)))
        .execute(conn)?;
    for key in &keys {
        Change::new(key, "mailbox_auth_key.deleted", by).record(
            conn,
            &mailbox.workspace_id,
            None,
        )?;
    }
    let mut events = dependents.end_with(conn, id, by)?;
    let n = diesel::delete(mailboxes::table.find(id)).execute(conn)?;
    if n == 0 {
        return Err(Error::not_found(format!("no mailbox with id {id:?}")));
    }
    let deleted = Change::new(id, "mailbox.deleted", by).ending(Event::mailbox);
    events.extend(deleted.record(conn, &mailbox.workspace_id, None)?);
    Ok((mailbox, events))
}

/// The addresses of the mailboxes among `ids`, for the security log.
pub fn addresses_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    let named = mailboxes::table.filter(mailboxes::id.eq_any(ids));
    Ok(db::id_map(
        conn,
        named.select((mailboxes::id, mailboxes::address)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            validate_address("  Sales@Example.COM ").unwrap(),
            ("Sales@Example.COM".into(), "sales@example.com".into())
        );
        assert!(validate_address("o'brien+news@mail.example.org").is_ok());
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a@@example.com",
            "@example.com",
            "a@example.com.",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@-example.com",
            "a@example.123",
            "\"quoted\"@example.com",
            "caf\u{e9}@example.com",
            "a\t@example.com",
            "a@exa_mple.com",
        ] {
            assert!(validate_address(bad).is_err(), "{bad:?} was accepted");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(validate_address(&long_local).is_err());
        let long = format!("a@{}.com", "b".repeat(250));
        assert!(validate_address(&long).is_err());
    }
}
