//! The settings pages of a workspace: API keys, mailboxes, authorized apps,
//! the team and the security log, for its owners and admins; and each
//! person's own developer apps.

use super::pages::{error_page, internal_error, session_cookie};
use super::{client_address, html, read_body, redirect, Svc};
use crate::accounts::sessions::Session;
use crate::accounts::{self, Role, User, Workspace};
use crate::apikeys::{self, Access, ListFilter};
use crate::credentials::scopes;
use crate::db::{self, DbConn};
use crate::error::Error;
use crate::node::state::Services;
use crate::oauth::{authorizations, Params};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

mod apps;
mod developer_apps;
mod keys;
mod log;
mod mailboxes;
mod team;
mod view;

use view::{framed, Frame};

use apps::{apps_page, revoke_app};
use developer_apps::{
    create_developer_app, delete_developer_app, developer_apps_page, rotate_developer_app,
};
use keys::{generate_key, keys_page, revoke_key, rotate_key};
use log::log_page;
use mailboxes::{auth_key_action, create_auth_key, create_mailbox, delete_mailbox, mailboxes_page};
use team::{add_member, change_role, remove_member, team_page};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/settings",
        web::get().to(|| async { redirect(StatusCode::FOUND, "/settings/api-keys") }),
    )
    .service(
        web::resource("/settings/api-keys")
            .route(web::get().to(keys_page))
            .route(web::post().to(generate_key)),
    )
    .route("/settings/api-keys/{id}/rotate", web::post().to(rotate_key))
    .route("/settings/api-keys/{id}/revoke", web::post().to(revoke_key))
    .service(
        web::resource("/settings/mailboxes")
            .route(web::get().to(mailboxes_page))
            .route(web::post().to(create_mailbox)),
    )
    .route(
        "/settings/mailboxes/{id}/delete",
        web::post().to(delete_mailbox),
    )
    .route(
        "/settings/mailboxes/{id}/auth-keys",
        web::post().to(create_auth_key),
    )
    .route(
        "/settings/mailbox-auth-keys/{id}/{action}",
        web::post().to(auth_key_action),
    )
    .route("/settings/authorized-apps", web::get().to(apps_page))
    .route("/settings/security-log", web::get().to(log_page))
    .service(
        web::resource("/settings/team")
            .route(web::get().to(team_page))
            .route(web::post().to(add_member)),
    )
    .route("/settings/team/{user}/role", web::post().to(change_role))
    .route(
        "/settings/team/{user}/remove",
        web::post().to(remove_member),
    )
    .route(
        "/settings/authorized-apps/{id}/revoke",
        web::post().to(revoke_app),
    )
    .service(
        web::resource("/settings/developer-apps")
            .route(web::get().to(developer_apps_page))
            .route(web::post().to(create_developer_app)),
    )
    .route(
        "/settings/developer-apps/{id}/rotate",
        web::post().to(rotate_developer_app),
    )
    .route(
        "/settings/developer-apps/{id}/delete",
        web::post().to(delete_developer_app),
    );
}

fn day(t: Option<i64>, none: &str) -> String {
    match t.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        Some(d) => d.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => none.to_string(),
    }
}

/// The last day a key works (its expiry is 24:00 UTC that day).
fn last_day(expires_at: Option<i64>) -> String {
    match expires_at.and_then(|t| chrono::DateTime::from_timestamp(t - 1, 0)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "never".to_string(),
    }
}

/// The signed-in person, their workspaces, and the one selected.
struct Context {
    session: Session,
    user: User,
    workspaces: Vec<Workspace>,
    current: Workspace,
    role: Role,
}

enum Access_ {
    Ok(Box<Context>),
    Login,
    NoWorkspace,
}

fn context(
    conn: &mut DbConn,
    cookie: Option<String>,
    wanted: Option<&str>,
) -> Result<Access_, Error> {
    let Some(cookie) = cookie else {
        return Ok(Access_::Login);
    };
    let Some((session, user)) = crate::accounts::sessions::resolve(conn, &cookie)? else {
        return Ok(Access_::Login);
    };
    let all = accounts::workspaces_of(conn, &user.id)?;
    let chosen = wanted
        .and_then(|id| all.iter().find(|(w, _)| w.id == id))
        .or_else(|| all.iter().find(|(_, r)| r.can_manage()))
        .or(all.first())
        .cloned();
    let Some((current, role)) = chosen else {
        return Ok(Access_::NoWorkspace);
    };
    let workspaces = all.into_iter().map(|(w, _)| w).collect();
    Ok(Access_::Ok(Box::new(Context {
        session,
        user,
        workspaces,
        current,
        role,
    })))
}

fn login_redirect(next: &str) -> HttpResponse {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    redirect(StatusCode::FOUND, &format!("/login?{q}"))
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "key_created" => Some("API key generated. Store it safely: it will not be shown again."),
        "key_rotated" => Some("API key rotated. The old secret no longer works."),
        "key_rotated_grace" => {
            Some("API key rotated. The old secret keeps working until the end of its grace period.")
        }
        "key_revoked" => Some("API key revoked. It can no longer be used."),
        "app_revoked" => Some("App access revoked. Its tokens no longer work."),
        "member_added" => Some("Member added."),
        "role_changed" => Some("Role changed."),
        "member_removed" => {
            Some("Member removed. The apps they authorized in this workspace were revoked.")
        }
        _ => None,
    }
}

