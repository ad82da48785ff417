//! The machine access page: a workspace's service clients (client
//! credentials), which owners and admins create, list and revoke, and the
//! identity providers it trusts for identity assertion grants, which owners
//! add and remove (admins see them).

use super::*;
use crate::oauth::service_clients::{self, ClientKeys, NewService};
use crate::oauth::trust;

struct ServiceLine {
    authorization_id: String,
    name: String,
    client_id: String,
    permissions: Vec<String>,
    created: String,
    auth: &'static str,
    status: &'static str,
}

struct TrustLine {
    id: String,
    issuer: String,
    jwks_uri: String,
    added: String,
}

#[derive(Template)]
#[template(path = "settings_machine.html")]
struct MachineTemplate<'a> {
    frame: Frame<'a>,
    is_owner: bool,
    services: Vec<ServiceLine>,
    trusts: Vec<TrustLine>,
    scopes: Vec<(&'static str, &'static str)>,
    /// A service just made: its client id and secret, shown once.
    created: Option<(String, String)>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

framed!(MachineTemplate);

const NEXT: &str = "/settings/machine-access";

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(NEXT, web::get().to(machine_page))
        .route(
            "/settings/machine-access/services",
            web::post().to(create_service),
        )
        .route(
            "/settings/machine-access/services/{id}/revoke",
            web::post().to(revoke_service),
        )
        .route("/settings/machine-access/trust", web::post().to(add_trust))
        .route(
            "/settings/machine-access/trust/{id}/remove",
            web::post().to(remove_trust),
        );
}

/// What the page shows besides its lists.
#[derive(Default)]
struct Shown<'a> {
    created: Option<(String, String)>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

fn render(conn: &mut DbConn, ctx: &Context, shown: Shown) -> Result<Page, Error> {
    let (services, trusts) = if ctx.role.can_manage() {
        (
            service_clients::list(conn, &ctx.current.id)?,
            trust::list(conn, &ctx.current.id)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let services = services
        .into_iter()
        .map(|(c, a)| ServiceLine {
            authorization_id: a.id.clone(),
            permissions: super::apps::permission_words(&a.scopes),
            created: day(Some(a.created_at), ""),
            auth: if c.token_endpoint_auth_method == "private_key_jwt" {
                "private_key_jwt"
            } else {
                "client secret"
            },
            status: a.status(),
            name: c.name,
            client_id: c.id,
        })
        .collect();
    let trusts = trusts
        .into_iter()
        .map(|t| TrustLine {
            added: day(Some(t.created_at), ""),
            id: t.id,
            issuer: t.issuer,
            jwks_uri: t.jwks_uri,
        })
        .collect();
    let status = match shown.error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => status_for(ctx.role),
    };
    let page = MachineTemplate {
        frame: Frame::of(ctx, "machine"),
        is_owner: ctx.role == Role::Owner,
        services,
        trusts,
        scopes: scopes::SCOPES
            .iter()
            .map(|s| (s.name, s.description))
            .collect(),
        created: shown.created,
        notice: shown.notice.and_then(machine_notice),
        error: shown.error,
    };
    Ok(Page::render(status, &page))
}

fn machine_notice(code: &str) -> Option<&'static str> {
    match code {
        "service_revoked" => Some("Service revoked. Its tokens no longer work."),
        "trust_added" => Some("Identity provider trusted."),
        "trust_removed" => {
            Some("Identity provider removed. Its assertions are refused from now on.")
        }
        _ => None,
    }
}

async fn machine_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |_, conn, ctx, q: &KeysQuery| {
        render(
            conn,
            ctx,
            Shown {
                notice: q.notice.as_deref(),
                ..Shown::default()
            },
        )
    })
    .await
}

/// The result of a change: back to the page with `notice`, or the page with
/// the reason a change was refused.
fn changed<T>(
    conn: &mut DbConn,
    ctx: &Context,
    done: Result<T, Error>,
    notice: &str,
) -> Result<Page, Stop> {
    match done {
        Ok(_) => Ok(Page::SeeOther(format!(
            "{NEXT}?workspace={}&notice={notice}",
            ctx.current.id
        ))),
        Err(e) => {
            let words = refusal_words(e)?;
            Ok(render(
                conn,
                ctx,
                Shown {
                    error: Some(&words),
                    ..Shown::default()
                },
            )?)
        }
    }
}

async fn create_service(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |_, conn, post| {
        let ctx = manager_of_posted(conn, post, "manage its services", NEXT)?;
        let chosen: Vec<String> = post
            .form
            .all("scope")
            .into_iter()
            .map(str::to_string)
            .collect();
        let name = field(&post.form, "name");
        let new = NewService {
            workspace_id: &ctx.current.id,
            name: &name,
            scopes: &chosen,
            keys: ClientKeys::Secret,
        };
        match service_clients::create(conn, &new, by(&ctx, post)) {
            Ok((made, _)) => {
                let created = (made.client.id, made.secret.unwrap_or_default());
                Ok(render(
                    conn,
                    &ctx,
                    Shown {
                        created: Some(created),
                        ..Shown::default()
                    },
                )?)
            }
            Err(e) => changed::<()>(conn, &ctx, Err(e), ""),
        }
    })
    .await
}

async fn revoke_service(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    let id = path.into_inner();
    on_post(svc, post, move |svc, conn, post| {
        let ctx = manager_of_posted(conn, post, "manage its services", NEXT)?;
        let found = authorizations::find(conn, &id)
            .ok()
            .filter(|a| a.workspace_id == ctx.current.id);
        let Some(a) = found else {
            return Err(Stop::refused(StatusCode::NOT_FOUND, "No such service."));
        };
        let cause = authorizations::Cause::Person(by(&ctx, post));
        let done = authorizations::revoke(conn, &svc.credentials.cache, &a.id, cause);
        changed(conn, &ctx, done, "service_revoked")
    })
    .await
}

/// Owners only change which identity providers the workspace trusts.
fn owner_of(conn: &mut DbConn, post: &FormPost) -> Result<Box<Context>, Stop> {
    let ctx = manager_of_posted(conn, post, "manage its services", NEXT)?;
    if ctx.role != Role::Owner {
        return Err(Stop::refused(
            StatusCode::FORBIDDEN,
            "Only owners of the workspace can change the identity providers it trusts.",
        ));
    }
    Ok(ctx)
}

async fn add_trust(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |_, conn, post| {
        let ctx = owner_of(conn, post)?;
        let (issuer, jwks_uri) = (field(&post.form, "issuer"), field(&post.form, "jwks_uri"));
        let done = trust::add(conn, &ctx.current.id, &issuer, &jwks_uri, by(&ctx, post));
        changed(conn, &ctx, done, "trust_added")
    })
    .await
}

async fn remove_trust(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    let id = path.into_inner();
    on_post(svc, post, move |_, conn, post| {
        let ctx = owner_of(conn, post)?;
        let ours = trust::find(conn, &id).is_ok_and(|t| t.workspace_id == ctx.current.id);
        if !ours {
            return Err(Stop::refused(
                StatusCode::NOT_FOUND,
                "No such identity provider.",
            ));
        }
        let done = trust::remove(conn, &id, by(&ctx, post));
        changed(conn, &ctx, done, "trust_removed")
    })
    .await
}
