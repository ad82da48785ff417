//! The settings pages: API keys and authorized apps of a workspace, for its
//! owners and admins.

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
    .route("/settings/authorized-apps", web::get().to(apps_page))
    .route("/settings/security-log", web::get().to(log_page))
    .route(
        "/settings/authorized-apps/{id}/revoke",
        web::post().to(revoke_app),
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

/// A settings page: 200 for owners and admins, 403 (with the page's refusal)
/// for members.
fn role_page(ctx: &Context, body: String) -> HttpResponse {
    let status = if ctx.role.can_manage() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    html(status, body)
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
        "key_revoked" => Some("API key revoked. It can no longer be used."),
        "app_revoked" => Some("App access revoked. Its tokens no longer work."),
        _ => None,
    }
}

struct KeyLine {
    id: String,
    name: String,
    prefix: String,
    access: &'static str,
    creator: String,
    created: String,
    usage_count: i64,
    chart: String,
    last_used: String,
    expires: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "settings_keys.html")]
struct KeysTemplate<'a> {
    tab: &'a str,
    workspaces: &'a [Workspace],
    current: &'a Workspace,
    user_email: &'a str,
    csrf_token: &'a str,
    can_manage: bool,
    api_access: bool,
    keys: Vec<KeyLine>,
    query: &'a str,
    status: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    form_name: &'a str,
}

#[derive(serde::Deserialize, Default)]
struct KeysQuery {
    workspace: Option<String>,
    q: Option<String>,
    status: Option<String>,
    notice: Option<String>,
}

struct KeysView {
    ctx: Context,
    rows: Vec<apikeys::KeyRow>,
    usage: Vec<(String, i64, i64)>,
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

fn render_keys(
    view: &KeysView,
    q: &KeysQuery,
    error: Option<&str>,
    form_name: &str,
) -> HttpResponse {
    let ctx = &view.ctx;
    let now = db::now();
    let keys = view
        .rows
        .iter()
        .map(|r| KeyLine {
            id: r.key.id.clone(),
            name: r.key.name.clone(),
            prefix: r.key.prefix(),
            access: r.key.access_level().label(),
            creator: r.creator.clone(),
            created: day(Some(r.key.created_at), ""),
            usage_count: r.key.usage_count,
            chart: chart(&view.usage, &r.key.id),
            last_used: day(r.key.last_used_at, "never"),
            expires: last_day(r.key.expires_at),
            status: r.key.status_at(now).as_str(),
        })
        .collect();
    let Ok(body) = KeysTemplate {
        tab: "keys",
        workspaces: &ctx.workspaces,
        current: &ctx.current,
        user_email: &ctx.user.email,
        csrf_token: &ctx.session.csrf_token,
        can_manage: ctx.role.can_manage(),
        api_access: accounts::plan_includes_api(&ctx.current.plan),
        keys,
        query: q.q.as_deref().unwrap_or(""),
        status: q.status.as_deref().unwrap_or(""),
        notice: notice_text(q.notice.as_deref()),
        error,
        form_name,
    }
    .render() else {
        return crate::http::render_failed();
    };
    let status = if ctx.role.can_manage() {
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    } else {
        StatusCode::FORBIDDEN
    };
    html(status, body)
}

fn load_keys(
    conn: &mut DbConn,
    cookie: Option<String>,
    q: &KeysQuery,
) -> Result<Result<KeysView, Access_>, Error> {
    match context(conn, cookie, q.workspace.as_deref())? {
        Access_::Ok(ctx) => {
            let rows = if ctx.role.can_manage() {
                let filter = ListFilter {
                    query: q.q.clone(),
                    status: q.status.clone(),
                };
                apikeys::list(conn, &ctx.current.id, &filter)?
            } else {
                Vec::new()
            };
            let usage = load_usage(
                conn,
                crate::credentials::usage::API_KEY,
                rows.iter().map(|r| r.key.id.clone()).collect(),
            )?;
            Ok(Ok(KeysView {
                ctx: *ctx,
                rows,
                usage,
            }))
        }
        other => Ok(Err(other)),
    }
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

async fn keys_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let q2 = KeysQuery {
        workspace: q.workspace.clone(),
        q: q.q.clone(),
        status: q.status.clone(),
        notice: None,
    };
    match super::with_conn(&svc, move |_, conn| load_keys(conn, cookie, &q2)).await {
        Ok(Ok(view)) => render_keys(&view, &q, None, ""),
        Ok(Err(a)) => no_access(a, "/settings/api-keys"),
        Err(e) => internal_error(&e),
    }
}

/// A form POST of the settings pages: the session, and its CSRF token checked.
struct FormPost {
    form: Params,
    cookie: Option<String>,
    address: String,
}

async fn form_post(req: &HttpRequest, payload: web::Payload) -> Result<FormPost, HttpResponse> {
    let body = read_body(payload)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    Ok(FormPost {
        form: Params::parse(&body),
        cookie: session_cookie(req),
        address: client_address(req),
    })
}

fn field(p: &Params, name: &str) -> String {
    p.get(name).ok().flatten().unwrap_or("").to_string()
}

fn csrf_ok(ctx: &Context, form: &Params) -> bool {
    crate::crypto::ct_eq(&ctx.session.csrf_token, &field(form, "csrf_token"))
}

#[derive(Template)]
#[template(path = "key_secret.html")]
struct SecretTemplate<'a> {
    name: &'a str,
    access: &'a str,
    expires: String,
    secret: &'a str,
    workspace_id: &'a str,
    notice: &'a str,
    rotated: bool,
}

