//! Sending domains: a workspace sends only from domains it has shown it
//! controls, with a TXT record `_keygate-challenge.DOMAIN` holding
//! `keygate-verification=TOKEN` (one token per workspace and domain).
//!
//! - A domain is `pending` until a lookup finds its record (or the operator
//!   adds it `--verified`, which is never looked up again), then `verified`.
//!   At most one workspace holds a domain verified (a partial unique index);
//!   another may add it, pending, which changes nothing for the first.
//! - A verified domain is looked up again every 24 h (`recheck`, from the
//!   node's background task); once its record has been missing for 72 h
//!   it is `failed`, and its mailboxes' keys are refused at SMTP until it
//!   verifies again ([`sending_allowed`]).
//! - Every change of status goes through [`status_changed`], the one place
//!   that writes it to the security log (and evicts what the caches hold).
//! - Removing a domain deletes its mailboxes as `mailbox delete` does.
//!
//! Bounds: at most [`MAX_PER_WORKSPACE`] domains per workspace; rows live as
//! long as the workspace keeps them (removal is the pruning rule).

pub mod dns;
pub mod name;
pub mod recheck;
pub mod upgrade;

pub use recheck::{recheck_due, Schedule, DNS_CHECK};

use super::lifecycle::{self, Dependents};
use crate::accounts::audit::Actor;
use crate::credentials::cache::CredentialCache;
use crate::credentials::change::Change;
use crate::credentials::revocation::Event;
use crate::db::schema::sending_domains;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use dns::{Dns, TxtAnswer};
use std::collections::HashMap;

/// The label under the domain that holds the record.
pub const TXT_LABEL: &str = "_keygate-challenge";
/// What the record's value starts with; the token follows.
pub const TXT_VALUE_PREFIX: &str = "keygate-verification=";
/// Domains one workspace may hold (pending, verified or failed).
pub const MAX_PER_WORKSPACE: i64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainStatus {
    Pending,
    Verified,
    Failed,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Pending => "pending",
            DomainStatus::Verified => "verified",
            DomainStatus::Failed => "failed",
        }
    }
    fn parse(s: &str) -> DomainStatus {
        match s {
            "verified" => DomainStatus::Verified,
            "failed" => DomainStatus::Failed,
            _ => DomainStatus::Pending,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = sending_domains)]
pub struct SendingDomain {
    pub id: String,
    pub workspace_id: String,
    /// The lower-case A-label, no trailing dot.
    pub domain: String,
    pub status: String,
    pub token: String,
    /// Added `--verified` by the operator (or by the upgrade): never looked up.
    pub by_operator: bool,
    pub created_by: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    /// When DNS was last asked about it (by a verification that found the
    /// record, or by the background check).
    pub checked_at: Option<i64>,
    /// Since when the background check has not found the record.
    pub missing_since: Option<i64>,
}

impl SendingDomain {
    pub fn status(&self) -> DomainStatus {
        DomainStatus::parse(&self.status)
    }
    /// The name the TXT record is published at.
    pub fn txt_name(&self) -> String {
        format!("{TXT_LABEL}.{}", self.domain)
    }
    /// The record's value.
    pub fn txt_value(&self) -> String {
        format!("{TXT_VALUE_PREFIX}{}", self.token)
    }
}

