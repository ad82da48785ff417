//! `keygate domain`: the sending domains of a workspace (add, verify, list,
//! remove). DNS is asked through `KEYGATE_DNS_SERVER` or the system's resolver.

use super::await_propagation;
use super::output::{DomainAddedOut, DomainOut, DomainRemovedOut, DomainVerifiedOut, Out};
use crate::accounts::{self, audit::CLI};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::db::DbConn;
use crate::error::Error;
use crate::mailboxes::domains::{self, dns::Dns};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(super) enum DomainCmd {
    /// Add a sending domain (pending until its TXT record is found).
    #[command(
        after_help = "Examples:\n  keygate domain add --workspace WS_ID --domain example.com\n  keygate domain add --workspace WS_ID --domain example.com --verified   (operator: no DNS check, ever)"
    )]
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        domain: String,
        /// Verified on the operator's word, without a DNS lookup, and never looked up again.
        #[arg(long)]
        verified: bool,
    },
    /// Look up the domain's TXT record and verify it.
    #[command(after_help = "Example:\n  keygate domain verify DOMAIN_ID")]
    Verify { id: String },
    /// List a workspace's domains, newest first.
    #[command(after_help = "Example:\n  keygate --json domain list --workspace WS_ID")]
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Remove a domain; every mailbox in it is deleted as `mailbox delete` does.
    #[command(after_help = "Example:\n  keygate domain remove DOMAIN_ID")]
    Remove { id: String },
}

pub(super) fn domain(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: DomainCmd,
) -> Result<(), Error> {
    let cache = CredentialCache::detached();
    match cmd {
        DomainCmd::Add {
            workspace,
            domain,
            verified,
        } => {
            let d = domains::add(conn, &workspace, &domain, verified, CLI)?;
            if verified {
                // Other workspaces' mailboxes in the domain stop: let every
                // running node hear it first.
                await_propagation(config);
            }
            let human = format!(
                "added {} ({}), {}: publish a TXT record at {} with the value {}",
                d.domain,
                d.id,
                d.status,
                d.txt_name(),
                d.txt_value()
            );
            out.emit(&DomainAddedOut::from(&d), human);
        }
        DomainCmd::Verify { id } => {
            let d = domains::verify_blocking(conn, &cache, &Dns::from_config(config), &id, CLI)?;
            await_propagation(config);
            out.emit(
                &DomainVerifiedOut::from(&d),
                format!("{} ({}) is verified", d.domain, d.id),
            );
        }
        DomainCmd::List { workspace } => {
            accounts::find_workspace(conn, &workspace)?;
            for d in domains::list(conn, &workspace)? {
                let human = format!("{}  {:<40} {}", d.id, d.domain, d.status);
                out.emit(&DomainOut::from(&d), human);
            }
        }
        DomainCmd::Remove { id } => {
            let keys = &crate::apikeys::RESTRICTED_KEYS;
            let d = domains::remove(conn, &cache, &id, CLI, keys)?;
            await_propagation(config);
            out.emit(
                &DomainRemovedOut::new(&d.id),
                format!("removed {} ({}) and its mailboxes", d.domain, d.id),
            );
        }
    }
    Ok(())
}
