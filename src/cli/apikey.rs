//! `keygate apikey`.

use super::await_propagation;
use super::output::{ApiKeyCreatedOut, ApiKeyOut, ApiKeyRotatedOut, Out, StatusOut, UsageDayOut};
use crate::accounts::{self, audit::CLI};
use crate::apikeys::{self, Access, KeyRow, ListFilter, NewKey};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::credentials::usage;
use crate::db::{self, rfc3339, DbConn};
use crate::error::Error;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub(super) enum ApikeyCmd {
    /// Generate a key; the full key is printed once.
    #[command(
        after_help = "Examples:\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only --expires 2027-01-31\n  keygate apikey create --workspace WS_ID --name site-forms --access custom --scope forms:read --scope forms:write\n  keygate apikey create --workspace WS_ID --name backend --access read_write --allow-ip 203.0.113.0/24 --allow-ip 2001:db8::/32"
    )]
    Create(CreateArgs),
    /// List a workspace's keys, newest first.
    #[command(
        after_help = "Examples:\n  keygate --json apikey list --workspace WS_ID --status active\n  keygate apikey list --workspace WS_ID --status expiring"
    )]
    List(ListArgs),
    /// Give a key a new secret (printed once); the old one stops at once, or
    /// at the end of --grace.
    #[command(
        after_help = "Examples:\n  keygate apikey rotate KEY_ID\n  keygate apikey rotate KEY_ID --grace 7d\n\n--grace keeps the old secret working for that long (30m, 1h, 7d; at most 30d),\non every node, so the integration can switch to the new one first."
    )]
    Rotate {
        id: String,
        /// How long the old secret keeps working: a number and s, m, h or d
        /// (e.g. 1h, 7d; at most 30 days). Omit to stop it at once.
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
    },
    /// Revoke a key: immediate and final.
    #[command(after_help = "Example:\n  keygate apikey revoke KEY_ID")]
    Revoke { id: String },
    /// Daily request counts of a key (kept for 90 days), oldest first.
    #[command(after_help = "Example:\n  keygate --json apikey usage KEY_ID --days 30")]
    Usage {
        id: String,
        /// How many days back, up to 90.
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Args, Debug)]
pub(super) struct CreateArgs {
    #[arg(long)]
    workspace: String,
    #[arg(long)]
    name: String,
    /// read_only, read_write, or custom (with --scope).
    #[arg(long)]
    access: String,
    /// With --access custom: a scope the key gets (repeatable), e.g. tags:read.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The last day the key works (YYYY-MM-DD, UTC); omit for never.
    #[arg(long)]
    expires: Option<String>,
    /// Only requests from this address or network may use the key
    /// (repeatable; IPv4 or IPv6 CIDR, or a bare address). Omit for anywhere.
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ip: Vec<String>,
    /// Restrict the key to one mailbox of the workspace: it reads only that
    /// mailbox on /v1, and nothing else.
    #[arg(long, value_name = "MAILBOX_ID")]
    mailbox: Option<String>,
}

#[derive(Args, Debug)]
pub(super) struct ListArgs {
    #[arg(long)]
    workspace: String,
    /// Search name, creator, workspace or purpose.
    #[arg(long)]
    search: Option<String>,
    /// active, expired, revoked, or expiring (active and ending within 7 days).
    #[arg(long)]
    status: Option<String>,
}

pub(super) fn apikey(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: ApikeyCmd,
) -> Result<(), Error> {
    match cmd {
        ApikeyCmd::Create(args) => create(conn, out, args),
        ApikeyCmd::List(args) => list(conn, out, args),
        ApikeyCmd::Rotate { id, grace } => rotate(conn, config, out, &id, grace.as_deref()),
        ApikeyCmd::Usage { id, days } => usage(conn, out, &id, days),
        ApikeyCmd::Revoke { id } => revoke(conn, config, out, &id),
    }
}

fn create(conn: &mut DbConn, out: &Out, args: CreateArgs) -> Result<(), Error> {
    let spec = new_key(&args)?;
    let issued = apikeys::create_key(conn, &spec, CLI)?;
    out.emit(
        &ApiKeyCreatedOut::new(&issued.key, &issued.secret),
        format!(
            "{}\n(key {} \"{}\"; shown only now: store it safely)",
            issued.secret, issued.key.id, issued.key.name
        ),
    );
    Ok(())
}

