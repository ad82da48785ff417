//! `keygate admin-token` and `keygate webhook`.

use super::output::Out;
use crate::admin::tokens;
use crate::config::Config;
use crate::db::paging::Paging;
use crate::db::DbConn;
use crate::error::Error;
use crate::webhooks;
use clap::Subcommand;
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub(super) enum AdminTokenCmd {
    /// Create an admin token for /admin/v1; the token is shown once.
    #[command(after_help = "Example:\n  keygate --json admin-token create --name product-backend")]
    Create {
        #[arg(long)]
        name: String,
    },
    /// List the admin tokens (never the tokens themselves).
    #[command(after_help = "Example:\n  keygate --json admin-token list")]
    List,
    /// Revoke an admin token: refused from its next request on, on every node.
    #[command(after_help = "Example:\n  keygate admin-token revoke TOKEN_ID")]
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub(super) enum WebhookCmd {
    /// Add a webhook endpoint; its signing secret is shown once.
    #[command(
        after_help = "Example:\n  keygate --json webhook create --url https://hooks.example.com/keygate --event api_key.leaked"
    )]
    Create {
        #[arg(long)]
        url: String,
        /// An event type to send (repeatable); none: every type.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
    },
    /// List the webhook endpoints.
    #[command(after_help = "Example:\n  keygate --json webhook list")]
    List,
    /// Delete a webhook endpoint (its pending deliveries are dropped).
    #[command(after_help = "Example:\n  keygate webhook delete ENDPOINT_ID")]
    Delete { id: String },
    /// An endpoint's deliveries, newest first.
    #[command(after_help = "Example:\n  keygate --json webhook deliveries ENDPOINT_ID")]
    Deliveries { id: String },
}

#[derive(Serialize)]
struct TokenOut {
    id: String,
    name: String,
    token: String,
}

#[derive(Serialize)]
struct RevokedOut {
    id: String,
    revoked: bool,
}

#[derive(Serialize)]
struct DeletedOut {
    deleted: bool,
    id: String,
}

#[derive(Serialize)]
struct DeliveryOut {
    attempts: i32,
    event_type: String,
    id: String,
    last_status_code: Option<i32>,
    next_attempt_at: Option<String>,
    status: String,
}

pub(super) fn admin_token(conn: &mut DbConn, out: &Out, cmd: AdminTokenCmd) -> Result<(), Error> {
    match cmd {
        AdminTokenCmd::Create { name } => {
            let (row, token) = tokens::create(conn, &name)?;
            let human = format!(
                "created admin token {} ({}); it is shown only now:\n{token}",
                row.name, row.id
            );
            let value = TokenOut {
                id: row.id,
                name: row.name,
                token,
            };
            out.emit(&value, human);
        }
        AdminTokenCmd::List => {
            for t in tokens::list(conn)? {
                let human = format!(
                    "{}  {}  created {}  last used {}",
                    t.id,
                    t.name,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never")
                );
                out.emit(&t, human);
            }
        }
        AdminTokenCmd::Revoke { id } => {
            tokens::revoke(conn, &id)?;
            out.emit(
                &RevokedOut {
                    id: id.clone(),
                    revoked: true,
                },
                format!("revoked admin token {id}"),
            );
        }
    }
    Ok(())
}

pub(super) fn webhook(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: WebhookCmd,
) -> Result<(), Error> {
    match cmd {
        WebhookCmd::Create { url, events } => {
            let e = webhooks::create(
                conn,
                &config.outbound_allowed_hosts,
                config.master_key.as_ref(),
                &url,
                &events,
            )?;
            let human = format!(
                "created webhook endpoint {} for {}; its secret is shown only now:\n{}",
                e.id,
                e.url,
                e.secret.as_deref().unwrap_or_default()
            );
            out.emit(&e, human);
        }
        WebhookCmd::List => each_page(
            |p| webhooks::list(conn, p),
            |e| {
                let human = format!("{}  {}  {}", e.id, e.url, e.events.join(","));
                out.emit(&e, human)
            },
        )?,
        WebhookCmd::Delete { id } => {
            webhooks::delete(conn, &id)?;
            out.emit(
                &DeletedOut {
                    deleted: true,
                    id: id.clone(),
                },
                format!("deleted webhook endpoint {id}"),
            );
        }
        WebhookCmd::Deliveries { id } => each_page(
            |p| webhooks::deliveries(conn, &id, p),
            |d| {
                let human = format!(
                    "{}  {}  {}  attempts {}  last status {}",
                    d.id,
                    d.event_type,
                    d.status,
                    d.attempts,
                    d.last_status_code.map_or("-".into(), |c| c.to_string())
                );
                let value = DeliveryOut {
                    attempts: d.attempts,
                    event_type: d.event_type,
                    id: d.id,
                    last_status_code: d.last_status_code,
                    next_attempt_at: d.next_attempt_at,
                    status: d.status,
                };
                out.emit(&value, human)
            },
        )?,
    }
    Ok(())
}

/// Every row of a paged list, page by page.
fn each_page<T>(
    mut load: impl FnMut(&Paging) -> Result<crate::db::paging::Listed<T>, Error>,
    mut each: impl FnMut(T),
) -> Result<(), Error> {
    let mut paging = Paging {
        limit: crate::db::paging::MAX_LIMIT,
        cursor: None,
    };
    loop {
        let page = load(&paging)?;
        let next = page.next_cursor.clone();
        page.data.into_iter().for_each(&mut each);
        match next {
            Some(c) => paging.cursor = Some(c),
            None => return Ok(()),
        }
    }
}
