//! The API keys page: generate, rotate, revoke.

use super::*;
use crate::credentials::grace::parse_grace;

struct KeyLine {
    id: String,
    name: String,
    prefix: String,
    access: &'static str,
    /// A custom key's scopes; empty for the fixed levels.
    custom_scopes: Vec<String>,
    /// The address allowlist as CIDRs; empty for anywhere.
    allowed_ips: Vec<String>,
    creator: String,
    created: String,
    usage_count: i64,
    chart: String,
    last_used: String,
    last_used_ip: String,
    expires: String,
    /// Active and ending within seven days: shown in words, not colour alone.
    expiring_soon: bool,
    /// When the secret a rotation replaced stops, while it still works.
    grace_until: String,
    status: &'static str,
    /// The address of the one mailbox a restricted key reads; empty for a workspace key.
    mailbox: String,
}

/// A scope checkbox of the generate form.
struct ScopeChoice {
    name: &'static str,
    description: &'static str,
}

/// The grace periods the rotate form offers (`credentials::grace` syntax).
const GRACE_CHOICES: &[(&str, &str)] = &[
    ("", "Stop the old secret at once"),
    ("1h", "Keep the old secret for 1 hour"),
    ("1d", "Keep the old secret for 1 day"),
    ("7d", "Keep the old secret for 7 days"),
    ("30d", "Keep the old secret for 30 days"),
];

#[derive(Template)]
#[template(path = "settings_keys.html")]
struct KeysTemplate<'a> {
    frame: Frame<'a>,
    api_access: bool,
    keys: Vec<KeyLine>,
    query: &'a str,
    status: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    form_name: &'a str,
    scope_choices: Vec<ScopeChoice>,
    grace_choices: &'a [(&'a str, &'a str)],
    /// The mailboxes a new key may be restricted to.
    mailboxes: Vec<crate::mailboxes::MailboxRow>,
}

framed!(KeysTemplate);

struct KeysView {
    ctx: Context,
    rows: Vec<apikeys::KeyRow>,
    usage: Vec<(String, i64, i64)>,
    mailboxes: Vec<crate::mailboxes::MailboxRow>,
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
        .map(|r| {
            let access = r.key.access_level();
            KeyLine {
                id: r.key.id.clone(),
                name: r.key.name.clone(),
                prefix: r.key.prefix(),
                access: access.label(),
                custom_scopes: match access {
                    Access::Custom(_) => access.scopes(),
                    _ => Vec::new(),
                },
                allowed_ips: r.key.allowed_ip_list().unwrap_or_default(),
                creator: r.creator.clone(),
                created: day(Some(r.key.created_at), ""),
                usage_count: r.key.usage_count,
                chart: chart(&view.usage, &r.key.id),
                last_used: day(r.key.last_used_at, "never"),
                last_used_ip: r.key.last_used_ip.clone().unwrap_or_default(),
                expires: last_day(r.key.expires_at),
                expiring_soon: r.key.expiring_soon(now),
                grace_until: day(r.key.grace_ends_at(now), ""),
                status: r.key.status_at(now).as_str(),
                mailbox: restricted_to(&view.mailboxes, r.key.mailbox_id.as_deref()),
            }
        })
        .collect();
    let Ok(body) = KeysTemplate {
        frame: Frame::of(ctx, "keys"),
        api_access: accounts::plan_includes_api(&ctx.current.plan),
        keys,
        query: q.q.as_deref().unwrap_or(""),
        status: q.status.as_deref().unwrap_or(""),
        notice: notice_text(q.notice.as_deref()),
        error,
        form_name,
        scope_choices: scopes::SCOPES
            .iter()
            .map(|s| ScopeChoice {
                name: s.name,
                description: s.description,
            })
            .collect(),
        grace_choices: GRACE_CHOICES,
        mailboxes: view.mailboxes.clone(),
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

/// The address a restricted key reads (or, once the mailbox is gone, its id).
fn restricted_to(mailboxes: &[crate::mailboxes::MailboxRow], id: Option<&str>) -> String {
    let Some(id) = id else {
        return String::new();
    };
    mailboxes.iter().find(|m| m.mailbox.id == id).map_or_else(
        || format!("deleted mailbox {id}"),
        |m| m.mailbox.address.clone(),
    )
}

fn load_keys(
    conn: &mut DbConn,
    cookie: Option<String>,
    q: &KeysQuery,
) -> Result<Result<KeysView, Access_>, Error> {
    match context(conn, cookie, q.workspace.as_deref())? {
        Access_::Ok(ctx) => {
            let (rows, mailboxes) = if ctx.role.can_manage() {
                let filter = ListFilter {
                    query: q.q.clone(),
                    status: q.status.clone(),
                };
                (
                    apikeys::list(conn, &ctx.current.id, &filter)?,
                    crate::mailboxes::lifecycle::list(conn, &ctx.current.id)?,
                )
            } else {
                (Vec::new(), Vec::new())
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
                mailboxes,
            }))
        }
        other => Ok(Err(other)),
    }
}

