//! `keygate demo`, `migrate`, `backup`, `restore`, `audit` and shell completions.

use super::output::{AuditEventOut, BackupOut, DemoOut, MigratedOut, Out, RestoreOut};
use super::{conn_for, serve, Cli};
use crate::accounts;
use crate::config::Config;
use crate::db::{rfc3339, DbConn};
use crate::error::Error;
use crate::node::demo::{self, Demo};
use clap::{Args, CommandFactory, Subcommand};
use std::path::Path;

#[derive(Subcommand, Debug)]
pub(super) enum AuditCmd {
    /// Show a workspace's security log, newest first.
    #[command(after_help = "Example:\n  keygate --json audit list --workspace WS_ID")]
    List(AuditList),
}

#[derive(Args, Debug)]
pub(super) struct AuditList {
    #[arg(long)]
    workspace: String,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

pub(super) fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    write_completions(shell, &mut Cli::command(), &mut std::io::stdout())
}

/// Writes the completion script of `cmd` for `shell`. A reader that stops
/// early (`| head`) is no error.
fn write_completions(
    shell: clap_complete::Shell,
    cmd: &mut clap::Command,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    // clap_complete panics on a failed write: generate in memory, write here.
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, "keygate", &mut script);
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the completion script: {e}"))
        }
        _ => Ok(()),
    }
}

/// Seeds the demo (if absent), says how to try it, then serves.
pub(super) fn demo(mut config: Config, out: &Out) -> Result<(), String> {
    let seeded = {
        let mut conn = conn_for(&config)?;
        demo::seed(&mut conn, &config).map_err(|e| e.to_string())?
    };
    config.demo = true;
    print_demo(&config, &seeded);
    // The same, for scripts: one line on stdout before serving.
    out.json_only(&DemoOut {
        authorize_url: demo::authorize_url(&config, &seeded),
        client_id: seeded.client_id,
        code_verifier: demo::VERIFIER,
        email: demo::EMAIL,
        password: demo::PASSWORD,
        redirect_uri: seeded.redirect_uri,
        workspace_id: seeded.workspace_id,
    });
    serve::run(config)
}

fn print_demo(config: &Config, seeded: &Demo) {
    eprintln!(
        "\nkeygate demo\n\
         ------------\n\
         Sign in as:      {email} / {password}\n\
         Workspace:       {ws}\n\
         Demo client:     {client} (public, PKCE)\n\n\
         1. Open this authorization request in a browser, sign in and approve:\n   {url}\n\
         2. The demo callback page shows the code and the curl command that exchanges it.\n\
         3. Manage API keys and authorized apps at {issuer}/settings\n",
        email = demo::EMAIL,
        password = demo::PASSWORD,
        ws = seeded.workspace_id,
        client = seeded.client_id,
        url = demo::authorize_url(config, seeded),
        issuer = config.issuer,
    );
}

/// Connecting runs the migrations.
pub(super) fn migrate(config: &Config, out: &Out) -> Result<(), String> {
    conn_for(config)?;
    out.emit(
        &MigratedOut { migrated: true },
        "migrations are up to date".into(),
    );
    Ok(())
}

pub(super) fn backup(config: &Config, out: &Out, to: &Path) -> Result<(), String> {
    let bytes = crate::db::backup::backup(&config.database_url, to)?;
    let line = BackupOut {
        backup: to.display().to_string(),
        bytes,
    };
    out.emit(
        &line,
        format!("backed up to {} ({bytes} bytes)", to.display()),
    );
    Ok(())
}

pub(super) fn restore(config: &Config, out: &Out, from: &Path) -> Result<(), String> {
    let (database, bytes) = crate::db::backup::restore(&config.database_url, from)?;
    let line = RestoreOut {
        bytes,
        database: database.display().to_string(),
        restored: from.display().to_string(),
    };
    out.emit(
        &line,
        format!(
            "restored {} into {} ({bytes} bytes)",
            from.display(),
            database.display()
        ),
    );
    Ok(())
}

pub(super) fn audit(conn: &mut DbConn, out: &Out, cmd: AuditCmd) -> Result<(), Error> {
    let AuditCmd::List(a) = cmd;
    accounts::find_workspace(conn, &a.workspace)?;
    for ev in accounts::audit::list(conn, &a.workspace, a.limit.clamp(1, 10_000))? {
        let human = format!(
            "{}  {}  {}  {}",
            rfc3339(ev.created_at),
            ev.action,
            ev.subject,
            ev.actor
        );
        out.emit(&AuditEventOut::from(ev), human);
    }
    Ok(())
}