/// Adds `raw` (normalised, see [`name::normalise`]) to a workspace: pending,
/// or verified on the operator's word (`--verified`, the CLI only), which a
/// domain another workspace holds verified cannot be.
pub fn add(
    conn: &mut DbConn,
    workspace_id: &str,
    raw: &str,
    operator_verified: bool,
    by: Actor,
) -> Result<SendingDomain> {
    let domain = name::normalise(raw)?;
    // The events of an operator's verification reach every node through the
    // feed (the CLI has no cache of its own to correct).
    let (row, _events) = db::write_tx(conn, |conn| {
        super::require_api_access(conn, workspace_id)?;
        let held: i64 = sending_domains::table
            .filter(sending_domains::workspace_id.eq(workspace_id))
            .count()
            .get_result(conn)?;
        if held >= MAX_PER_WORKSPACE {
            return Err(Error::conflict(format!(
                "a workspace holds at most {MAX_PER_WORKSPACE} domains; remove one first"
            )));
        }
        if operator_verified && held_elsewhere(conn, workspace_id, &domain)? {
            return Err(cannot_verify(&domain));
        }
        let now = db::now();
        let row = SendingDomain {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            domain: domain.clone(),
            status: DomainStatus::Pending.as_str().to_string(),
            token: crate::crypto::random_alphanumeric(32).to_lowercase(),
            by_operator: operator_verified,
            created_by: by.id.to_string(),
            created_at: now,
            verified_at: None,
            checked_at: None,
            missing_since: None,
        };
        db::insert_new(conn, sending_domains::table, &row, |_| {
            Error::conflict(format!(
                "the domain {domain} is already added to this workspace"
            ))
        })?;
        Change::new(&row.id, "domain.added", by).record(conn, workspace_id, None)?;
        if !operator_verified {
            return Ok((row, Vec::new()));
        }
        let detail = "verified by the operator, without a DNS lookup";
        set_verified(conn, row, by, Some(detail))
    })?;
    Ok(row)
}

