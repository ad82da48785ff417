//! The authorized apps page and the two-step revoke.

use super::*;

struct AppLine {
    id: String,
    app_name: String,
    permissions: Vec<String>,
    authorized_by: String,
    authorized_at: String,
    last_used: String,
    chart: String,
    status: &'static str,
    /// For apps nobody reviewed: how they were registered, and where their
    /// codes go.
    unreviewed: Option<String>,
    code_goes_to: String,
    /// How it was authorized, when not through the consent page: a service
    /// (client credentials), or through an identity provider.
    how: Option<String>,
}

#[derive(Template)]
#[template(path = "settings_apps.html")]
struct AppsTemplate<'a> {
    frame: Frame<'a>,
    apps: Vec<AppLine>,
    notice: Option<&'a str>,
}

framed!(AppsTemplate);

pub fn permission_words(stored: &str) -> Vec<String> {
    scopes::split(stored)
        .iter()
        .map(|s| {
            scopes::info(s)
                .map(|i| i.description.to_string())
                .unwrap_or_else(|| s.clone())
        })
        .collect()
}

const NEXT: &str = "/settings/authorized-apps";

/// Where an app's codes go, in words: each redirect target once.
fn code_goes_to(client: &crate::oauth::clients::Client) -> String {
    let mut all: Vec<String> = Vec::new();
    for d in client
        .redirect_uri_list()
        .iter()
        .map(|u| crate::oauth::clients::code_destination(u))
    {
        if !all.contains(&d) {
            all.push(d);
        }
    }
    all.join(", ")
}

/// How an authorization was made, when not through the consent page.
fn how_authorized(
    row: &authorizations::AppRow,
    details: &std::collections::HashMap<String, String>,
) -> Option<String> {
    if row.client.kind() == crate::oauth::clients::ClientKind::Service {
        return Some("Service of this workspace (client credentials)".into());
    }
    details
        .get(&row.authorization.id)
        .filter(|d| d.starts_with("via "))
        .cloned()
}

/// The page for `ctx`: the workspace's authorizations with their usage.
fn render_apps(conn: &mut DbConn, ctx: &Context, notice: Option<&str>) -> Result<Page, Error> {
    let rows = if ctx.role.can_manage() {
        authorizations::list_for_workspace(conn, &ctx.current.id)?
    } else {
        Vec::new()
    };
    let ids: Vec<String> = rows.iter().map(|r| r.authorization.id.clone()).collect();
    let vias = crate::accounts::audit::details_of(conn, &ctx.current.id, "app.authorized", &ids)?;
    let usage = load_usage(conn, crate::credentials::usage::AUTHORIZATION, ids)?;
    let apps = rows
        .into_iter()
        .map(|r| AppLine {
            id: r.authorization.id.clone(),
            permissions: permission_words(&r.authorization.scopes),
            authorized_at: when_html(Some(r.authorization.created_at), ""),
            last_used: when_html(r.authorization.last_used_at, "never"),
            chart: chart(&usage, &r.authorization.id),
            status: r.authorization.status(),
            unreviewed: crate::http::pages::unreviewed_note(&r.client),
            code_goes_to: code_goes_to(&r.client),
            how: how_authorized(&r, &vias),
            app_name: r.app_name,
            authorized_by: r.authorized_by,
        })
        .collect();
    let page = AppsTemplate {
        frame: Frame::of(ctx, "apps"),
        apps,
        notice: notice_text(notice),
    };
    Ok(Page::render(status_for(ctx.role), &page))
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings/authorized-apps", web::get().to(apps_page))
        .route(
            "/settings/authorized-apps/{id}/revoke",
            web::post().to(revoke_app),
        );
}

async fn apps_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |_, conn, ctx, q: &KeysQuery| {
        render_apps(conn, ctx, q.notice.as_deref())
    })
    .await
}

#[derive(Template)]
#[template(path = "confirm_revoke_app.html")]
struct ConfirmTemplate<'a> {
    id: &'a str,
    app_name: &'a str,
    workspace_name: &'a str,
    workspace_id: &'a str,
    csrf_token: &'a str,
}

/// The first step of a revoke: what revoking does, and a confirm button.
fn confirm_revoke(
    conn: &mut DbConn,
    ctx: &Context,
    authorization: &authorizations::Authorization,
) -> Result<Page, Error> {
    let app = crate::oauth::clients::find(conn, &authorization.client_id)?
        .map(|c| c.name)
        .unwrap_or_default();
    let page = ConfirmTemplate {
        id: &authorization.id,
        app_name: &app,
        workspace_name: &ctx.current.name,
        workspace_id: &ctx.current.id,
        csrf_token: &ctx.session.csrf_token,
    };
    Ok(Page::render(StatusCode::OK, &page))
}

const REVOKE: Guard = Guard {
    what: "revoke its apps",
    missing: "No such authorization.",
    next: NEXT,
};

/// Two steps: the first post shows what revoking does; the second, with
/// `confirm=yes`, revokes (every token of the app stops at once).
async fn revoke_app(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    let id = path.into_inner();
    on_post(svc, post, move |svc, conn, post| {
        let found = authorizations::find(conn, &id);
        let (ctx, authorization) = managed(conn, post, &REVOKE, found, |a| &a.workspace_id)?;
        if !confirmed(&post.form) {
            return Ok(confirm_revoke(conn, &ctx, &authorization)?);
        }
        let cause = authorizations::Cause::Person(by(&ctx, post));
        authorizations::revoke(conn, &svc.credentials.cache, &id, cause)?;
        let ws = &authorization.workspace_id;
        Ok(Page::SeeOther(format!(
            "{NEXT}?workspace={ws}&notice=app_revoked"
        )))
    })
    .await
}
