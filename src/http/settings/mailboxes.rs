//! The Mailboxes page: a workspace's mailboxes, and per mailbox its auth keys
//! (create, disable, enable, rotate, delete) and the SMTP connection details.

use super::*;
use crate::mailboxes::auth_keys::{self, AuthKeyRow};
use crate::mailboxes::{lifecycle, IssuedAuthKey, Mailbox, MailboxRow};

struct MailboxLine {
    id: String,
    address: String,
    creator: String,
    created: String,
    active_keys: i64,
    selected: bool,
}

struct AuthKeyLine {
    id: String,
    name: String,
    prefix: String,
    creator: String,
    created: String,
    usage_count: i64,
    chart: String,
    last_used: String,
    status: &'static str,
}

struct Selected {
    id: String,
    address: String,
    keys: Vec<AuthKeyLine>,
}

#[derive(Template)]
#[template(path = "settings_mailboxes.html")]
struct MailboxesTemplate<'a> {
    frame: Frame<'a>,
    api_access: bool,
    mailboxes: Vec<MailboxLine>,
    selected: Option<Selected>,
    smtp_host: String,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    form_address: &'a str,
    form_key_name: &'a str,
}

framed!(MailboxesTemplate);

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    workspace: Option<String>,
    mailbox: Option<String>,
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "mailbox_created" => {
            Some("Mailbox created. Create an auth key for each tool that sends as it.")
        }
        "mailbox_deleted" => Some("Mailbox deleted, with its auth keys."),
        "auth_key_created" => {
            Some("Auth key created. Store it safely: it will not be shown again.")
        }
        "auth_key_rotated" => Some("Auth key rotated. The old secret no longer works."),
        "auth_key_disabled" => Some("Auth key disabled. It can no longer be used until enabled."),
        "auth_key_enabled" => Some("Auth key enabled. It works again."),
        "auth_key_deleted" => Some("Auth key deleted."),
        _ => None,
    }
}

/// What the page shows: the signed-in person's context, the mailboxes, and the
/// one selected with its keys and their usage.
struct View {
    ctx: Context,
    mailboxes: Vec<MailboxRow>,
    selected: Option<(Mailbox, Vec<AuthKeyRow>)>,
    usage: Vec<(String, i64, i64)>,
}

fn load_view(
    conn: &mut DbConn,
    cookie: Option<String>,
    workspace: Option<&str>,
    mailbox: Option<&str>,
) -> Result<Result<View, Access_>, Error> {
    let ctx = match context(conn, cookie, workspace)? {
        Access_::Ok(ctx) => ctx,
        other => return Ok(Err(other)),
    };
    let (mailboxes, selected) = if ctx.role.can_manage() {
        let rows = lifecycle::list(conn, &ctx.current.id)?;
        let chosen = rows
            .iter()
            .find(|r| Some(r.mailbox.id.as_str()) == mailbox)
            .map(|r| r.mailbox.clone());
        let selected = match chosen {
            Some(m) => Some((m.clone(), auth_keys::list(conn, &m.id)?)),
            None => None,
        };
        (rows, selected)
    } else {
        (Vec::new(), None)
    };
    let ids = selected
        .iter()
        .flat_map(|(_, keys)| keys.iter().map(|k| k.key.id.clone()))
        .collect();
    let usage = load_usage(conn, crate::credentials::usage::MAILBOX_AUTH_KEY, ids)?;
    Ok(Ok(View {
        ctx: *ctx,
        mailboxes,
        selected,
        usage,
    }))
}

/// What a form left to show again after it was refused.
#[derive(Default)]
struct Form<'a> {
    error: Option<&'a str>,
    address: &'a str,
    key_name: &'a str,
}

fn render(svc: &Services, view: &View, notice: Option<&str>, form: Form) -> HttpResponse {
    let ctx = &view.ctx;
    let selected_id = view.selected.as_ref().map(|(m, _)| m.id.as_str());
    let mailboxes = view
        .mailboxes
        .iter()
        .map(|r| MailboxLine {
            id: r.mailbox.id.clone(),
            address: r.mailbox.address.clone(),
            creator: r.creator.clone(),
            created: day(Some(r.mailbox.created_at), ""),
            active_keys: r.active_keys,
            selected: Some(r.mailbox.id.as_str()) == selected_id,
        })
        .collect();
    let selected = view.selected.as_ref().map(|(m, keys)| Selected {
        id: m.id.clone(),
        address: m.address.clone(),
        keys: keys.iter().map(|r| key_line(view, r)).collect(),
    });
    let Ok(body) = MailboxesTemplate {
        frame: Frame::of(ctx, "mailboxes"),
        api_access: accounts::plan_includes_api(&ctx.current.plan),
        mailboxes,
        selected,
        smtp_host: svc.config.smtp_host(),
        notice: notice_text(notice),
        error: form.error,
        form_address: form.address,
        form_key_name: form.key_name,
    }
    .render() else {
        return crate::http::render_failed();
    };
    match (ctx.role.can_manage(), form.error) {
        (false, _) => html(StatusCode::FORBIDDEN, body),
        (true, Some(_)) => html(StatusCode::BAD_REQUEST, body),
        (true, None) => html(StatusCode::OK, body),
    }
}

