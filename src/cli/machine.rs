//! Machine clients on the command line: `keygate client create --grant
//! client_credentials …`, clients with keys (`--jwks-uri`, `--jwks-file`),
//! and `keygate trust` (identity providers a workspace trusts).

use super::output::{ClientCreatedOut, Out};
use crate::accounts::audit;
use crate::db::DbConn;
use crate::error::Error;
use crate::oauth::service_clients::{self, ClientKeys, NewService};
use std::path::PathBuf;

/// The arguments of `keygate client create --grant …`.
pub(super) struct ServiceArgs {
    pub grant: String,
    pub workspace: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub jwks_uri: Option<String>,
    pub jwks_file: Option<PathBuf>,
}

/// The keys the flags name: a JWK Set URL, a file, or neither (a secret).
fn keys_of(jwks_uri: Option<String>, jwks_file: Option<PathBuf>) -> Result<ClientKeys, Error> {
    match (jwks_uri, jwks_file) {
        (Some(uri), _) => Ok(ClientKeys::JwksUri(uri)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
            let jwks = serde_json::from_str(&text).map_err(|_| {
                Error::invalid(format!("{} does not hold a JSON JWK Set", path.display()))
            })?;
            Ok(ClientKeys::Jwks(jwks))
        }
        (None, None) => Ok(ClientKeys::Secret),
    }
}

pub(super) fn create_service(conn: &mut DbConn, out: &Out, args: ServiceArgs) -> Result<(), Error> {
    if args.grant != service_clients::GRANT {
        return Err(Error::invalid(format!(
            "--grant {:?} is not offered; the one grant of a service client is {}",
            args.grant,
            service_clients::GRANT
        )));
    }
    let keys = keys_of(args.jwks_uri, args.jwks_file)?;
    let new = NewService {
        workspace_id: &args.workspace,
        name: &args.name,
        scopes: &args.scopes,
        keys,
    };
    let (created, _) = service_clients::create(conn, &new, audit::CLI)?;
    emit_created(out, created.client.id, created.secret);
    Ok(())
}

/// `keygate client create --redirect-uri … [--jwks-uri|--jwks-file]`: a code
/// flow client; with keys, a confidential one that uses private_key_jwt.
pub(super) fn create_client_with_keys(
    conn: &mut DbConn,
    out: &Out,
    name: &str,
    redirect_uris: &[String],
    public: bool,
    (jwks_uri, jwks_file): (Option<String>, Option<PathBuf>),
) -> Result<(), Error> {
    let keys = keys_of(jwks_uri, jwks_file)?;
    if matches!(keys, ClientKeys::Secret) {
        return super::issuer::create_client(conn, out, name, redirect_uris, public);
    }
    if public {
        return Err(Error::invalid("a public client has no keys"));
    }
    let created = service_clients::create_with_keys(conn, name, redirect_uris, keys)?;
    emit_created(out, created.client.id, None);
    Ok(())
}

fn emit_created(out: &Out, id: String, secret: Option<String>) {
    let human = match &secret {
        Some(s) => format!("client_id: {id}\nclient_secret: {s}\n(the secret is shown only now)"),
        None => format!("client_id: {id} (authenticates with private_key_jwt)"),
    };
    out.emit(
        &ClientCreatedOut {
            client_id: id,
            client_secret: secret,
        },
        human,
    );
}

#[derive(clap::Subcommand, Debug)]
pub(super) enum TrustCmd {
    /// Trust an identity provider for identity assertion grants (ID-JAG).
    #[command(
        after_help = "Example:\n  keygate trust add --workspace WS_ID --idp-issuer https://idp.example.com --jwks-uri https://idp.example.com/jwks"
    )]
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        idp_issuer: String,
        #[arg(long)]
        jwks_uri: String,
    },
    /// List a workspace's trusted identity providers.
    #[command(after_help = "Example:\n  keygate --json trust list --workspace WS_ID")]
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Stop trusting an identity provider.
    #[command(after_help = "Example:\n  keygate trust remove TRUST_ID")]
    Remove { id: String },
}

#[derive(serde::Serialize)]
struct TrustOut<'a> {
    id: &'a str,
    workspace_id: &'a str,
    issuer: &'a str,
    jwks_uri: &'a str,
    created_at: String,
}

#[derive(serde::Serialize)]
struct RemovedOut<'a> {
    id: &'a str,
    removed: bool,
}

fn emit_trust(out: &Out, t: &crate::oauth::trust::TrustedIssuer) {
    let human = format!("{}  {}  {}", t.id, t.issuer, t.jwks_uri);
    out.emit(
        &TrustOut {
            id: &t.id,
            workspace_id: &t.workspace_id,
            issuer: &t.issuer,
            jwks_uri: &t.jwks_uri,
            created_at: crate::db::rfc3339(t.created_at),
        },
        human,
    );
}

pub(super) fn trust(conn: &mut DbConn, out: &Out, cmd: TrustCmd) -> Result<(), Error> {
    use crate::oauth::trust;
    match cmd {
        TrustCmd::Add {
            workspace,
            idp_issuer,
            jwks_uri,
        } => emit_trust(
            out,
            &trust::add(conn, &workspace, &idp_issuer, &jwks_uri, audit::CLI)?,
        ),
        TrustCmd::List { workspace } => {
            for t in trust::list(conn, &workspace)? {
                emit_trust(out, &t);
            }
        }
        TrustCmd::Remove { id } => {
            let t = trust::remove(conn, &id, audit::CLI)?;
            let human = format!("no longer trusted: {}", t.issuer);
            out.emit(
                &RemovedOut {
                    id: &t.id,
                    removed: true,
                },
                human,
            );
        }
    }
    Ok(())
}
