//! `keygate workspace`, `user` and `member`.

use super::*;

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

pub(super) fn read_password() -> Result<String, String> {
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
        WorkspaceCmd::Create { name, plan } => {
            let ws = accounts::create_workspace(conn, &name, Plan::parse(&plan)?)?;
            out.emit(
                json!({"id": ws.id, "name": ws.name}),
                format!(
                    "created workspace {} ({}, plan {})",
                    ws.name, ws.id, ws.plan
                ),
            );
        }
        WorkspaceCmd::SetPlan { id, plan } => {
            let ws = apikeys::set_plan(conn, &id, Plan::parse(&plan)?)?;
            await_propagation(config);
            out.emit(
                json!({"id": ws.id, "name": ws.name, "plan": ws.plan}),
                format!("workspace {} is now on plan {}", ws.id, ws.plan),
            );
        }
    }
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
        } => {
            let role = Role::parse(&role)?;
            let m = accounts::add_member(conn, &workspace, &user, role)?;
            out.emit(
                json!({"workspace_id": m.workspace_id, "user_id": m.user_id, "role": m.role}),
                format!(
                    "added user {} to workspace {} as {}",
                    m.user_id, m.workspace_id, m.role
                ),
            );
        }
        MemberCmd::Remove { workspace, user } => {
            let revoked = authorizations::remove_member(
                conn,
                &CredentialCache::detached(),
                &workspace,
                &user,
                apikeys::CLI_ACTOR,
            )?;
            await_propagation(config);
            out.emit(
                json!({"workspace_id": workspace, "user_id": user, "removed": true, "revoked_authorizations": revoked}),
                format!("removed user {user} from workspace {workspace}; revoked {revoked} authorization(s)"),
            );
        }
    }
    Ok(())
}
