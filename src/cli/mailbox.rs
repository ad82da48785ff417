//! `keygate mailbox` and `keygate authkey`: mailboxes and their SMTP auth keys.

use super::*;
use crate::mailboxes::{auth_keys, lifecycle};

#[derive(Subcommand, Debug)]
pub(super) enum MailboxCmd {
    /// Create a mailbox (an address unique across the server, compared without case).
    #[command(
        after_help = "Example:\n  keygate mailbox create --workspace WS_ID --address sales@example.com"
    )]
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        address: String,
    },
    /// List a workspace's mailboxes, newest first.
    #[command(after_help = "Example:\n  keygate --json mailbox list --workspace WS_ID")]
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Delete a mailbox and its auth keys; API keys restricted to it are revoked.
    #[command(after_help = "Example:\n  keygate mailbox delete MAILBOX_ID")]
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub(super) enum AuthkeyCmd {
    /// Create an auth key for a mailbox; the full key is printed once.
    #[command(
        after_help = "Example:\n  keygate authkey create --mailbox MAILBOX_ID --name 'Outreach Primary'"
    )]
    Create {
        #[arg(long)]
        mailbox: String,
        #[arg(long)]
        name: String,
    },
    /// List a mailbox's auth keys, newest first.
    #[command(after_help = "Example:\n  keygate --json authkey list --mailbox MAILBOX_ID")]
    List {
        #[arg(long)]
        mailbox: String,
    },
    /// Stop a key at once; it can be enabled again.
    #[command(after_help = "Example:\n  keygate authkey disable KEY_ID")]
    Disable { id: String },
    /// Let a disabled key work again.
    #[command(after_help = "Example:\n  keygate authkey enable KEY_ID")]
    Enable { id: String },
    /// Give a key a new secret (printed once); the old one stops at once.
    #[command(after_help = "Example:\n  keygate authkey rotate KEY_ID")]
    Rotate { id: String },
    /// Delete a key for good.
    #[command(after_help = "Example:\n  keygate authkey delete KEY_ID")]
    Delete { id: String },
}

pub(super) fn mailbox(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: MailboxCmd,
) -> Result<(), Error> {
    match cmd {
        MailboxCmd::Create { workspace, address } => {
            let m = lifecycle::create(conn, &workspace, &address, crate::accounts::audit::CLI)?;
            out.emit(
                json!({"id": m.id, "workspace_id": m.workspace_id, "address": m.address,
                       "created_at": rfc3339(m.created_at)}),
                format!("created mailbox {} ({})", m.address, m.id),
            );
        }
        MailboxCmd::List { workspace } => {
            accounts::find_workspace(conn, &workspace)?;
            for row in lifecycle::list(conn, &workspace)? {
                let m = &row.mailbox;
                out.emit(
                    json!({"id": m.id, "workspace_id": m.workspace_id, "address": m.address,
                           "created_at": rfc3339(m.created_at), "active_keys": row.active_keys}),
                    format!(
                        "{}  {:<40} {} active keys",
                        m.id, m.address, row.active_keys
                    ),
                );
            }
        }
        MailboxCmd::Delete { id } => {
            let cache = CredentialCache::detached();
            let keys = &crate::apikeys::RESTRICTED_KEYS;
            let m = lifecycle::delete(conn, &cache, &id, crate::accounts::audit::CLI, keys)?;
            await_propagation(config);
            out.emit(
                json!({"id": m.id, "deleted": true}),
                format!("deleted mailbox {} ({}) and its auth keys", m.address, m.id),
            );
        }
    }
    Ok(())
}

pub(super) fn authkey(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: AuthkeyCmd,
) -> Result<(), Error> {
    let cache = CredentialCache::detached();
    match cmd {
        AuthkeyCmd::Create { mailbox, name } => {
            let issued = auth_keys::create(conn, &mailbox, &name, crate::accounts::audit::CLI)?;
            let k = &issued.key;
            out.emit(
                json!({"id": k.id, "mailbox_id": k.mailbox_id, "address": issued.mailbox.address,
                       "name": k.name, "key": issued.secret, "prefix": k.prefix()}),
                format!(
                    "{}\n(auth key {} \"{}\" for {}; shown only now: store it safely)",
                    issued.secret, k.id, k.name, issued.mailbox.address
                ),
            );
        }
        AuthkeyCmd::List { mailbox } => {
            lifecycle::find(conn, &mailbox)?;
            for row in auth_keys::list(conn, &mailbox)? {
                let k = &row.key;
                out.emit(
                    json!({"id": k.id, "mailbox_id": k.mailbox_id, "name": k.name,
                           "prefix": k.prefix(), "created_at": rfc3339(k.created_at),
                           "last_used_at": time_or_null(k.last_used_at),
                           "usage_count": k.usage_count, "status": k.status().as_str()}),
                    format!(
                        "{}  {:<24} {:<8} used {}",
                        k.prefix(),
                        k.name,
                        k.status().as_str(),
                        k.usage_count
                    ),
                );
            }
        }
        AuthkeyCmd::Disable { id } => {
            let k = auth_keys::disable(conn, &cache, &id, crate::accounts::audit::CLI)?;
            await_propagation(config);
            status_line(out, &k, "disabled");
        }
        AuthkeyCmd::Enable { id } => {
            let k = auth_keys::enable(conn, &cache, &id, crate::accounts::audit::CLI)?;
            status_line(out, &k, "enabled");
        }
        AuthkeyCmd::Rotate { id } => {
            let issued = auth_keys::rotate(conn, &cache, &id, crate::accounts::audit::CLI)?;
            await_propagation(config);
            out.emit(
                json!({"id": issued.key.id, "key": issued.secret, "prefix": issued.key.prefix()}),
                format!(
                    "{}\n(new secret for auth key {}; the old one no longer works)",
                    issued.secret, issued.key.id
                ),
            );
        }
        AuthkeyCmd::Delete { id } => {
            let k = auth_keys::delete(conn, &cache, &id, crate::accounts::audit::CLI)?;
            await_propagation(config);
            out.emit(
                json!({"id": k.id, "deleted": true}),
                format!("deleted auth key {} ({})", k.id, k.name),
            );
        }
    }
    Ok(())
}

fn status_line(out: &Out, k: &crate::mailboxes::MailboxAuthKey, done: &str) {
    out.emit(
        json!({"id": k.id, "status": k.status().as_str()}),
        format!("{done} auth key {} ({})", k.id, k.name),
    );
}
