//! `keygate workspace`, `user` and `member`.

use super::output::{MemberOut, MemberRemovedOut, Out, UserOut, WorkspaceOut, WorkspacePlanOut};
use super::{await_propagation, conn_for};
use crate::accounts::{self, audit::CLI_ACTOR, Plan, Role};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::db::DbConn;
use crate::error::Error;
use crate::oauth::authorizations;
use clap::Subcommand;
use std::io::BufRead;

#[derive(Subcommand, Debug)]
pub(super) enum WorkspaceCmd {
    /// Create a workspace.
    #[command(after_help = "Example:\n  keygate workspace create --name Acme --plan pro")]
    Create {
        #[arg(long)]
        name: String,
        /// free (no API access) or pro (API access).
        #[arg(long, default_value = "pro")]
        plan: String,
    },
    /// Change a workspace's plan.
    #[command(after_help = "Example:\n  keygate workspace set-plan WS_ID --plan free")]
    SetPlan {
        id: String,
        #[arg(long)]
        plan: String,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum UserCmd {
    /// Create a user; the password is read from stdin (one line).
    #[command(
        after_help = "Example:\n  echo 'a long password' | keygate user create --email ada@example.com --password-stdin"
    )]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum MemberCmd {
    /// Add a user to a workspace.
    #[command(
        after_help = "Example:\n  keygate member add --workspace WS_ID --user USER_ID --role owner"
    )]
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
        /// owner, admin or member.
        #[arg(long)]
        role: String,
    },
    /// Remove a user from a workspace; revokes the apps they authorized there.
    #[command(after_help = "Example:\n  keygate member remove --workspace WS_ID --user USER_ID")]
    Remove {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
    },
}

/// Reads the password before opening the database: a missing one changes nothing.
pub(super) fn user(config: &Config, out: &Out, cmd: UserCmd) -> Result<(), String> {
    let UserCmd::Create { email, .. } = cmd;
    let password = read_password()?;
    let mut conn = conn_for(config)?;
    let user = accounts::create_user(&mut conn, &email, &password).map_err(|e| e.to_string())?;
    let human = format!("created user {} ({})", user.email, user.id);
    out.emit(
        &UserOut {
            email: user.email,
            id: user.id,
        },
        human,
    );
    Ok(())
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("no password on stdin (pipe one line into --password-stdin)".into());
    }
    Ok(password)
}

pub(super) fn workspace(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: WorkspaceCmd,
) -> Result<(), Error> {
    match cmd {
        WorkspaceCmd::Create { name, plan } => create_workspace(conn, out, &name, &plan),
        WorkspaceCmd::SetPlan { id, plan } => set_plan(conn, config, out, &id, &plan),
    }
}

fn create_workspace(conn: &mut DbConn, out: &Out, name: &str, plan: &str) -> Result<(), Error> {
    let ws = accounts::create_workspace(conn, name, Plan::parse(plan)?)?;
    let human = format!(
        "created workspace {} ({}, plan {})",
        ws.name, ws.id, ws.plan
    );
    out.emit(
        &WorkspaceOut {
            id: ws.id,
            name: ws.name,
        },
        human,
    );
    Ok(())
}

fn set_plan(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    id: &str,
    plan: &str,
) -> Result<(), Error> {
    let ws = crate::apikeys::set_plan(conn, id, Plan::parse(plan)?)?;
    await_propagation(config);
    let human = format!("workspace {} is now on plan {}", ws.id, ws.plan);
    out.emit(
        &WorkspacePlanOut {
            id: ws.id,
            name: ws.name,
            plan: ws.plan,
        },
        human,
    );
    Ok(())
}

pub(super) fn member(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: MemberCmd,
) -> Result<(), Error> {
    match cmd {
        MemberCmd::Add {
            workspace,
            user,
            role,
        } => add_member(conn, out, &workspace, &user, &role),
        MemberCmd::Remove { workspace, user } => remove_member(conn, config, out, workspace, user),
    }
}

fn add_member(
    conn: &mut DbConn,
    out: &Out,
    workspace: &str,
    user: &str,
    role: &str,
) -> Result<(), Error> {
    let role = Role::parse(role)?;
    let m = accounts::add_member(conn, workspace, user, role)?;
    let human = format!(
        "added user {} to workspace {} as {}",
        m.user_id, m.workspace_id, m.role
    );
    out.emit(
        &MemberOut {
            role: m.role,
            user_id: m.user_id,
            workspace_id: m.workspace_id,
        },
        human,
    );
    Ok(())
}

/// Also revokes the apps the person authorized in the workspace.
fn remove_member(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    workspace: String,
    user: String,
) -> Result<(), Error> {
    let cache = CredentialCache::detached();
    let revoked = authorizations::remove_member(conn, &cache, &workspace, &user, CLI_ACTOR)?;
    await_propagation(config);
    let human = format!(
        "removed user {user} from workspace {workspace}; revoked {revoked} authorization(s)"
    );
    out.emit(
        &MemberRemovedOut {
            removed: true,
            revoked_authorizations: revoked,
            user_id: user,
            workspace_id: workspace,
        },
        human,
    );
    Ok(())
}