fn key_line(view: &View, r: &AuthKeyRow) -> AuthKeyLine {
    AuthKeyLine {
        id: r.key.id.clone(),
        name: r.key.name.clone(),
        prefix: r.key.prefix(),
        creator: r.creator.clone(),
        created: day(Some(r.key.created_at), ""),
        usage_count: r.key.usage_count,
        chart: chart(&view.usage, &r.key.id),
        last_used: day(r.key.last_used_at, "never"),
        status: r.key.status().as_str(),
    }
}

pub(super) async fn mailboxes_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<PageQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let (ws, mb) = (q.workspace.clone(), q.mailbox.clone());
    let result = crate::http::with_conn(&svc, move |_, conn| {
        load_view(conn, cookie, ws.as_deref(), mb.as_deref())
    })
    .await;
    match result {
        Ok(Ok(view)) => render(&svc, &view, q.notice.as_deref(), Form::default()),
        Ok(Err(a)) => no_access(a, "/settings/mailboxes"),
        Err(e) => internal_error(&e),
    }
}

#[derive(Template)]
#[template(path = "auth_key_secret.html")]
struct SecretTemplate<'a> {
    name: &'a str,
    address: &'a str,
    secret: &'a str,
    smtp_host: String,
    workspace_id: &'a str,
    mailbox_id: &'a str,
    notice: &'a str,
    rotated: bool,
}

fn show_secret(svc: &Services, issued: &IssuedAuthKey, notice: &str) -> HttpResponse {
    let Ok(body) = SecretTemplate {
        name: &issued.key.name,
        address: &issued.mailbox.address,
        secret: &issued.secret,
        smtp_host: svc.config.smtp_host(),
        workspace_id: &issued.mailbox.workspace_id,
        mailbox_id: &issued.mailbox.id,
        notice,
        rotated: notice == "auth_key_rotated",
    }
    .render() else {
        return crate::http::render_failed();
    };
    html(StatusCode::OK, body)
}

/// How a POST of this page ends.
enum Outcome {
    Secret(IssuedAuthKey, &'static str),
    Back(String),
    /// The page again, with the refusal and what was typed.
    Form(View, String, String),
    Refused(StatusCode, String),
    NoAccess(Access_),
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoAccess(a) => Outcome::NoAccess(a),
            Refusal::Refused(status, msg) => Outcome::Refused(status, msg),
        }
    }
}

fn page_url(mailbox: &Mailbox, notice: &str) -> String {
    format!(
        "/settings/mailboxes?workspace={}&mailbox={}&notice={notice}",
        mailbox.workspace_id, mailbox.id
    )
}

/// A refusal of the area (bad input, a taken name, a state that forbids the
/// action) shown on the page; database faults stay errors.
fn refused_on_page(
    conn: &mut DbConn,
    post: &FormPost,
    workspace_id: &str,
    mailbox_id: Option<&str>,
    e: Error,
    typed: &str,
) -> Result<Outcome, Error> {
    if matches!(e, Error::Db(_) | Error::Pool(_)) {
        return Err(e);
    }
    Ok(
        match load_view(conn, post.cookie.clone(), Some(workspace_id), mailbox_id)? {
            Ok(view) => Outcome::Form(view, e.to_string(), typed.to_string()),
            Err(a) => Outcome::NoAccess(a),
        },
    )
}

/// Every POST of the page: the form and its CSRF token read, `act` run with a
/// connection, its outcome shown.
async fn post_action<F>(svc: Svc, req: HttpRequest, payload: web::Payload, act: F) -> HttpResponse
where
    F: FnOnce(&Services, &mut DbConn, &FormPost) -> Result<Outcome, Error> + Send + 'static,
{
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let for_key_form = !field(&post.form, "name").is_empty();
    let result = crate::http::with_conn(&svc, move |svc, conn| act(svc, conn, &post)).await;
    match result {
        Ok(Outcome::Secret(issued, notice)) => show_secret(&svc, &issued, notice),
        Ok(Outcome::Back(url)) => redirect(StatusCode::SEE_OTHER, &url),
        Ok(Outcome::Form(view, error, typed)) => {
            let form = match for_key_form {
                true => Form {
                    error: Some(&error),
                    key_name: &typed,
                    ..Form::default()
                },
                false => Form {
                    error: Some(&error),
                    address: &typed,
                    ..Form::default()
                },
            };
            render(&svc, &view, None, form)
        }
        Ok(Outcome::Refused(status, msg)) => error_page(status, &msg),
        Ok(Outcome::NoAccess(a)) => no_access(a, "/settings/mailboxes"),
        Err(e) => internal_error(&e),
    }
}

