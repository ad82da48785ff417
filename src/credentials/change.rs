//! One change to one credential, made the one way: the change, its
//! security-log row and, when it ends a secret, its revocation event in one
//! write transaction; once committed, the event reaches this node's cache
//! (every other node reads it from the feed).

use super::cache::CredentialCache;
use super::revocation::{self, Event};
use crate::accounts::audit::{Actor, Entry};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};

/// A change to make: who makes it, and how the security log names it.
#[derive(Clone, Copy)]
pub struct Change<'a> {
    /// The credential's id: the subject of the log row and of the event.
    pub id: &'a str,
    /// The security log's action (`api_key.revoked`).
    pub action: &'a str,
    pub actor: Actor<'a>,
    /// Makes the revocation event of a change that ends the credential's
    /// secret (`Event::api_key`); `None` for a change that ends none.
    pub ends: Option<fn(&str) -> Event>,
    /// Further revocation events the change writes with its row (an
    /// authorization's live access tokens, a leaked key's stop).
    pub events: &'a [Event],
}

/// What a change did, for its log row.
pub struct Made<T> {
    /// What the caller gets back.
    pub value: T,
    /// The workspace whose security log records the change.
    pub workspace_id: String,
    /// See `AuditEvent::detail`.
    pub detail: Option<String>,
}

impl<T> Made<T> {
    pub fn new(value: T, workspace_id: String) -> Self {
        Made {
            value,
            workspace_id,
            detail: None,
        }
    }
}

impl<'a> Change<'a> {
    /// `by` does `action` to the credential `id`; the change ends no secret
    /// (see [`Change::ending`]).
    pub fn new(id: &'a str, action: &'a str, by: Actor<'a>) -> Self {
        Change {
            id,
            action,
            actor: by,
            ends: None,
            events: &[],
        }
    }

    /// The same change, writing `events` with its row.
    pub fn with_events(self, events: &'a [Event]) -> Self {
        Change { events, ..self }
    }

    /// The same change, ending the credential's secret: `event` makes its
    /// revocation event.
    pub fn ending(self, event: fn(&str) -> Event) -> Self {
        Change {
            ends: Some(event),
            ..self
        }
    }

    /// Inside the transaction that makes the change: writes its revocation
    /// event and its row in `workspace_id`'s security log. Returns the events,
    /// to apply to the cache once committed.
    pub fn record(
        &self,
        conn: &mut DbConn,
        workspace_id: &str,
        detail: Option<&str>,
    ) -> Result<Vec<Event>> {
        let events = self.all_events();
        revocation::record(conn, &events)?;
        self.entry(workspace_id, detail).record(conn)?;
        Ok(events)
    }

    /// Its row in `workspace_id`'s security log.
    pub fn entry<'b>(&'b self, workspace_id: &'b str, detail: Option<&'b str>) -> Entry<'b> {
        Entry {
            workspace_id,
            actor: self.actor,
            action: self.action,
            subject: self.id,
            detail,
        }
    }

    /// Whether it writes no revocation event (only its log row).
    pub fn ends_nothing(&self) -> bool {
        self.ends.is_none() && self.events.is_empty()
    }

    /// The revocation events it writes.
    fn all_events(&self) -> Vec<Event> {
        (self.ends.iter().map(|event| event(self.id)))
            .chain(self.events.iter().cloned())
            .collect()
    }

    /// Makes the change by one conditional UPDATE (`update`) and, only if it
    /// changed a row, [records](Change::record) it: `None` when it changed
    /// none (nothing is recorded). On SQLite, call it inside a write
    /// transaction; on PostgreSQL it needs none: the UPDATE, the events and
    /// the log row are one statement (a data-modifying `WITH` whose inserts
    /// run only if the UPDATE matched), or, when the log row has an outgoing
    /// event to write or the change more than a few events, a transaction of
    /// its own.
    pub fn record_update(
        &self,
        conn: &mut DbConn,
        update: db::kept::Update<'_>,
        workspace_id: &str,
        detail: Option<&str>,
    ) -> Result<Option<Vec<Event>>> {
        /// The names of the event inserts in the statement: as many events at most.
        const EVENTS: [&str; 4] = ["e0", "e1", "e2", "e3"];
        let entry = self.entry(workspace_id, detail);
        let events = self.all_events();
        let apart = |conn: &mut DbConn| {
            if update.run(conn)? == 0 {
                return Ok(None);
            }
            self.record(conn, workspace_id, detail).map(Some)
        };
        match conn {
            DbConn::Postgresql(_) if !entry.has_event() && events.len() <= EVENTS.len() => {
                let now_ms = db::now_ms();
                let rows: Vec<_> = events.iter().map(|e| revocation::row(e, now_ms)).collect();
                let id = db::new_id();
                let logged = entry.row(&id, db::now());
                let mut chain = db::kept::Chain::new();
                chain.update("u", update, None);
                for (name, row) in EVENTS.iter().zip(&rows) {
                    chain.insert(name, revocation::TABLE, row, "u");
                }
                chain.insert("l", crate::accounts::audit::TABLE, &logged, "u");
                let [changed] = chain.counts(["u"], conn)?;
                Ok((changed > 0).then_some(events))
            }
            DbConn::Postgresql(_) => db::write_tx(conn, apart),
            DbConn::Sqlite(_) => apart(conn),
        }
    }

    /// Makes the change with `make` in a write transaction and
    /// [records](Change::record) it there; once committed, applies its event
    /// to this node's cache.
    pub fn commit<T>(
        &self,
        conn: &mut DbConn,
        cache: &CredentialCache,
        make: impl FnOnce(&mut DbConn) -> Result<Made<T>>,
    ) -> Result<T> {
        let (value, events) = db::write_tx(conn, |conn| {
            let made = make(conn)?;
            let events = self.record(conn, &made.workspace_id, made.detail.as_deref())?;
            Ok::<_, Error>((made.value, events))
        })?;
        cache.apply(&events);
        Ok(value)
    }
}