/// The key `apikey create` asks for, from its flags.
fn new_key(args: &CreateArgs) -> Result<NewKey<'_>, Error> {
    let access = Access::with_scopes(&args.access, &args.scopes)?;
    if args.expires.as_deref().is_some_and(|e| e.trim().is_empty()) {
        return Err(Error::invalid(
            "--expires needs a date (YYYY-MM-DD); omit it for a key that never expires",
        ));
    }
    let expires_at = apikeys::parse_expiry(args.expires.as_deref())?;
    let allowed_ips = match args.allow_ip.is_empty() {
        true => None,
        false => Some(
            apikeys::IpAllowList::parse_entries(&args.allow_ip)
                .map_err(|e| Error::invalid(format!("--allow-ip: {e}")))?,
        ),
    };
    Ok(NewKey {
        workspace_id: &args.workspace,
        name: &args.name,
        access,
        expires_at,
        allowed_ips,
        mailbox_id: args.mailbox.as_deref(),
    })
}

fn list(conn: &mut DbConn, out: &Out, args: ListArgs) -> Result<(), Error> {
    if let Some(s) = args.status.as_deref() {
        if !apikeys::STATUS_FILTERS.contains(&s) {
            return Err(Error::invalid(format!(
                "unknown status {s:?}: expected active, expired, revoked or expiring"
            )));
        }
    }
    accounts::find_workspace(conn, &args.workspace)?;
    let filter = ListFilter {
        query: args.search,
        status: args.status,
    };
    let now = db::now();
    for row in apikeys::list(conn, &args.workspace, &filter)? {
        out.emit(&ApiKeyOut::new(&row, now), key_line(&row, now));
    }
    Ok(())
}

fn key_line(row: &KeyRow, now: i64) -> String {
    let k = &row.key;
    format!(
        "{}  {:<24} {:<10} {:<8} used {}",
        k.prefix(),
        k.name,
        k.access,
        k.status_at(now).as_str(),
        k.usage_count
    )
}

/// A new secret; the old one stops at once, or at the end of `grace`.
fn rotate(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    id: &str,
    grace: Option<&str>,
) -> Result<(), Error> {
    let grace = grace
        .map(apikeys::grace::parse_grace)
        .transpose()
        .map_err(|e| Error::invalid(format!("--grace: {e}")))?;
    let cache = CredentialCache::detached();
    let issued = apikeys::rotate_with_grace(conn, &cache, id, grace, CLI)?;
    await_propagation(config);
    let grace_end = issued.key.grace_ends_at(db::now());
    let old = match grace_end {
        Some(t) => format!("the old one works until {}", rfc3339(t)),
        None => "the old one no longer works".to_string(),
    };
    out.emit(
        &ApiKeyRotatedOut::new(&issued.key, &issued.secret, grace_end),
        format!(
            "{}\n(new secret for key {}; {old})",
            issued.secret, issued.key.id
        ),
    );
    Ok(())
}

/// One line per day of the last `days`, a day without requests as 0.
fn usage(conn: &mut DbConn, out: &Out, id: &str, days: i64) -> Result<(), Error> {
    if !(1..=usage::RETENTION_DAYS).contains(&days) {
        return Err(Error::invalid("--days must be from 1 to 90"));
    }
    let key = apikeys::find(conn, id)?;
    let today = usage::day_of(db::now());
    let first = today - days + 1;
    let series = usage::series(conn, usage::API_KEY, &key.id, first)?;
    let counts: std::collections::HashMap<i64, i64> = series.into_iter().collect();
    for day in first..=today {
        let count = counts.get(&day).copied().unwrap_or(0);
        let date = usage::date_of(day);
        let human = format!("{date}  {count}");
        let line = UsageDayOut {
            count,
            date,
            id: key.id.clone(),
        };
        out.emit(&line, human);
    }
    Ok(())
}

/// Immediate and final.
fn revoke(conn: &mut DbConn, config: &Config, out: &Out, id: &str) -> Result<(), Error> {
    let key = apikeys::revoke(conn, &CredentialCache::detached(), id, CLI)?;
    await_propagation(config);
    let human = format!("revoked key {} ({})", key.id, key.name);
    out.emit(
        &StatusOut {
            id: key.id,
            status: "revoked",
        },
        human,
    );
    Ok(())
}