/// Whether another workspace holds `domain` verified.
fn held_elsewhere(conn: &mut DbConn, workspace_id: &str, domain: &str) -> Result<bool> {
    let n: i64 = sending_domains::table
        .filter(sending_domains::domain.eq(domain))
        .filter(sending_domains::status.eq(DomainStatus::Verified.as_str()))
        .filter(sending_domains::workspace_id.ne(workspace_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// What a workspace is told when another holds the domain: only that.
fn cannot_verify(domain: &str) -> Error {
    Error::not_verified(format!(
        "the domain {domain} cannot be verified for this workspace"
    ))
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<SendingDomain> {
    sending_domains::table
        .find(id)
        .select(SendingDomain::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no domain with id {id:?}")))
}

/// A domain of this workspace; another workspace's is as unknown as a made-up id.
pub fn find_in(conn: &mut DbConn, workspace_id: &str, id: &str) -> Result<SendingDomain> {
    match find(conn, id) {
        Ok(d) if d.workspace_id == workspace_id => Ok(d),
        Ok(_) => Err(Error::not_found(format!("no domain with id {id:?}"))),
        Err(e) => Err(e),
    }
}

/// A workspace's domains, newest first.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<SendingDomain>> {
    Ok(sending_domains::table
        .filter(sending_domains::workspace_id.eq(workspace_id))
        .order(sending_domains::id.desc())
        .select(SendingDomain::as_select())
        .load(conn)?)
}

/// One page of a workspace's domains, newest first, after `starting_after`
/// (an id of the previous page), and whether more follow.
pub fn page(
    conn: &mut DbConn,
    workspace_id: &str,
    limit: i64,
    starting_after: Option<&str>,
) -> Result<(Vec<SendingDomain>, bool)> {
    let limit = limit.max(1);
    let mut q = sending_domains::table
        .filter(sending_domains::workspace_id.eq(workspace_id))
        .select(SendingDomain::as_select())
        .order(sending_domains::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(after) = starting_after {
        q = q.filter(sending_domains::id.lt(after.to_string()));
    }
    let mut rows: Vec<SendingDomain> = q.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// The one place a domain's change of status is recorded: its security-log
/// row, and the revocation events that make every node look at the keys
/// it decides again (the workspace's own when it leaves `verified`; the other
/// workspaces' that hold the same domain when it becomes `verified` here).
/// Its log row also writes the outgoing events `domain.verified` and
/// `domain.failed` (`accounts::outbox`).
fn status_changed(
    conn: &mut DbConn,
    d: &SendingDomain,
    to: DomainStatus,
    by: Actor,
    detail: Option<&str>,
) -> Result<Vec<Event>> {
    let action = match to {
        DomainStatus::Verified => "domain.verified",
        DomainStatus::Failed => "domain.failed",
        DomainStatus::Pending => "domain.pending",
    };
    let events: Vec<Event> = if to == DomainStatus::Verified {
        sending_domains::table
            .filter(sending_domains::domain.eq(&d.domain))
            .filter(sending_domains::workspace_id.ne(&d.workspace_id))
            .select(sending_domains::workspace_id)
            .load::<String>(conn)?
            .iter()
            .map(|ws| Event::workspace(ws))
            .collect()
    } else {
        vec![Event::workspace(&d.workspace_id)]
    };
    Change::new(&d.id, action, by)
        .with_events(&events)
        .record(conn, &d.workspace_id, detail)
}

/// Inside a transaction: `d` becomes verified (the caller checked the
/// record, or the operator's word), unless another workspace holds it.
fn set_verified(
    conn: &mut DbConn,
    d: SendingDomain,
    by: Actor,
    detail: Option<&str>,
) -> Result<(SendingDomain, Vec<Event>)> {
    if held_elsewhere(conn, &d.workspace_id, &d.domain)? {
        return Err(cannot_verify(&d.domain));
    }
    let now = db::now();
    let was = d.status();
    let update = diesel::update(sending_domains::table.find(&d.id)).set((
        sending_domains::status.eq(DomainStatus::Verified.as_str()),
        sending_domains::verified_at.eq(now),
        sending_domains::checked_at.eq(now),
        sending_domains::missing_since.eq(None::<i64>),
    ));
    match update.execute(conn) {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => return Err(cannot_verify(&d.domain)),
        Err(e) => return Err(e.into()),
    }
    let row = find(conn, &d.id)?;
    let events = if was == DomainStatus::Verified {
        Vec::new()
    } else {
        status_changed(conn, &row, DomainStatus::Verified, by, detail)?
    };
    Ok((row, events))
}

/// Whether `answer` holds the record `d` asks for.
fn holds_record(d: &SendingDomain, answer: &TxtAnswer) -> bool {
    let wanted = d.txt_value();
    matches!(answer, TxtAnswer::Records(values) if values.iter().any(|v| v.trim() == wanted))
}

/// Why a verification failed, in one line: the record expected and what
/// DNS answered.
fn not_found_words(d: &SendingDomain, answer: &TxtAnswer) -> String {
    let said = match answer {
        TxtAnswer::Records(values) => {
            let shown: Vec<String> = values
                .iter()
                .take(5)
                .map(|v| format!("{:?}", v.chars().take(100).collect::<String>()))
                .collect();
            let more = values.len().saturating_sub(5);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "DNS answered with other TXT records: {}{tail}",
                shown.join(", ")
            )
        }
        TxtAnswer::NoRecords => "DNS answered that there is no TXT record there".to_string(),
        TxtAnswer::Failed(why) => format!("DNS gave no answer: {why}"),
    };
    format!(
        "the domain {} could not be verified: expected a TXT record at {} with the value {}; {said}",
        d.domain,
        d.txt_name(),
        d.txt_value()
    )
}

/// What a verification must look up, or why it need not (or cannot).
pub enum Verification {
    /// The domain needs no lookup: verified on the operator's word.
    Done(SendingDomain),
    /// Ask DNS for this domain's record, then [`conclude`].
    Lookup(SendingDomain),
}

/// The first step of `domain verify`: the domain, and whether it needs a
/// lookup. A domain another workspace holds is refused without one.
pub fn begin(conn: &mut DbConn, d: SendingDomain) -> Result<Verification> {
    if d.by_operator && d.status() == DomainStatus::Verified {
        return Ok(Verification::Done(d));
    }
    if held_elsewhere(conn, &d.workspace_id, &d.domain)? {
        return Err(cannot_verify(&d.domain));
    }
    Ok(Verification::Lookup(d))
}

/// The last step: verified when `answer` holds the record; otherwise
/// `domain_not_verified` with what DNS said, and nothing changes.
pub fn conclude(
    conn: &mut DbConn,
    cache: &CredentialCache,
    d: &SendingDomain,
    answer: &TxtAnswer,
    by: Actor,
) -> Result<SendingDomain> {
    if !holds_record(d, answer) {
        return Err(Error::not_verified(not_found_words(d, answer)));
    }
    let (row, events) = db::write_tx(conn, |conn| {
        let current = find(conn, &d.id)?;
        set_verified(conn, current, by, Some("its TXT record was found"))
    })?;
    cache.apply(&events);
    Ok(row)
}

/// `domain verify` from synchronous code (the CLI): the lookup on a runtime
/// of its own.
pub fn verify_blocking(
    conn: &mut DbConn,
    cache: &CredentialCache,
    dns: &Dns,
    id: &str,
    by: Actor,
) -> Result<SendingDomain> {
    let d = find(conn, id)?;
    match begin(conn, d)? {
        Verification::Done(d) => Ok(d),
        Verification::Lookup(d) => {
            let answer = dns.txt_blocking(&d.txt_name());
            conclude(conn, cache, &d, &answer, by)
        }
    }
}

/// Removes a domain from its workspace; every mailbox in it is deleted as
/// `mailbox delete` does (its keys, and the API keys restricted to it).
pub fn remove(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
    dependents: &dyn Dependents,
) -> Result<SendingDomain> {
    let (d, events) = db::write_tx(conn, |conn| {
        let d = find(conn, id)?;
        let mut events = Vec::new();
        for mailbox in lifecycle::ids_in_domain(conn, &d.workspace_id, &d.domain)? {
            events.extend(lifecycle::delete_in_tx(conn, &mailbox, by, dependents)?.1);
        }
        let n = diesel::delete(sending_domains::table.find(id)).execute(conn)?;
        if n == 0 {
            return Err(Error::not_found(format!("no domain with id {id:?}")));
        }
        let gone = [Event::workspace(&d.workspace_id)];
        let removal = Change::new(id, "domain.removed", by).with_events(&gone);
        events.extend(removal.record(conn, &d.workspace_id, Some(&d.domain))?);
        Ok::<_, Error>((d, events))
    })?;
    lifecycle::committed(cache, &events);
    Ok(d)
}

/// A mailbox may be created at `address_lower` in `workspace_id` only when
/// its domain is verified there. Refused with `domain_not_verified`, in the
/// same words as an address taken in another workspace.
pub fn require_verified(
    conn: &mut DbConn,
    workspace_id: &str,
    address: &str,
    address_lower: &str,
) -> Result<()> {
    let domain = name::of_address(address_lower);
    let status: Option<String> = sending_domains::table
        .filter(sending_domains::workspace_id.eq(workspace_id))
        .filter(sending_domains::domain.eq(domain))
        .select(sending_domains::status)
        .first(conn)
        .optional()?;
    if status.as_deref() == Some(DomainStatus::Verified.as_str()) {
        Ok(())
    } else {
        Err(not_in_verified_domain(address))
    }
}

/// The one refusal of an address outside the workspace's verified domains,
/// or taken in another workspace: the same words for both.
pub fn not_in_verified_domain(address: &str) -> Error {
    Error::not_verified(format!(
        "the address {address} is not in a domain this workspace has verified; \
         add its domain and publish the TXT record first"
    ))
}

/// Whether a mailbox of `workspace_id` at `address_lower` may log in to
/// SMTP: its domain is verified in its workspace, or (a mailbox that existed
/// before sending domains did) pending there while no workspace holds it.
pub fn sending_allowed(conn: &mut DbConn, workspace_id: &str, address_lower: &str) -> Result<bool> {
    let domain = name::of_address(address_lower);
    let rows: Vec<(String, String)> = sending_domains::table
        .filter(sending_domains::domain.eq(domain))
        .select((sending_domains::workspace_id, sending_domains::status))
        .load(conn)?;
    let held = |s: &str| s == DomainStatus::Verified.as_str();
    let mine = rows.iter().find(|(ws, _)| ws == workspace_id);
    Ok(match mine.map(|(_, s)| DomainStatus::parse(s)) {
        Some(DomainStatus::Verified) => true,
        Some(DomainStatus::Pending) => !rows.iter().any(|(_, s)| held(s)),
        Some(DomainStatus::Failed) | None => false,
    })
}

/// The domains among `ids`, for the security log.
pub fn names_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    let named = sending_domains::table.filter(sending_domains::id.eq_any(ids));
    Ok(db::id_map(
        conn,
        named.select((sending_domains::id, sending_domains::domain)),
    )?)
}