fn show_secret(issued: &apikeys::IssuedKey, notice: &str) -> HttpResponse {
    let Ok(body) = SecretTemplate {
        name: &issued.key.name,
        access: issued.key.access_level().label(),
        expires: last_day(issued.key.expires_at),
        secret: &issued.secret,
        workspace_id: &issued.key.workspace_id,
        notice,
        rotated: notice == "key_rotated",
    }
    .render() else {
        return crate::http::render_failed();
    };
    html(StatusCode::OK, body)
}

enum Outcome {
    Secret(apikeys::IssuedKey, &'static str),
    Back(String),
    Form(KeysView, KeysQuery, String, String),
    Refused(StatusCode, String),
    NoAccess(Access_),
}

fn keys_url(workspace_id: &str, notice: &str) -> String {
    format!("/settings/api-keys?workspace={workspace_id}&notice={notice}")
}

async fn generate_key(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let post = match form_post(&req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = super::with_conn(&svc, move |_, conn| {
        let ws = field(&post.form, "workspace_id");
        let ctx = match manager_of(conn, &post, &ws, "generate API keys")? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        let name = field(&post.form, "name");
        let attempt = Access::parse(&field(&post.form, "access")).and_then(|access| {
            let expires = apikeys::parse_expiry(Some(&field(&post.form, "expires")))?;
            apikeys::create(
                conn,
                &ws,
                &name,
                access,
                expires,
                &ctx.user.id,
                Some(&post.address),
            )
        });
        match attempt {
            Ok(issued) => Ok(Outcome::Secret(issued, "key_created")),
            Err(Error::Db(e)) => Err(Error::Db(e)),
            Err(Error::Pool(e)) => Err(Error::Pool(e)),
            Err(e) => {
                let q = KeysQuery {
                    workspace: Some(ws.clone()),
                    ..Default::default()
                };
                let view = load_keys(conn, post.cookie.clone(), &q)?;
                match view {
                    Ok(view) => Ok(Outcome::Form(view, q, e.to_string(), name)),
                    Err(a) => Ok(Outcome::NoAccess(a)),
                }
            }
        }
    })
    .await;
    finish(result)
}

fn finish(result: Result<Outcome, Error>) -> HttpResponse {
    match result {
        Ok(Outcome::Secret(issued, notice)) => show_secret(&issued, notice),
        Ok(Outcome::Back(url)) => redirect(StatusCode::SEE_OTHER, &url),
        Ok(Outcome::Form(view, q, error, name)) => render_keys(&view, &q, Some(&error), &name),
        Ok(Outcome::Refused(status, msg)) => error_page(status, &msg),
        Ok(Outcome::NoAccess(a)) => no_access(a, "/settings/api-keys"),
        Err(e) => internal_error(&e),
    }
}

/// Loads a key for an action by a manager of its workspace.
fn managed_key(
    conn: &mut DbConn,
    post: &FormPost,
    id: &str,
) -> Result<Result<(Box<Context>, apikeys::ApiKey), Outcome>, Error> {
    let key = match apikeys::find(conn, id) {
        Ok(k) => k,
        Err(Error::NotFound(_)) => {
            return Ok(Err(Outcome::Refused(
                StatusCode::NOT_FOUND,
                "No such API key.".into(),
            )))
        }
        Err(e) => return Err(e),
    };
    Ok(
        manager_of(conn, post, &key.workspace_id, "manage its API keys")?
            .map(|ctx| (ctx, key))
            .map_err(Outcome::from),
    )
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoAccess(a) => Outcome::NoAccess(a),
            Refusal::Refused(status, msg) => Outcome::Refused(status, msg),
        }
    }
}

