//! `keygate client`, `apps` and `keys`: the issuer's commands.

use super::await_propagation;
use super::output::{
    AppOut, ClientCreatedOut, ClientDeletedOut, ClientOut, Out, SigningKeyOut, StatusOut,
};
use crate::accounts::{self, audit};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::credentials::signing_keys;
use crate::db::{rfc3339, DbConn};
use crate::error::Error;
use crate::oauth::authorizations::{self, AppRow};
use crate::oauth::clients::{self, ClientCache};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(super) enum ClientCmd {
    /// Register an OAuth client.
    #[command(
        after_help = "Example:\n  keygate client create --name 'Acme CRM' --redirect-uri https://crm.example.com/callback"
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", required_unless_present = "grant")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE only), for native and browser apps.
        #[arg(long, conflicts_with = "grant")]
        public: bool,
        /// A service of one workspace: `client_credentials` (with --workspace
        /// and --scope).
        #[arg(long, requires_all = ["workspace", "scopes"], conflicts_with = "redirect_uris")]
        grant: Option<String>,
        /// The workspace a service client acts for.
        #[arg(long, requires = "grant")]
        workspace: Option<String>,
        /// A scope the service client may get (repeat for more).
        #[arg(long = "scope", requires = "grant")]
        scopes: Vec<String>,
        /// The URL of the client's JWK Set: it authenticates with
        /// private_key_jwt instead of a secret.
        #[arg(long, conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// A file holding the client's JWK Set: it authenticates with
        /// private_key_jwt instead of a secret.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
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
        AppsCmd::List { workspace } => list_apps(conn, out, &workspace),
        AppsCmd::Revoke { id } => revoke_app(conn, config, out, &id),
    }
}

fn list_apps(conn: &mut DbConn, out: &Out, workspace: &str) -> Result<(), Error> {
    accounts::find_workspace(conn, workspace)?;
    for row in authorizations::list_for_workspace(conn, workspace)? {
        out.emit(&AppOut::from(&row), app_line(&row));
    }
    Ok(())
}

fn app_line(row: &AppRow) -> String {
    let a = &row.authorization;
    format!(
        "{}  {:<24} {:<8} {}  {}",
        a.id,
        row.app_name,
        a.status(),
        rfc3339(a.created_at),
        a.scopes
    )
}

fn revoke_app(conn: &mut DbConn, config: &Config, out: &Out, id: &str) -> Result<(), Error> {
    let cause = authorizations::Cause::Person(audit::CLI);
    let a = authorizations::revoke(conn, &CredentialCache::detached(), id, cause)?;
    await_propagation(config);
    let human = format!("revoked authorization {}", a.id);
    out.emit(
        &StatusOut {
            id: a.id,
            status: "revoked",
        },
        human,
    );
    Ok(())
}

pub(super) fn client(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: ClientCmd,
) -> Result<(), Error> {
    match cmd {
        ClientCmd::Create {
            grant: Some(grant),
            workspace,
            scopes,
            jwks_uri,
            jwks_file,
            name,
            ..
        } => super::machine::create_service(
            conn,
            out,
            super::machine::ServiceArgs {
                grant,
                workspace: workspace.unwrap_or_default(),
                name,
                scopes,
                jwks_uri,
                jwks_file,
            },
        ),
        ClientCmd::Create {
            name,
            redirect_uris,
            public,
            jwks_uri,
            jwks_file,
            ..
        } => super::machine::create_client_with_keys(
            conn,
            out,
            &name,
            &redirect_uris,
            public,
            (jwks_uri, jwks_file),
        ),
        ClientCmd::List => list_clients(conn, out),
        ClientCmd::Delete { client_id } => delete_client(conn, config, out, &client_id),
    }
}

pub(super) fn create_client(
    conn: &mut DbConn,
    out: &Out,
    name: &str,
    redirect_uris: &[String],
    public: bool,
) -> Result<(), Error> {
    let created = clients::create(conn, name, redirect_uris, public)?;
    let id = created.client.id;
    let human = match &created.secret {
        Some(s) => format!("client_id: {id}\nclient_secret: {s}\n(the secret is shown only now)"),
        None => format!("client_id: {id} (public client: no secret, PKCE only)"),
    };
    out.emit(
        &ClientCreatedOut {
            client_id: id,
            client_secret: created.secret,
        },
        human,
    );
    Ok(())
}

fn list_clients(conn: &mut DbConn, out: &Out) -> Result<(), Error> {
    for (c, active) in clients::list_all(conn)? {
        let human = format!(
            "{}  {:<24} {:<17} {:<6} {} active",
            c.id,
            c.name,
            c.kind,
            if c.is_public { "public" } else { "secret" },
            active
        );
        out.emit(&ClientOut::new(&c, active), human);
    }
    Ok(())
}

/// Deletes a client of any kind and revokes every authorization of it.
fn delete_client(conn: &mut DbConn, config: &Config, out: &Out, id: &str) -> Result<(), Error> {
    let (clients, credentials) = (ClientCache::default(), CredentialCache::detached());
    let deleted = clients::delete(conn, &clients, &credentials, id, audit::CLI_ACTOR, None)?;
    await_propagation(config);
    let human = format!(
        "deleted client {} ({}); revoked {} authorization(s)",
        deleted.client.id, deleted.client.name, deleted.revoked
    );
    out.emit(
        &ClientDeletedOut {
            client_id: deleted.client.id,
            deleted: true,
            revoked_authorizations: deleted.revoked,
        },
        human,
    );
    Ok(())
}

pub(super) fn keys(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: KeysCmd,
) -> Result<(), Error> {
    let KeysCmd::Rotate = cmd;
    let kid = signing_keys::rotate(conn, config.master_key.as_ref())?;
    let human =
        format!("new signing key {kid}; older keys stay published until their tokens expire");
    out.emit(&SigningKeyOut { kid }, human);
    Ok(())
}
