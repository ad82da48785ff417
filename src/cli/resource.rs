//! `keygate resource`: the product's own APIs registered as protected resources.

use super::await_propagation;
use super::output::{DeletedOut, Out, ResourceCreatedOut, ResourceOut};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::db::DbConn;
use crate::error::Error;
use crate::resources::{self, NewResource};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(super) enum ResourceCmd {
    /// Register an API as a protected resource; prints its credentials for
    /// introspection (the secret only now).
    #[command(
        after_help = "Example:\n  keygate resource create --identifier https://api.example.com --name 'Acme API' \\\n    --route 'GET /tags tags:read' --route 'POST /tags tags:write' --route '* /health -'"
    )]
    Create {
        /// The resource's URL: the `aud` of its tokens (RFC 8707).
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: String,
        /// 'METHOD PATH SCOPE': METHOD or *, a path prefix, a scope or - (any
        /// valid credential). Requests matching no route are refused.
        #[arg(long = "route", value_name = "'METHOD PATH SCOPE'")]
        routes: Vec<String>,
    },
    /// List every resource.
    #[command(after_help = "Example:\n  keygate --json resource list")]
    List,
    /// Delete a resource: its credentials and every token issued for it stop.
    #[command(after_help = "Example:\n  keygate resource delete RESOURCE_ID")]
    Delete { id: String },
}

pub(super) fn resource(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: ResourceCmd,
) -> Result<(), Error> {
    match cmd {
        ResourceCmd::Create {
            identifier,
            name,
            routes,
        } => {
            let new = NewResource {
                identifier: &identifier,
                name: &name,
                routes: &routes,
            };
            let created = resources::create(conn, &config.resource(), &new)?;
            await_propagation(config);
            let r = &created.resource;
            let human = format!(
                "resource {} ({})\nclient_id: {}\nclient_secret: {}\n(the secret is shown only now)",
                r.id, r.identifier, r.client_id, created.secret
            );
            out.emit(&ResourceCreatedOut::from(&created), human);
        }
        ResourceCmd::List => {
            for r in resources::list(conn)? {
                let routes: Vec<String> = r.routes.iter().map(|r| r.spec()).collect();
                let human = format!(
                    "{}  {:<24} {}  {}  [{}]",
                    r.id,
                    r.name,
                    r.identifier,
                    r.client_id,
                    routes.join(", ")
                );
                out.emit(&ResourceOut::from(&r), human);
            }
        }
        ResourceCmd::Delete { id } => {
            let revoke = crate::oauth::authorizations::revoke_for_resource;
            let r = resources::delete(conn, &CredentialCache::detached(), &id, revoke)?;
            await_propagation(config);
            let human = format!("deleted resource {} ({})", r.id, r.identifier);
            out.emit(&DeletedOut::new(&r.id), human);
        }
    }
    Ok(())
}
