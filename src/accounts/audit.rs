//! The security log of a workspace: who did what to which credential, when, from where.

use crate::db::schema::audit_events;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Queryable, Selectable, Insertable, Serialize, Clone, Debug)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub workspace_id: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub client_address: Option<String>,
    pub created_at: i64,
    /// What else the event needs said, in words (a leak report's URL and source,
    /// the end of a rotation's grace period); `None` for most events.
    pub detail: Option<String>,
}

/// The actor of changes made with the command line.
pub const CLI_ACTOR: &str = "cli";
/// The actor of revocations that a leaked-key report caused.
pub const LEAK_REPORT_ACTOR: &str = "leak-report";

/// A person signed in through the product's identity provider (written in
/// each of their workspaces; the detail names the identity).
pub const SIGNED_IN_WITH_PROVIDER: &str = "member.signed_in_with_provider";
/// A person's identity at the product's identity provider was linked to them.
pub const IDENTITY_LINKED: &str = "member.identity_linked";

/// Who acted (or created something), in words: the person's email, else the
/// actor itself, the command line as `keygate CLI`, an admin token by name.
pub fn actor_label(actor: &str, email: Option<String>) -> String {
    email.unwrap_or_else(|| {
        if actor == CLI_ACTOR {
            "keygate CLI".to_string()
        } else if let Some((_, name)) = admin_token_of(actor) {
            format!("admin token {name}")
        } else {
            actor.to_string()
        }
    })
}

/// The (id, name) of the admin token in an actor id made by
/// [`admin_token_actor`].
pub fn admin_token_of(actor: &str) -> Option<(&str, &str)> {
    actor.strip_prefix(ADMIN_TOKEN_PREFIX)?.split_once(':')
}

/// Who made a change and from where: a person's id (or [`CLI_ACTOR`],
/// [`LEAK_REPORT_ACTOR`]) and the client address of the request, if any.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub id: &'a str,
    pub client_address: Option<&'a str>,
}

/// The actor id of changes made with an admin token: `admin_token:{id}:{name}`,
/// so the log names the token (its name) and events can say which it was.
pub fn admin_token_actor(id: &str, name: &str) -> String {
    format!("{ADMIN_TOKEN_PREFIX}{id}:{name}")
}
pub const ADMIN_TOKEN_PREFIX: &str = "admin_token:";

/// The operator at the command line.
pub const CLI: Actor<'static> = Actor {
    id: CLI_ACTOR,
    client_address: None,
};

/// One row of the log, to write: `actor` did `action` to `subject`.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub workspace_id: &'a str,
    pub actor: Actor<'a>,
    pub action: &'a str,
    pub subject: &'a str,
    /// See [`AuditEvent::detail`].
    pub detail: Option<&'a str>,
}

impl Entry<'_> {
    /// Writes the row, and the outgoing event of its action if it has one
    /// (see [`crate::events`]); call inside the transaction that makes the
    /// change.
    pub fn record(&self, conn: &mut DbConn) -> Result<()> {
        super::outbox::record_for(conn, self)?;
        // Kept prepared: every change writes one.
        let id = db::new_id();
        db::kept::insert(conn, TABLE, &self.row(&id, db::now()))?;
        Ok(())
    }

    /// Whether its action has an outgoing event, which [`Entry::record`]
    /// writes too (and [`Entry::row`] alone does not).
    pub fn has_event(&self) -> bool {
        super::outbox::event_of(self.action).is_some()
    }

    /// Whether [`Entry::record`] would write an outgoing event: its action
    /// has one and an endpoint wants it.
    pub fn writes_event(&self, conn: &mut DbConn) -> Result<bool> {
        match super::outbox::event_of(self.action) {
            Some((event_type, ..)) => crate::events::wanted(conn, event_type),
            None => Ok(false),
        }
    }

    /// Its row in [`TABLE`], with this id and time: for a statement that
    /// writes it together with the change it records, when it has no outgoing
    /// event ([`Entry::has_event`]).
    pub fn row<'a>(&'a self, id: &'a str, now: i64) -> [(&'static str, db::Piece<'a>); 8] {
        use audit_events as a;
        use db::Piece::{Int, OptText, Text};
        use diesel::Column;
        [
            (a::id::NAME, Text(id)),
            (a::workspace_id::NAME, Text(self.workspace_id)),
            (a::actor::NAME, Text(self.actor.id)),
            (a::action::NAME, Text(self.action)),
            (a::subject::NAME, Text(self.subject)),
            (a::client_address::NAME, OptText(self.actor.client_address)),
            (a::created_at::NAME, Int(now)),
            (a::detail::NAME, OptText(self.detail)),
        ]
    }
}