/// A mailbox for an action by a manager of its workspace.
fn managed_mailbox(
    conn: &mut DbConn,
    post: &FormPost,
    id: &str,
) -> Result<Result<(Box<Context>, Mailbox), Outcome>, Error> {
    let mailbox = match lifecycle::find(conn, id) {
        Ok(m) => m,
        Err(Error::NotFound(_)) => {
            return Ok(Err(Outcome::Refused(
                StatusCode::NOT_FOUND,
                "No such mailbox.".into(),
            )))
        }
        Err(e) => return Err(e),
    };
    Ok(manager_of(
        conn,
        post,
        Some(&mailbox.workspace_id),
        "manage its mailboxes",
        "No such mailbox.",
    )?
    .map(|ctx| (ctx, mailbox))
    .map_err(Outcome::from))
}

pub(super) async fn create_mailbox(
    svc: Svc,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    post_action(svc, req, payload, |_, conn, post| {
        let ws = field(&post.form, "workspace_id");
        let ctx = match manager_of(
            conn,
            post,
            Some(&ws),
            "create mailboxes",
            "No such workspace.",
        )? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        let address = field(&post.form, "address");
        match lifecycle::create(conn, &ws, &address, &ctx.user.id, Some(&post.address)) {
            Ok(m) => Ok(Outcome::Back(page_url(&m, "mailbox_created"))),
            Err(e) => refused_on_page(conn, post, &ws, None, e, &address),
        }
    })
    .await
}

pub(super) async fn delete_mailbox(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = path.into_inner();
    post_action(svc, req, payload, move |svc, conn, post| {
        let (ctx, m) = match managed_mailbox(conn, post, &id)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        if !field(&post.form, "confirm_address")
            .trim()
            .eq_ignore_ascii_case(&m.address)
        {
            let e = Error::invalid(format!(
                "To delete, type the mailbox's address exactly: {}",
                m.address
            ));
            return refused_on_page(conn, post, &m.workspace_id, Some(&m.id), e, "");
        }
        let cache = &svc.credentials.cache;
        lifecycle::delete(conn, cache, &m.id, &ctx.user.id, Some(&post.address))?;
        Ok(Outcome::Back(format!(
            "/settings/mailboxes?workspace={}&notice=mailbox_deleted",
            m.workspace_id
        )))
    })
    .await
}

pub(super) async fn create_auth_key(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = path.into_inner();
    post_action(svc, req, payload, move |_, conn, post| {
        let (ctx, m) = match managed_mailbox(conn, post, &id)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let name = field(&post.form, "name");
        match auth_keys::create(conn, &m.id, &name, &ctx.user.id, Some(&post.address)) {
            Ok(issued) => Ok(Outcome::Secret(issued, "auth_key_created")),
            Err(e) => refused_on_page(conn, post, &m.workspace_id, Some(&m.id), e, &name),
        }
    })
    .await
}

/// Disable, enable, rotate or delete (with the key's name typed) one auth key.
pub(super) async fn auth_key_action(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    post_action(svc, req, payload, move |svc, conn, post| {
        let (key, mailbox) = match auth_keys::find_with_mailbox(conn, &id) {
            Ok(found) => found,
            Err(Error::NotFound(_)) => {
                return Ok(Outcome::Refused(
                    StatusCode::NOT_FOUND,
                    "No such auth key.".into(),
                ))
            }
            Err(e) => return Err(e),
        };
        let ctx = match manager_of(
            conn,
            post,
            Some(&mailbox.workspace_id),
            "manage its auth keys",
            "No such mailbox.",
        )? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        match apply_key_action(svc, conn, post, &ctx, &key, &mailbox, &action) {
            Ok(outcome) => Ok(outcome),
            Err(e) => refused_on_page(conn, post, &mailbox.workspace_id, Some(&mailbox.id), e, ""),
        }
    })
    .await
}

fn apply_key_action(
    svc: &Services,
    conn: &mut DbConn,
    post: &FormPost,
    ctx: &Context,
    key: &crate::mailboxes::MailboxAuthKey,
    mailbox: &Mailbox,
    action: &str,
) -> Result<Outcome, Error> {
    let (cache, id) = (&svc.credentials.cache, key.id.as_str());
    let (who, from) = (ctx.user.id.as_str(), Some(post.address.as_str()));
    let notice = match action {
        "disable" => auth_keys::disable(conn, cache, id, who, from).map(|_| "auth_key_disabled")?,
        "enable" => auth_keys::enable(conn, cache, id, who, from).map(|_| "auth_key_enabled")?,
        "rotate" => {
            let issued = auth_keys::rotate(conn, cache, id, who, from)?;
            return Ok(Outcome::Secret(issued, "auth_key_rotated"));
        }
        "delete" if field(&post.form, "confirm_name").trim() == key.name => {
            auth_keys::delete(conn, cache, id, who, from).map(|_| "auth_key_deleted")?
        }
        "delete" => {
            return Err(Error::invalid(format!(
                "To delete, type the key's name exactly: {}",
                key.name
            )))
        }
        _ => {
            return Ok(Outcome::Refused(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ))
        }
    };
    Ok(Outcome::Back(page_url(mailbox, notice)))
}
