//! `keygate audit`, shell completions and the demo's banner.

use super::*;

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

pub(super) fn print_demo(config: &Config, demo: &crate::node::demo::Demo) {
    eprintln!(
        "\nkeygate demo\n\
         ------------\n\
         Sign in as:      {email} / {password}\n\
         Workspace:       {ws}\n\
         Demo client:     {client} (public, PKCE)\n\n\
         1. Open this authorization request in a browser, sign in and approve:\n   {url}\n\
         2. The demo callback page shows the code and the curl command that exchanges it.\n\
         3. Manage API keys and authorized apps at {issuer}/settings\n",
        email = crate::node::demo::EMAIL,
        password = crate::node::demo::PASSWORD,
        ws = demo.workspace_id,
        client = demo.client_id,
        url = crate::node::demo::authorize_url(config, demo),
        issuer = config.issuer,
    );
}

pub(super) fn audit(conn: &mut DbConn, out: &Out, cmd: AuditCmd) -> Result<(), Error> {
    let AuditCmd::List(a) = cmd;
    accounts::find_workspace(conn, &a.workspace)?;
    for ev in crate::accounts::audit::list(conn, &a.workspace, a.limit.clamp(1, 10_000))? {
        out.emit(
                    json!({"id": ev.id, "workspace_id": ev.workspace_id, "actor": ev.actor, "action": ev.action,
                           "subject": ev.subject, "client_address": ev.client_address, "created_at": rfc3339(ev.created_at),
                           "detail": ev.detail}),
                    format!("{}  {}  {}  {}", rfc3339(ev.created_at), ev.action, ev.subject, ev.actor),
                );
    }
    Ok(())
}
