//! `keygate mailbox` and `keygate authkey`: mailboxes and their SMTP auth keys.

use super::await_propagation;
use super::output::{
    AuthKeyCreatedOut, AuthKeyOut, AuthKeyRotatedOut, DeletedOut, MailboxCreatedOut, MailboxOut,
    Out, StatusOut,
};
use crate::accounts::{self, audit::CLI};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::db::DbConn;
use crate::error::Error;
use crate::mailboxes::{auth_keys, lifecycle, MailboxAuthKey};
use clap::Subcommand;

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
        after_help = "Examples:\n  keygate authkey create --mailbox MAILBOX_ID --name 'Outreach Primary'\n  keygate authkey create --mailbox MAILBOX_ID --name crm --allow-ip 203.0.113.0/24 --expires 2027-01-31"
    )]
    Create {
        #[arg(long)]
        mailbox: String,
        #[arg(long)]
        name: String,
        /// Usable only from this client address or CIDR (repeatable; IPv4 or IPv6).
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ip: Vec<String>,
        /// The last day the key works (YYYY-MM-DD, UTC); omit for never.
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires: Option<String>,
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
            create_mailbox(conn, out, &workspace, &address)
        }
        MailboxCmd::List { workspace } => list_mailboxes(conn, out, &workspace),
        MailboxCmd::Delete { id } => delete_mailbox(conn, config, out, &id),
    }
}

fn create_mailbox(
    conn: &mut DbConn,
    out: &Out,
    workspace: &str,
    address: &str,
) -> Result<(), Error> {
    let m = lifecycle::create(conn, workspace, address, CLI)?;
    let human = format!("created mailbox {} ({})", m.address, m.id);
    out.emit(&MailboxCreatedOut::from(m), human);
    Ok(())
}

fn list_mailboxes(conn: &mut DbConn, out: &Out, workspace: &str) -> Result<(), Error> {
    accounts::find_workspace(conn, workspace)?;
    for row in lifecycle::list(conn, workspace)? {
        let m = &row.mailbox;
        let human = format!(
            "{}  {:<40} {} active keys",
            m.id, m.address, row.active_keys
        );
        out.emit(&MailboxOut::from(&row), human);
    }
    Ok(())
}

/// Also deletes its auth keys and revokes the API keys restricted to it.
fn delete_mailbox(conn: &mut DbConn, config: &Config, out: &Out, id: &str) -> Result<(), Error> {
    let cache = CredentialCache::detached();
    let keys = &crate::apikeys::RESTRICTED_KEYS;
    let m = lifecycle::delete(conn, &cache, id, CLI, keys)?;
    await_propagation(config);
    out.emit(
        &DeletedOut::new(&m.id),
        format!("deleted mailbox {} ({}) and its auth keys", m.address, m.id),
    );
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
        AuthkeyCmd::Create {
            mailbox,
            name,
            allow_ip,
            expires,
        } => {
            if expires.as_deref().is_some_and(|e| e.trim().is_empty()) {
                return Err(Error::invalid(
                    "--expires needs a date (YYYY-MM-DD); omit it for a key that never expires",
                ));
            }
            let limits = auth_keys::Restrictions::parse(&allow_ip, expires.as_deref())?;
            create_authkey(conn, out, &mailbox, &name, &limits)
        }
        AuthkeyCmd::List { mailbox } => list_authkeys(conn, out, &mailbox),
        AuthkeyCmd::Disable { id } => {
            let k = auth_keys::disable(conn, &cache, &id, CLI)?;
            await_propagation(config);
            status_line(out, &k, "disabled")
        }
        AuthkeyCmd::Enable { id } => {
            let k = auth_keys::enable(conn, &cache, &id, CLI)?;
            status_line(out, &k, "enabled")
        }
        AuthkeyCmd::Rotate { id } => rotate_authkey(conn, &cache, config, out, &id),
        AuthkeyCmd::Delete { id } => {
            let k = auth_keys::delete(conn, &cache, &id, CLI)?;
            await_propagation(config);
            out.emit(
                &DeletedOut::new(&k.id),
                format!("deleted auth key {} ({})", k.id, k.name),
            );
            Ok(())
        }
    }
}

fn create_authkey(
    conn: &mut DbConn,
    out: &Out,
    mailbox: &str,
    name: &str,
    limits: &auth_keys::Restrictions,
) -> Result<(), Error> {
    let issued = auth_keys::create_restricted(conn, mailbox, name, limits, CLI)?;
    let k = &issued.key;
    out.emit(
        &AuthKeyCreatedOut::from(&issued),
        format!(
            "{}\n(auth key {} \"{}\" for {}; shown only now: store it safely)",
            issued.secret, k.id, k.name, issued.mailbox.address
        ),
    );
    Ok(())
}

fn list_authkeys(conn: &mut DbConn, out: &Out, mailbox: &str) -> Result<(), Error> {
    lifecycle::find(conn, mailbox)?;
    for row in auth_keys::list(conn, mailbox)? {
        let k = &row.key;
        let human = format!(
            "{}  {:<24} {:<8} used {}",
            k.prefix(),
            k.name,
            k.status().as_str(),
            k.usage_count
        );
        out.emit(&AuthKeyOut::from(&row), human);
    }
    Ok(())
}

/// The old secret stops at once.
fn rotate_authkey(
    conn: &mut DbConn,
    cache: &CredentialCache,
    config: &Config,
    out: &Out,
    id: &str,
) -> Result<(), Error> {
    let issued = auth_keys::rotate(conn, cache, id, CLI)?;
    await_propagation(config);
    let human = format!(
        "{}\n(new secret for auth key {}; the old one no longer works)",
        issued.secret, issued.key.id
    );
    out.emit(
        &AuthKeyRotatedOut {
            id: issued.key.id.clone(),
            prefix: issued.key.prefix(),
            key: issued.secret,
        },
        human,
    );
    Ok(())
}

fn status_line(out: &Out, k: &MailboxAuthKey, done: &str) -> Result<(), Error> {
    out.emit(
        &StatusOut::of_auth_key(k),
        format!("{done} auth key {} ({})", k.id, k.name),
    );
    Ok(())
}
