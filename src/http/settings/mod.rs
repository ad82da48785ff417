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
mod auth_key_page;
mod developer_apps;
mod domains;
mod form;
mod key_page;
mod keys;
mod log;
mod machine;
mod mailboxes;
mod team;
mod view;

use form::{
    by, check_csrf, confirmed, field, managed, manager_of_posted, on_post, refusal_words,
    refused_conflict, FormPost, Guard, Stop,
};
use view::{chart, day, framed, last_day, load_usage, when_html, Frame};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/settings",
        web::get().to(|| async { redirect(StatusCode::FOUND, "/settings/api-keys") }),
    );
    // The product's own name for the API keys page.
    cfg.route("/settings/api-access", web::get().to(api_access_alias));
    keys::routes(cfg);
    key_page::routes(cfg);
    auth_key_page::routes(cfg);
    mailboxes::routes(cfg);
    domains::routes(cfg);
    apps::routes(cfg);
    log::routes(cfg);
    team::routes(cfg);
    machine::routes(cfg);
    developer_apps::routes(cfg);
    // Every URL nothing else answers: a page that says so, in the frame.
    cfg.default_service(web::to(not_found));
}

/// `/settings/api-access`, with its query, to the API keys page.
async fn api_access_alias(req: HttpRequest) -> HttpResponse {
    let to = match req.query_string() {
        "" => "/settings/api-keys".to_string(),
        q => format!("/settings/api-keys?{q}"),
    };
    redirect(StatusCode::FOUND, &to)
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundTemplate<'a> {
    path: &'a str,
}

/// The 404 page of any unknown URL.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let path: String = req.path().chars().take(200).collect();
    match (NotFoundTemplate { path: &path }).render() {
        Ok(body) => html(StatusCode::NOT_FOUND, body),
        Err(_) => crate::http::render_failed(),
    }
}

#[derive(Template)]
#[template(path = "no_workspace.html")]
struct NoWorkspaceTemplate;

/// The signed-in person, their workspaces, and the one selected.
struct Context {
    session: Session,
    user: User,
    workspaces: Vec<Workspace>,
    current: Workspace,
    role: Role,
    /// The person's identity at the product's identity provider.
    identity: Option<view::LinkedIdentity>,
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
    let identity = view::LinkedIdentity::load(conn, &user.id)?;
    Ok(Access_::Ok(Box::new(Context {
        session,
        user,
        workspaces,
        current,
        role,
        identity,
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
        "key_updated" => Some("API key updated. Its secret is unchanged."),
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

/// The query of a workspace's settings page: at least which workspace it
/// shows.
trait WorkspaceQuery: serde::de::DeserializeOwned + Default + Send + 'static {
    fn workspace(&self) -> Option<&str>;
}

impl WorkspaceQuery for KeysQuery {
    fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }
}

/// A page's query; a malformed one reads as empty.
fn query<Q: serde::de::DeserializeOwned + Default>(req: &HttpRequest) -> Q {
    web::Query::<Q>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// A GET of a workspace's settings page: the signed-in person, their
/// workspaces and the one the query picks, then `render`. Someone not signed
/// in goes to the login, back to `next` after it.
async fn show<Q, F>(svc: Svc, req: HttpRequest, next: &'static str, render: F) -> HttpResponse
where
    Q: WorkspaceQuery,
    F: FnOnce(&Services, &mut DbConn, &Context, &Q) -> Result<Page, Error> + Send + 'static,
{
    let q: Q = query(&req);
    let cookie = session_cookie(&req);
    respond(
        crate::http::with_conn(&svc, move |svc, conn| {
            match context(conn, cookie, q.workspace())? {
                Access_::Ok(ctx) => render(svc, conn, &ctx, &q),
                other => Ok(Page::NoAccess(other, next)),
            }
        })
        .await,
    )
}

fn no_access(a: Access_, next: &str) -> HttpResponse {
    match a {
        Access_::Login => login_redirect(next),
        _ => match NoWorkspaceTemplate.render() {
            Ok(body) => html(StatusCode::FORBIDDEN, body),
            Err(_) => crate::http::render_failed(),
        },
    }
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

/// The status of a page with a form for the person's role: 403 for members,
/// and for owners and admins 400 when it shows a refused form, else 200.
fn form_status(role: Role, refused: bool) -> StatusCode {
    match (role.can_manage(), refused) {
        (false, _) => StatusCode::FORBIDDEN,
        (true, true) => StatusCode::BAD_REQUEST,
        (true, false) => StatusCode::OK,
    }
}