impl From<Refusal> for AppOutcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoAccess(a) => AppOutcome::NoAccess(a),
            Refusal::Refused(status, msg) => AppOutcome::Refused(status, msg),
        }
    }
}

/// Why a form post on a workspace's settings was refused.
enum Refusal {
    NoAccess(Access_),
    Refused(StatusCode, String),
}

/// The one guard of every settings action: a signed-in person with a valid
/// CSRF token who is an owner or admin of `workspace_id`. `what` completes
/// "Only owners and admins of the workspace can …".
fn manager_of(
    conn: &mut DbConn,
    post: &FormPost,
    workspace_id: &str,
    what: &str,
) -> Result<Result<Box<Context>, Refusal>, Error> {
    let ctx = match context(conn, post.cookie.clone(), Some(workspace_id))? {
        Access_::Ok(ctx) => ctx,
        other => return Ok(Err(Refusal::NoAccess(other))),
    };
    if !csrf_ok(&ctx, &post.form) {
        return Ok(Err(Refusal::Refused(
            StatusCode::FORBIDDEN,
            "The form could not be verified (CSRF). Reload the page and try again.".into(),
        )));
    }
    if ctx.current.id != workspace_id || !ctx.role.can_manage() {
        return Ok(Err(Refusal::Refused(
            StatusCode::FORBIDDEN,
            format!("Only owners and admins of the workspace can {what}."),
        )));
    }
    Ok(Ok(ctx))
}

fn conflict_to_page(r: Result<Outcome, Error>) -> Result<Outcome, Error> {
    match r {
        Err(Error::Conflict(m)) => Ok(Outcome::Refused(StatusCode::CONFLICT, m)),
        other => other,
    }
}

/// A POST on one API key by a manager of its workspace: the session, CSRF token
/// and role are checked before `act` runs.
async fn key_action<F>(
    svc: Svc,
    req: HttpRequest,
    id: String,
    payload: web::Payload,
    act: F,
) -> HttpResponse
where
    F: FnOnce(
            &Services,
            &mut DbConn,
            &FormPost,
            Box<Context>,
            apikeys::ApiKey,
        ) -> Result<Outcome, Error>
        + Send
        + 'static,
{
    let post = match form_post(&req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = super::with_conn(&svc, move |svc: &Services, conn| {
        let (ctx, key) = match managed_key(conn, &post, &id)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        act(svc, conn, &post, ctx, key)
    })
    .await;
    finish(result)
}

async fn rotate_key(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    key_action(
        svc,
        req,
        path.into_inner(),
        payload,
        |svc, conn, post, ctx, key| {
            conflict_to_page(
                apikeys::rotate(
                    conn,
                    &svc.credentials.cache,
                    &key.id,
                    &ctx.user.id,
                    Some(&post.address),
                )
                .map(|issued| Outcome::Secret(issued, "key_rotated")),
            )
        },
    )
    .await
}

async fn revoke_key(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    key_action(
        svc,
        req,
        path.into_inner(),
        payload,
        |svc, conn, post, ctx, key| {
            if field(&post.form, "confirm_name").trim() != key.name {
                let q = KeysQuery {
                    workspace: Some(key.workspace_id.clone()),
                    ..Default::default()
                };
                return match load_keys(conn, post.cookie.clone(), &q)? {
                    Ok(view) => Ok(Outcome::Form(
                        view,
                        q,
                        format!("To revoke, type the key's name exactly: {}", key.name),
                        String::new(),
                    )),
                    Err(a) => Ok(Outcome::NoAccess(a)),
                };
            }
            conflict_to_page(
                apikeys::revoke(
                    conn,
                    &svc.credentials.cache,
                    &key.id,
                    &ctx.user.id,
                    Some(&post.address),
                )
                .map(|_| Outcome::Back(keys_url(&key.workspace_id, "key_revoked"))),
            )
        },
    )
    .await
}

struct AppLine {
    id: String,
    app_name: String,
    permissions: Vec<String>,
    authorized_by: String,
    authorized_at: String,
    last_used: String,
    chart: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "settings_apps.html")]