#[derive(serde::Deserialize, Default)]
struct KeysQuery {
    workspace: Option<String>,
    q: Option<String>,
    status: Option<String>,
    notice: Option<String>,
}
const CHART_DAYS: i64 = 30;

/// The 30-day usage chart of one subject from rows loaded for many.
fn chart(usage: &[(String, i64, i64)], id: &str) -> String {
    let points: Vec<(i64, i64)> = usage
        .iter()
        .filter(|u| u.0 == id)
        .map(|u| (u.1, u.2))
        .collect();
    crate::credentials::usage::sparkline(
        &points,
        crate::credentials::usage::day_of(db::now()),
        CHART_DAYS,
    )
}

fn load_usage(
    conn: &mut DbConn,
    kind: &str,
    ids: Vec<String>,
) -> Result<Vec<(String, i64, i64)>, Error> {
    let since = crate::credentials::usage::day_of(db::now()) - CHART_DAYS + 1;
    crate::credentials::usage::series_many(conn, kind, &ids, since)
}

fn no_access(a: Access_, next: &str) -> HttpResponse {
    match a {
        Access_::Login => login_redirect(next),
        _ => error_page(
            StatusCode::FORBIDDEN,
            "You are not a member of any workspace.",
        ),
    }
}

/// A form POST of the settings pages: the session, and its CSRF token checked.
struct FormPost {
    form: Params,
    cookie: Option<String>,
    address: String,
}

async fn form_post(
    svc: &Services,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<FormPost, HttpResponse> {
    let body = read_body(payload)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    Ok(FormPost {
        form: Params::parse(&body),
        cookie: session_cookie(req),
        address: client_address(svc, req),
    })
}

fn field(p: &Params, name: &str) -> String {
    p.get(name).ok().flatten().unwrap_or("").to_string()
}

fn csrf_ok(ctx: &Context, form: &Params) -> bool {
    crate::crypto::ct_eq(&ctx.session.csrf_token, &field(form, "csrf_token"))
}

/// Why a form post on a workspace's settings was refused.
enum Refusal {
    NoAccess(Access_),
    Refused(StatusCode, String),
}

/// The one guard of every settings action: a signed-in person with a valid
/// CSRF token who is an owner or admin of `workspace_id` (the workspace of
/// the object acted on; `None` when no such object exists). `what` completes
/// "Only owners and admins of the workspace can …"; `missing` is the 404's
/// message.
///
/// An object of a workspace this person is not a member of is answered
/// exactly as an unknown id, after the same session and CSRF checks: a 403
/// would confirm that the id exists elsewhere (OWASP Authorization Cheat
/// Sheet, insecure direct object references).
fn manager_of(
    conn: &mut DbConn,
    post: &FormPost,
    workspace_id: Option<&str>,
    what: &str,
    missing: &str,
) -> Result<Result<Box<Context>, Refusal>, Error> {
    let ctx = match context(conn, post.cookie.clone(), workspace_id)? {
        Access_::Ok(ctx) => ctx,
        other => return Ok(Err(Refusal::NoAccess(other))),
    };
    if !csrf_ok(&ctx, &post.form) {
        return Ok(Err(Refusal::Refused(
            StatusCode::FORBIDDEN,
            "The form could not be verified (CSRF). Reload the page and try again.".into(),
        )));
    }
    let Some(workspace_id) = workspace_id.filter(|id| ctx.workspaces.iter().any(|w| w.id == *id))
    else {
        return Ok(Err(Refusal::Refused(StatusCode::NOT_FOUND, missing.into())));
    };
    if ctx.current.id != workspace_id || !ctx.role.can_manage() {
        return Ok(Err(Refusal::Refused(
            StatusCode::FORBIDDEN,
            format!("Only owners and admins of the workspace can {what}."),
        )));
    }
    Ok(Ok(ctx))
}

/// What a settings handler answers, decided off the async workers; `respond`
/// maps it to HTTP in one place.
enum Page {
    /// A rendered page and its status.
    Html(StatusCode, String),
    /// After a successful form post (RFC 9110 §15.4.4).
    SeeOther(String),
    Refused(StatusCode, String),
    /// Not signed in, or in no workspace; `next` is where login returns.
    NoAccess(Access_, &'static str),
    /// A template failed: a 500, never an empty page.
    RenderFailed,
}

impl Page {
    fn render(status: StatusCode, t: &impl Template) -> Page {
        match t.render() {
            Ok(body) => Page::Html(status, body),
            Err(_) => Page::RenderFailed,
        }
    }

    fn refusal(r: Refusal, next: &'static str) -> Page {
        match r {
            Refusal::NoAccess(a) => Page::NoAccess(a, next),
            Refusal::Refused(status, msg) => Page::Refused(status, msg),
        }
    }
}

fn respond(result: Result<Page, Error>) -> HttpResponse {
    match result {
        Ok(Page::Html(status, body)) => html(status, body),
        Ok(Page::SeeOther(url)) => redirect(StatusCode::SEE_OTHER, &url),
        Ok(Page::Refused(status, msg)) => error_page(status, &msg),
        Ok(Page::NoAccess(a, next)) => no_access(a, next),
        Ok(Page::RenderFailed) => crate::http::render_failed(),
        Err(e) => internal_error(&e),
    }
}

/// The status of a page for the person's role: 200 for owners and admins, 403
/// (with the page's own refusal in it) for members.
fn status_for(role: Role) -> StatusCode {
    if role.can_manage() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}
