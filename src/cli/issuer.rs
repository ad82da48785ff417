//! `keygate client`, `apps` and `keys`: the issuer's commands.

use super::*;

#[derive(Subcommand, Debug)]
pub(super) enum ClientCmd {
    /// Register an OAuth client.
    #[command(
        after_help = "Example:\n  keygate client create --name 'Acme CRM' --redirect-uri https://crm.example.com/callback"
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE only), for native and browser apps.
        #[arg(long)]
        public: bool,
    },
    /// List every client: the operator's, developer apps, and apps that
    /// registered themselves (RFC 7591 or a client ID metadata document).
    #[command(after_help = "Example:\n  keygate --json client list")]
    List,
    /// Delete a client of any kind and revoke every authorization of it.
    #[command(after_help = "Example:\n  keygate client delete CLIENT_ID")]
    Delete { client_id: String },
}

#[derive(Subcommand, Debug)]
pub(super) enum AppsCmd {
    /// List a workspace's authorizations, newest first.
    #[command(after_help = "Example:\n  keygate --json apps list --workspace WS_ID")]
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Revoke an authorization and every token issued under it.
    #[command(after_help = "Example:\n  keygate apps revoke AUTHORIZATION_ID")]
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub(super) enum KeysCmd {
    /// Add a new signing key; older keys stay published until their tokens expire.
    #[command(after_help = "Example:\n  keygate keys rotate")]
    Rotate,
}

pub(super) fn apps(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: AppsCmd,
) -> Result<(), Error> {
    match cmd {
        AppsCmd::List { workspace } => {
            accounts::find_workspace(conn, &workspace)?;
            for row in authorizations::list_for_workspace(conn, &workspace)? {
                let a = &row.authorization;
                out.emit(
                    json!({
                        "id": a.id,
                        "app_name": row.app_name,
                        "client_id": a.client_id,
                        "workspace_id": a.workspace_id,
                        "scopes": scopes::split(&a.scopes),
                        "authorized_at": rfc3339(a.created_at),
                        "status": a.status(),
                        "authorized_by": row.authorized_by,
                        "last_used_at": time_or_null(a.last_used_at),
                    }),
                    format!(
                        "{}  {:<24} {:<8} {}  {}",
                        a.id,
                        row.app_name,
                        a.status(),
                        rfc3339(a.created_at),
                        a.scopes
                    ),
                );
            }
        }
        AppsCmd::Revoke { id } => {
            let a = authorizations::revoke(
                conn,
                &CredentialCache::detached(),
                &id,
                authorizations::Cause::Person(crate::accounts::audit::CLI),
            )?;
            await_propagation(config);
            out.emit(
                json!({"id": a.id, "status": "revoked"}),
                format!("revoked authorization {}", a.id),
            );
        }
    }
    Ok(())
}

pub(super) fn client(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: ClientCmd,
) -> Result<(), Error> {
    let (name, redirect_uris, public) = match cmd {
        ClientCmd::Create {
            name,
            redirect_uris,
            public,
        } => (name, redirect_uris, public),
        ClientCmd::List => return list_clients(conn, out),
        ClientCmd::Delete { client_id } => {
            let deleted = crate::oauth::clients::delete(
                conn,
                &crate::oauth::clients::ClientCache::default(),
                &CredentialCache::detached(),
                &client_id,
                apikeys::CLI_ACTOR,
                None,
            )?;
            await_propagation(config);
            out.emit(
                json!({"client_id": deleted.client.id, "deleted": true, "revoked_authorizations": deleted.revoked}),
                format!(
                    "deleted client {} ({}); revoked {} authorization(s)",
                    deleted.client.id, deleted.client.name, deleted.revoked
                ),
            );
            return Ok(());
        }
    };
    let created = crate::oauth::clients::create(conn, &name, &redirect_uris, public)?;
    let mut v = json!({"client_id": created.client.id});
    if let Some(secret) = &created.secret {
        v["client_secret"] = json!(secret);
    }
    let human = match &created.secret {
        Some(s) => format!(
            "client_id: {}\nclient_secret: {s}\n(the secret is shown only now)",
            created.client.id
        ),
        None => format!(
            "client_id: {} (public client: no secret, PKCE only)",
            created.client.id
        ),
    };
    out.emit(v, human);
    Ok(())
}

fn list_clients(conn: &mut DbConn, out: &Out) -> Result<(), Error> {
    for (c, active) in crate::oauth::clients::list_all(conn)? {
        out.emit(
            json!({
                "client_id": c.id,
                "name": c.name,
                "kind": c.kind,
                "public": c.is_public,
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
                "redirect_uris": c.redirect_uri_list(),
                "owner_user_id": c.owner_user_id,
                "created_at": rfc3339(c.created_at),
                "active_authorizations": active,
            }),
            format!(
                "{}  {:<24} {:<17} {:<6} {} active",
                c.id,
                c.name,
                c.kind,
                if c.is_public { "public" } else { "secret" },
                active
            ),
        );
    }
    Ok(())
}