struct AppsTemplate<'a> {
    tab: &'a str,
    workspaces: &'a [Workspace],
    current: &'a Workspace,
    user_email: &'a str,
    csrf_token: &'a str,
    can_manage: bool,
    apps: Vec<AppLine>,
    notice: Option<&'a str>,
}

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

async fn apps_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let wanted = q.workspace.clone();
    let result = super::with_conn(&svc, move |_, conn| {
        let ctx = match context(conn, cookie, wanted.as_deref())? {
            Access_::Ok(ctx) => ctx,
            other => return Ok(Err(other)),
        };
        let rows = if ctx.role.can_manage() {
            authorizations::list_for_workspace(conn, &ctx.current.id)?
        } else {
            Vec::new()
        };
        let usage = load_usage(
            conn,
            crate::credentials::usage::AUTHORIZATION,
            rows.iter().map(|r| r.authorization.id.clone()).collect(),
        )?;
        Ok(Ok((ctx, rows, usage)))
    })
    .await;
    match result {
        Ok(Ok((ctx, rows, usage))) => {
            let apps = rows
                .into_iter()
                .map(|r| AppLine {
                    id: r.authorization.id.clone(),
                    app_name: r.app_name,
                    permissions: permission_words(&r.authorization.scopes),
                    authorized_by: r.authorized_by,
                    authorized_at: day(Some(r.authorization.created_at), ""),
                    last_used: day(r.authorization.last_used_at, "never"),
                    chart: chart(&usage, &r.authorization.id),
                    status: r.authorization.status(),
                })
                .collect();
            let Ok(body) = AppsTemplate {
                tab: "apps",
                workspaces: &ctx.workspaces,
                current: &ctx.current,
                user_email: &ctx.user.email,
                csrf_token: &ctx.session.csrf_token,
                can_manage: ctx.role.can_manage(),
                apps,
                notice: notice_text(q.notice.as_deref()),
            }
            .render() else {
                return crate::http::render_failed();
            };
            role_page(&ctx, body)
        }
        Ok(Err(a)) => no_access(a, "/settings/authorized-apps"),
        Err(e) => internal_error(&e),
    }
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

enum AppOutcome {
    Confirm(String, String, String, String, String),
    Done(String),
    Refused(StatusCode, String),
    NoAccess(Access_),
}