pub(super) async fn keys_page(svc: Svc, req: HttpRequest) -> HttpResponse {
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
    match crate::http::with_conn(&svc, move |_, conn| load_keys(conn, cookie, &q2)).await {
        Ok(Ok(view)) => render_keys(&view, &q, None, ""),
        Ok(Err(a)) => no_access(a, "/settings/api-keys"),
        Err(e) => internal_error(&e),
    }
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
    /// After a rotation with a grace period: when the old secret stops.
    grace_until: String,
}

fn show_secret(issued: &apikeys::IssuedKey, notice: &str) -> HttpResponse {
    let Ok(body) = SecretTemplate {
        grace_until: day(issued.key.grace_ends_at(db::now()), ""),
        name: &issued.key.name,
        access: issued.key.access_level().label(),
        expires: last_day(issued.key.expires_at),
        secret: &issued.secret,
        workspace_id: &issued.key.workspace_id,
        notice,
        rotated: notice.starts_with("key_rotated"),
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

pub(super) async fn generate_key(
    svc: Svc,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = crate::http::with_conn(&svc, move |_, conn| {
        let ws = field(&post.form, "workspace_id");
        let ctx = match manager_of(
            conn,
            &post,
            Some(&ws),
            "generate API keys",
            "No such workspace.",
        )? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        let name = field(&post.form, "name");
        let attempt = new_key_from(&post.form, &ws, &name)
            .and_then(|spec| apikeys::create_key(conn, &spec, &ctx.user.id, Some(&post.address)));
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

/// The generate form as a new key: the access level (a checkbox per scope for
/// custom; the boxes are ignored for the fixed levels, which a person may pick
/// after ticking some), the expiry, and the allowed addresses (separated by
/// commas, spaces or lines; empty for anywhere).
fn new_key_from<'a>(
    form: &'a Params,
    ws: &'a str,
    name: &'a str,
) -> Result<apikeys::NewKey<'a>, Error> {
    let level = field(form, "access");
    let chosen = if level == "custom" {
        form.all("scope")
    } else {
        Vec::new()
    };
    let access = Access::with_scopes(&level, &chosen)?;
    let expires_at = apikeys::parse_expiry(Some(&field(form, "expires")))?;
    let raw_ips = field(form, "allowed_ips");
    let entries: Vec<&str> = raw_ips
        .split([',', ' ', '\t', '\r', '\n'])
        .filter(|e| !e.is_empty())
        .collect();
    let allowed_ips = if entries.is_empty() {
        None
    } else {
        Some(
            apikeys::IpAllowList::parse_entries(&entries)
                .map_err(|e| Error::invalid(format!("Allowed addresses: {e}")))?,
        )
    };
    let mailbox_id = form.get("mailbox_id").ok().flatten();
    Ok(apikeys::NewKey {
        workspace_id: ws,
        name,
        access,
        expires_at,
        mailbox_id,
        allowed_ips,
    })
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
        Ok(k) => Some(k),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let workspace_id = key.as_ref().map(|k| k.workspace_id.clone());
    let ctx = match manager_of(
        conn,
        post,
        workspace_id.as_deref(),
        "manage its API keys",
        "No such API key.",
    )? {
        Ok(ctx) => ctx,
        Err(refusal) => return Ok(Err(refusal.into())),
    };
    match key {
        Some(key) => Ok(Ok((ctx, key))),
        None => Ok(Err(Outcome::Refused(
            StatusCode::NOT_FOUND,
            "No such API key.".into(),
        ))),
    }
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoAccess(a) => Outcome::NoAccess(a),
            Refusal::Refused(status, msg) => Outcome::Refused(status, msg),
        }
    }
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
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = crate::http::with_conn(&svc, move |svc: &Services, conn| {
        let (ctx, key) = match managed_key(conn, &post, &id)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        act(svc, conn, &post, ctx, key)
    })
    .await;
    finish(result)
}

/// The keys page again, with `error` about an action on `key`.
fn key_form_error(
    conn: &mut DbConn,
    post: &FormPost,
    key: &apikeys::ApiKey,
    error: String,
) -> Result<Outcome, Error> {
    let q = KeysQuery {
        workspace: Some(key.workspace_id.clone()),
        ..Default::default()
    };
    Ok(match load_keys(conn, post.cookie.clone(), &q)? {
        Ok(view) => Outcome::Form(view, q, error, String::new()),
        Err(a) => Outcome::NoAccess(a),
    })
}

pub(super) async fn rotate_key(
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
            let raw = field(&post.form, "grace");
            let grace = match (!raw.trim().is_empty())
                .then(|| parse_grace(&raw))
                .transpose()
            {
                Ok(g) => g,
                Err(e) => return key_form_error(conn, post, &key, format!("Grace period: {e}")),
            };
            let notice = if grace.is_some() {
                "key_rotated_grace"
            } else {
                "key_rotated"
            };
            conflict_to_page(
                apikeys::rotate_with_grace(
                    conn,
                    &svc.credentials.cache,
                    &key.id,
                    grace,
                    &ctx.user.id,
                    Some(&post.address),
                )
                .map(|issued| Outcome::Secret(issued, notice)),
            )
        },
    )
    .await
}

pub(super) async fn revoke_key(
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
                let msg = format!("To revoke, type the key's name exactly: {}", key.name);
                return key_form_error(conn, post, &key, msg);
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