/// The security log's table.
pub const TABLE: &str = "audit_events";

/// Writes a row without a detail (see [`Entry`]).
pub fn record(
    conn: &mut DbConn,
    workspace_id: &str,
    actor: &str,
    action: &str,
    subject: &str,
    client_address: Option<&str>,
) -> Result<()> {
    let actor = Actor {
        id: actor,
        client_address,
    };
    Entry {
        workspace_id,
        actor,
        action,
        subject,
        detail: None,
    }
    .record(conn)
}

/// Whether the log holds `action` done to `subject` (in any workspace).
pub fn on_record(conn: &mut DbConn, subject: &str, action: &str) -> Result<bool> {
    let n: i64 = audit_events::table
        .filter(audit_events::subject.eq(subject))
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Newest first.
pub fn list(conn: &mut DbConn, workspace_id: &str, limit: i64) -> Result<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::workspace_id.eq(workspace_id))
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// The kinds of thing the security log can be filtered by, each a set of
/// action prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Apps,
    Team,
    Mailboxes,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Keys, Kind::Apps, Kind::Team, Kind::Mailboxes];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Keys => "keys",
            Kind::Apps => "apps",
            Kind::Team => "team",
            Kind::Mailboxes => "mailboxes",
        }
    }

    /// The action prefixes of the kind (the part before the dot).
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Kind::Keys => &["api_key"],
            Kind::Apps => &["app", "access_token"],
            Kind::Team => &["member"],
            Kind::Mailboxes => &["mailbox", "mailbox_auth_key", "domain"],
        }
    }

    fn of(action: &str) -> Option<Kind> {
        let prefix = action.split('.').next()?;
        Kind::ALL
            .into_iter()
            .find(|k| k.prefixes().contains(&prefix))
    }
}

/// One event of the log with what people recognise in place of ids.
#[derive(Clone, Debug)]
pub struct NamedEvent {
    pub event: AuditEvent,
    /// The key's or app's name, the person's email, the mailbox's address;
    /// `None` when the subject no longer exists (or is a token id).
    pub subject_name: Option<String>,
    /// The email of the person who acted, or the app's name; `None` for the
    /// CLI, a leak report or an actor that no longer exists.
    pub actor_name: Option<String>,
}

/// One page of the log, newest first.
pub struct Page {
    pub events: Vec<NamedEvent>,
    /// Whether older events follow this page.
    pub has_older: bool,
}

/// A page of `per_page` events of a workspace (page 1 the newest), of one kind
/// or all, with subjects and actors named: one query per kind of name, never
/// one per row.
pub fn page(
    conn: &mut DbConn,
    names: &dyn NameSource,
    workspace_id: &str,
    kind: Option<Kind>,
    page: u32,
    per_page: u32,
) -> Result<Page> {
    let mut query = audit_events::table
        .filter(audit_events::workspace_id.eq(workspace_id))
        .into_boxed();
    if let Some(kind) = kind {
        // `_` is a LIKE wildcard: escape it so `mailbox.%` never matches
        // `mailbox_auth_key.…`'s neighbours by accident.
        let mut any: Box<
            dyn BoxableExpression<audit_events::table, _, SqlType = diesel::sql_types::Bool>,
        > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
        for p in kind.prefixes() {
            let pattern = format!("{}.%", p.replace('_', "\\_"));
            any = Box::new(any.or(audit_events::action.like(pattern).escape('\\')));
        }
        query = query.filter(any);
    }
    let offset = i64::from(page.max(1) - 1) * i64::from(per_page);
    let mut events: Vec<AuditEvent> = query
        .order(audit_events::id.desc())
        .offset(offset)
        .limit(i64::from(per_page) + 1)
        .select(AuditEvent::as_select())
        .load(conn)?;
    let has_older = events.len() > per_page as usize;
    events.truncate(per_page as usize);
    let names = Names::load(conn, names, &events)?;
    let events = events
        .into_iter()
        .map(|e| NamedEvent {
            subject_name: names.subject(&e),
            actor_name: names.actor(&e.actor),
            event: e,
        })
        .collect();
    Ok(Page { events, has_older })
}