async fn revoke_app(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let result = super::with_conn(&svc, move |svc: &Services, conn| {
        let authorization = match authorizations::find(conn, &id) {
            Ok(a) => a,
            Err(Error::NotFound(_)) => {
                return Ok(AppOutcome::Refused(
                    StatusCode::NOT_FOUND,
                    "No such authorization.".into(),
                ))
            }
            Err(e) => return Err(e),
        };
        let ctx = match manager_of(conn, &post, &authorization.workspace_id, "revoke its apps")? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        if field(&post.form, "confirm") != "yes" {
            let app = crate::oauth::clients::find(conn, &authorization.client_id)?
                .map(|c| c.name)
                .unwrap_or_default();
            return Ok(AppOutcome::Confirm(
                id.clone(),
                app,
                ctx.current.name.clone(),
                ctx.current.id.clone(),
                ctx.session.csrf_token.clone(),
            ));
        }
        authorizations::revoke(
            conn,
            &svc.credentials.cache,
            &id,
            authorizations::Cause::Person {
                actor: &ctx.user.id,
                address: Some(&post.address),
            },
        )?;
        Ok(AppOutcome::Done(format!(
            "/settings/authorized-apps?workspace={}&notice=app_revoked",
            authorization.workspace_id
        )))
    })
    .await;
    match result {
        Ok(AppOutcome::Confirm(id, app_name, workspace_name, workspace_id, csrf)) => {
            let Ok(body) = ConfirmTemplate {
                id: &id,
                app_name: &app_name,
                workspace_name: &workspace_name,
                workspace_id: &workspace_id,
                csrf_token: &csrf,
            }
            .render() else {
                return crate::http::render_failed();
            };
            html(StatusCode::OK, body)
        }
        Ok(AppOutcome::Done(url)) => redirect(StatusCode::SEE_OTHER, &url),
        Ok(AppOutcome::Refused(status, msg)) => error_page(status, &msg),
        Ok(AppOutcome::NoAccess(a)) => no_access(a, "/settings/authorized-apps"),
        Err(e) => internal_error(&e),
    }
}

struct LogLine {
    when: String,
    action: &'static str,
    subject: String,
    actor: String,
    address: String,
}

#[derive(Template)]
#[template(path = "settings_log.html")]
struct LogTemplate<'a> {
    tab: &'a str,
    workspaces: &'a [Workspace],
    current: &'a Workspace,
    user_email: &'a str,
    csrf_token: &'a str,
    can_manage: bool,
    events: Vec<LogLine>,
}

fn action_words(action: &str) -> &'static str {
    match action {
        "api_key.generated" => "API key generated",
        "api_key.rotated" => "API key rotated",
        "api_key.revoked" => "API key revoked",
        "app.authorized" => "App authorized",
        "app.revoked" => "App revoked",
        "app.revoked_code_replay" => "App revoked: a code was used twice",
        "app.revoked_refresh_reuse" => "App revoked: a used refresh token came back",
        "app.revoked_by_client" => "App revoked by the app itself",
        "access_token.revoked_by_client" => "Access token revoked by the app",
        "member.removed" => "Member removed",
        _ => "Other",
    }
}

async fn log_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let result = super::with_conn(&svc, move |_, conn| {
        let ctx = match context(conn, cookie, q.workspace.as_deref())? {
            Access_::Ok(ctx) => ctx,
            other => return Ok(Err(other)),
        };
        let events = if ctx.role.can_manage() {
            crate::accounts::audit::list(conn, &ctx.current.id, 200)?
        } else {
            Vec::new()
        };
        // Actors are user ids (or "cli"): show addresses people recognise.
        let mut lines = Vec::with_capacity(events.len());
        for e in events {
            let actor = match accounts::find_user(conn, &e.actor) {
                Ok(u) => u.email,
                Err(_) if e.actor == apikeys::CLI_ACTOR => "keygate CLI".to_string(),
                Err(_) => e.actor.clone(),
            };
            lines.push(LogLine {
                when: day(Some(e.created_at), ""),
                action: action_words(&e.action),
                subject: e.subject,
                actor,
                address: e.client_address.unwrap_or_default(),
            });
        }
        Ok(Ok((ctx, lines)))
    })
    .await;
    match result {
        Ok(Ok((ctx, events))) => {
            let Ok(body) = LogTemplate {
                tab: "log",
                workspaces: &ctx.workspaces,
                current: &ctx.current,
                user_email: &ctx.user.email,
                csrf_token: &ctx.session.csrf_token,
                can_manage: ctx.role.can_manage(),
                events,
            }
            .render() else {
                return crate::http::render_failed();
            };
            role_page(&ctx, body)
        }
        Ok(Err(a)) => no_access(a, "/settings/security-log"),
        Err(e) => internal_error(&e),
    }
}
