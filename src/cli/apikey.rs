//! `keygate apikey`.

use super::*;

#[derive(Subcommand, Debug)]
pub(super) enum ApikeyCmd {
    /// Generate a key; the full key is printed once.
    #[command(
        after_help = "Examples:\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only --expires 2027-01-31\n  keygate apikey create --workspace WS_ID --name site-forms --access custom --scope forms:read --scope forms:write\n  keygate apikey create --workspace WS_ID --name backend --access read_write --allow-ip 203.0.113.0/24 --allow-ip 2001:db8::/32"
    )]
    Create {
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
    },
    /// List a workspace's keys, newest first.
    #[command(
        after_help = "Examples:\n  keygate --json apikey list --workspace WS_ID --status active\n  keygate apikey list --workspace WS_ID --status expiring"
    )]
    List {
        #[arg(long)]
        workspace: String,
        /// Search name, creator, workspace or purpose.
        #[arg(long)]
        search: Option<String>,
        /// active, expired, revoked, or expiring (active and ending within 7 days).
        #[arg(long)]
        status: Option<String>,
    },
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

pub(super) fn key_json(key: &apikeys::ApiKey, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": key.id,
        "prefix": key.prefix(),
        "access": key.access,
        "scopes": key.scope_names(),
        "allowed_ips": key.allowed_ip_list(),
        "expires_at": time_or_null(key.expires_at),
        "mailbox_id": key.mailbox_id,
    });
    if let Some(s) = secret {
        v["key"] = json!(s);
    }
    v
}

pub(super) fn apikey(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: ApikeyCmd,
) -> Result<(), Error> {
    match cmd {
        ApikeyCmd::Create {
            workspace,
            name,
            access,
            scopes,
            expires,
            allow_ip,
            mailbox,
        } => {
            let access = Access::with_scopes(&access, &scopes)?;
            if expires.as_deref().is_some_and(|e| e.trim().is_empty()) {
                return Err(Error::invalid(
                    "--expires needs a date (YYYY-MM-DD); omit it for a key that never expires",
                ));
            }
            let expires_at = apikeys::parse_expiry(expires.as_deref())?;
            let allowed_ips = if allow_ip.is_empty() {
                None
            } else {
                Some(
                    apikeys::IpAllowList::parse_entries(&allow_ip)
                        .map_err(|e| Error::invalid(format!("--allow-ip: {e}")))?,
                )
            };
            let spec = apikeys::NewKey {
                workspace_id: &workspace,
                name: &name,
                access,
                expires_at,
                allowed_ips,
                mailbox_id: mailbox.as_deref(),
            };
            let issued = apikeys::create_key(conn, &spec, crate::accounts::audit::CLI)?;
            out.emit(
                key_json(&issued.key, Some(&issued.secret)),
                format!(
                    "{}\n(key {} \"{}\"; shown only now: store it safely)",
                    issued.secret, issued.key.id, issued.key.name
                ),
            );
        }
        ApikeyCmd::List {
            workspace,
            search,
            status,
        } => {
            if let Some(s) = status.as_deref() {
                if !apikeys::STATUS_FILTERS.contains(&s) {
                    return Err(Error::invalid(format!(
                        "unknown status {s:?}: expected active, expired, revoked or expiring"
                    )));
                }
            }
            accounts::find_workspace(conn, &workspace)?;
            let now = db::now();
            for row in apikeys::list(
                conn,
                &workspace,
                &ListFilter {
                    query: search,
                    status,
                },
            )? {
                let k = &row.key;
                let mut v = key_json(k, None);
                v["name"] = json!(k.name);
                v["workspace_id"] = json!(k.workspace_id);
                v["created_by"] = json!(row.creator);
                v["created_at"] = json!(rfc3339(k.created_at));
                v["usage_count"] = json!(k.usage_count);
                v["last_used_at"] = time_or_null(k.last_used_at);
                v["last_used_ip"] = json!(k.last_used_ip);
                v["status"] = json!(k.status_at(now).as_str());
                v["expiring_soon"] = json!(k.expiring_soon(now));
                v["previous_secret_expires_at"] = time_or_null(k.grace_ends_at(now));
                out.emit(
                    v,
                    format!(
                        "{}  {:<24} {:<10} {:<8} used {}",
                        k.prefix(),
                        k.name,
                        k.access,
                        k.status_at(now).as_str(),
                        k.usage_count
                    ),
                );
            }
        }
        ApikeyCmd::Rotate { id, grace } => {
            let grace = grace
                .as_deref()
                .map(crate::apikeys::grace::parse_grace)
                .transpose()
                .map_err(|e| Error::invalid(format!("--grace: {e}")))?;
            let issued = apikeys::rotate_with_grace(
                conn,
                &CredentialCache::detached(),
                &id,
                grace,
                crate::accounts::audit::CLI,
            )?;
            await_propagation(config);
            let now = db::now();
            let grace_end = issued.key.grace_ends_at(now);
            let mut v = key_json(&issued.key, Some(&issued.secret));
            v["previous_secret_expires_at"] = time_or_null(grace_end);
            let old = match grace_end {
                Some(t) => format!("the old one works until {}", rfc3339(t)),
                None => "the old one no longer works".to_string(),
            };
            out.emit(
                v,
                format!(
                    "{}\n(new secret for key {}; {old})",
                    issued.secret, issued.key.id
                ),
            );
        }
        ApikeyCmd::Usage { id, days } => {
            if !(1..=crate::credentials::usage::RETENTION_DAYS).contains(&days) {
                return Err(Error::invalid("--days must be from 1 to 90"));
            }
            let key = apikeys::find(conn, &id)?;
            let today = crate::credentials::usage::day_of(db::now());
            let series = crate::credentials::usage::series(
                conn,
                crate::credentials::usage::API_KEY,
                &key.id,
                today - days + 1,
            )?;
            let counts: std::collections::HashMap<i64, i64> = series.into_iter().collect();
            for day in (today - days + 1)..=today {
                let n = counts.get(&day).copied().unwrap_or(0);
                let date = crate::credentials::usage::date_of(day);
                out.emit(
                    json!({"id": key.id, "date": date, "count": n}),
                    format!("{date}  {n}"),
                );
            }
        }
        ApikeyCmd::Revoke { id } => {
            let key = apikeys::revoke(
                conn,
                &CredentialCache::detached(),
                &id,
                crate::accounts::audit::CLI,
            )?;
            await_propagation(config);
            out.emit(
                json!({"id": key.id, "status": "revoked"}),
                format!("revoked key {} ({})", key.id, key.name),
            );
        }
    }
    Ok(())
}