/// The newest `limit` events done to `subject` in a workspace, named.
pub fn of_subject(
    conn: &mut DbConn,
    names: &dyn NameSource,
    workspace_id: &str,
    subject: &str,
    limit: i64,
) -> Result<Vec<NamedEvent>> {
    let events: Vec<AuditEvent> = audit_events::table
        .filter(audit_events::workspace_id.eq(workspace_id))
        .filter(audit_events::subject.eq(subject))
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?;
    let names = Names::load(conn, names, &events)?;
    Ok(events
        .into_iter()
        .map(|e| NamedEvent {
            subject_name: names.subject(&e),
            actor_name: names.actor(&e.actor),
            event: e,
        })
        .collect())
}

/// What the log names but does not own. Each is named by the area that
/// owns its table, through [`NameSource`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Named {
    /// An API key, by its name.
    ApiKey,
    /// An authorized app, by its client's name.
    Authorization,
    /// A mailbox, by its address.
    Mailbox,
    /// A mailbox auth key, as `name (address)`.
    MailboxAuthKey,
    /// A sending domain, by its name.
    Domain,
    /// An OAuth client acting, by its name.
    Client,
}

/// The areas that own the log's subjects, asked for display names by id:
/// one query per kind for a whole page. Implemented above the areas
/// (`node::names`), so that the log imports none of them.
pub trait NameSource {
    fn names(
        &self,
        conn: &mut DbConn,
        what: Named,
        ids: &[String],
    ) -> Result<HashMap<String, String>>;
}

/// The names of a page's subjects and actors.
struct Names {
    keys: HashMap<String, String>,
    apps: HashMap<String, String>,
    people: HashMap<String, String>,
    mailboxes: HashMap<String, String>,
    auth_keys: HashMap<String, String>,
    domains: HashMap<String, String>,
    clients: HashMap<String, String>,
}

impl Names {
    fn load(conn: &mut DbConn, source: &dyn NameSource, events: &[AuditEvent]) -> Result<Names> {
        let subjects = |k: Kind| -> Vec<String> {
            events
                .iter()
                .filter(|e| Kind::of(&e.action) == Some(k))
                .map(|e| e.subject.clone())
                .collect()
        };
        let actors: Vec<String> = events.iter().map(|e| e.actor.clone()).collect();
        let mut people_ids = subjects(Kind::Team);
        people_ids.extend(actors.iter().cloned());
        let mailbox_ids = subjects(Kind::Mailboxes);
        Ok(Names {
            keys: source.names(conn, Named::ApiKey, &subjects(Kind::Keys))?,
            apps: source.names(conn, Named::Authorization, &subjects(Kind::Apps))?,
            people: super::emails_of(conn, &people_ids)?,
            mailboxes: source.names(conn, Named::Mailbox, &mailbox_ids)?,
            auth_keys: source.names(conn, Named::MailboxAuthKey, &mailbox_ids)?,
            domains: source.names(conn, Named::Domain, &mailbox_ids)?,
            clients: source.names(conn, Named::Client, &actors)?,
        })
    }

    fn subject(&self, e: &AuditEvent) -> Option<String> {
        let found = match Kind::of(&e.action)? {
            Kind::Keys => self.keys.get(&e.subject),
            Kind::Apps => self.apps.get(&e.subject),
            Kind::Team => self.people.get(&e.subject),
            Kind::Mailboxes if e.action.starts_with("mailbox_auth_key.") => {
                self.auth_keys.get(&e.subject)
            }
            Kind::Mailboxes if e.action.starts_with("domain.") => self.domains.get(&e.subject),
            Kind::Mailboxes => self.mailboxes.get(&e.subject),
        };
        found.cloned()
    }

    fn actor(&self, actor: &str) -> Option<String> {
        self.people
            .get(actor)
            .or_else(|| self.clients.get(actor))
            .cloned()
    }
}

/// The detail of the `action` events of `subjects` in a workspace's log
/// (subject → detail), for those that have one: one query for a page.
pub fn details_of(
    conn: &mut DbConn,
    workspace_id: &str,
    action: &str,
    subjects: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, Option<String>)> = audit_events::table
        .filter(audit_events::workspace_id.eq(workspace_id))
        .filter(audit_events::action.eq(action))
        .filter(audit_events::subject.eq_any(subjects))
        .select((audit_events::subject, audit_events::detail))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, d)| Some((s, d?)))
        .collect())
}
