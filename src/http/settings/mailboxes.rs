//! The Mailboxes page: a workspace's mailboxes, and per mailbox its auth keys
//! (create, disable, enable, rotate, delete) and the SMTP connection details.

use super::domains::DomainLine;
use super::*;
use crate::mailboxes::auth_keys::{self, AuthKeyRow, Restrictions};
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
    /// When last used, as a `<time>` element (see `view::When`).
    last_used: String,
    status: &'static str,
    /// The allowlist (`,`-separated), or empty.
    allowed_ips: String,
    /// The last day (YYYY-MM-DD), or empty for never.
    expires: String,
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
    domains: Vec<DomainLine>,
    form_domain: &'a str,
}

framed!(MailboxesTemplate);

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    workspace: Option<String>,
    mailbox: Option<String>,
    notice: Option<String>,
}

impl WorkspaceQuery for PageQuery {
    fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }
}

const NEXT: &str = "/settings/mailboxes";

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
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
    );
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    let code = code?;
    if let Some(text) = super::domains::notice_text(code) {
        return Some(text);
    }
    match code {
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
        "auth_key_restricted" => {
            Some("Auth key restrictions saved. They apply from its next login.")
        }
        _ => None,
    }
}

/// What the page shows: the workspace's mailboxes, and the one selected with
/// its keys (their usage is on each key's page).
struct View {
    domains: Vec<crate::mailboxes::domains::SendingDomain>,
    mailboxes: Vec<MailboxRow>,
    selected: Option<(Mailbox, Vec<AuthKeyRow>)>,
}

/// The mailboxes of `ctx`'s workspace for owners and admins (members see
/// none), with `mailbox` selected when it is one of them.
fn load_view(conn: &mut DbConn, ctx: &Context, mailbox: Option<&str>) -> Result<View, Error> {
    let domains = if ctx.role.can_manage() {
        crate::mailboxes::domains::list(conn, &ctx.current.id)?
    } else {
        Vec::new()
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
    Ok(View {
        domains,
        mailboxes,
        selected,
    })
}

/// What a form left to show again after it was refused.
#[derive(Default)]
struct Form<'a> {
    error: Option<&'a str>,
    address: &'a str,
    key_name: &'a str,
    domain: &'a str,
}

/// What the Domains section's refused form left to show again.
#[derive(Default)]
pub(super) struct DomainForm<'a> {
    pub(super) typed: &'a str,
}

/// The page with a refusal of the Domains section (bad input, a domain not
/// verified with what DNS answered) and what was typed.
pub(super) fn render_refused(
    svc: &Services,
    conn: &mut DbConn,
    ctx: &Context,
    e: Error,
    typed: DomainForm,
) -> Result<Page, Stop> {
    let error = refusal_words(e)?;
    let view = load_view(conn, ctx, None)?;
    let form = Form {
        error: Some(&error),
        domain: typed.typed,
        ..Form::default()
    };
    Ok(render(svc, ctx, &view, None, form))
}

/// The page for `ctx`, with a notice, or a refused form.
fn render(svc: &Services, ctx: &Context, view: &View, notice: Option<&str>, form: Form) -> Page {
    let selected_id = view.selected.as_ref().map(|(m, _)| m.id.as_str());
    let mailboxes = view
        .mailboxes
        .iter()
        .map(|r| MailboxLine {
            id: r.mailbox.id.clone(),
            address: r.mailbox.address.clone(),
            creator: r.creator.clone(),
            created: when_html(Some(r.mailbox.created_at), ""),
            active_keys: r.active_keys,
            selected: Some(r.mailbox.id.as_str()) == selected_id,
        })
        .collect();
    let selected = view.selected.as_ref().map(|(m, keys)| Selected {
        id: m.id.clone(),
        address: m.address.clone(),
        keys: keys.iter().map(key_line).collect(),
    });
    let page = MailboxesTemplate {
        frame: Frame::of(ctx, "mailboxes"),
        api_access: accounts::plan_includes_api(&ctx.current.plan),
        mailboxes,
        selected,
        smtp_host: svc.config.smtp_host(),
        notice: notice_text(notice),
        error: form.error,
        form_address: form.address,
        form_key_name: form.key_name,
        domains: view.domains.iter().map(DomainLine::of).collect(),
        form_domain: form.domain,
    };
    Page::render(form_status(ctx.role, form.error.is_some()), &page)
}

fn key_line(r: &AuthKeyRow) -> AuthKeyLine {
    AuthKeyLine {
        id: r.key.id.clone(),
        name: r.key.name.clone(),
        prefix: r.key.prefix(),
        last_used: when_html(r.key.last_used_at, "never"),
        status: r.key.status().as_str(),
        allowed_ips: r.key.allowed_ips.clone().unwrap_or_default(),
        expires: match r.key.expires_at {
            Some(_) => last_day(r.key.expires_at),
            None => String::new(),
        },
    }
}

/// The restrictions typed into a key's form: the allowlist (one field,
/// comma-separated; empty: anywhere) and the last day (empty: never).
fn typed_restrictions(form: &Params) -> Result<Restrictions, Error> {
    let ips = field(form, "allowed_ips");
    let list: Vec<&str> = if ips.trim().is_empty() {
        Vec::new()
    } else {
        vec![ips.as_str()]
    };
    Restrictions::parse(&list, Some(&field(form, "expires")))
}

async fn mailboxes_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |svc, conn, ctx, q: &PageQuery| {
        let view = load_view(conn, ctx, q.mailbox.as_deref())?;
        Ok(render(
            svc,
            ctx,
            &view,
            q.notice.as_deref(),
            Form::default(),
        ))
    })
    .await
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

/// The one showing of a new or rotated auth key's secret.
fn show_secret(svc: &Services, issued: &IssuedAuthKey, notice: &str) -> Page {
    let page = SecretTemplate {
        name: &issued.key.name,
        address: &issued.mailbox.address,
        secret: &issued.secret,
        smtp_host: svc.config.smtp_host(),
        workspace_id: &issued.mailbox.workspace_id,
        mailbox_id: &issued.mailbox.id,
        notice,
        rotated: notice == "auth_key_rotated",
    };
    Page::render(StatusCode::OK, &page)
}

fn page_url(mailbox: &Mailbox, notice: &str) -> String {
    format!(
        "/settings/mailboxes?workspace={}&mailbox={}&notice={notice}",
        mailbox.workspace_id, mailbox.id
    )
}

/// A refusal of the area (bad input, a taken name, a state that forbids the
/// action) shown on the page, with `mailbox_id` selected and what was typed:
/// in the auth key form when the post named a key, else in the mailbox form.
fn refused_on_page(
    svc: &Services,
    conn: &mut DbConn,
    post: &FormPost,
    ctx: &Context,
    mailbox_id: Option<&str>,
    e: Error,
    typed: &str,
) -> Result<Page, Stop> {
    let error = refusal_words(e)?;
    let view = load_view(conn, ctx, mailbox_id)?;
    let form = match field(&post.form, "name").is_empty() {
        false => Form {
            error: Some(&error),
            key_name: typed,
            ..Form::default()
        },
        true => Form {
            error: Some(&error),
            address: typed,
            ..Form::default()
        },
    };
    Ok(render(svc, ctx, &view, None, form))
}

async fn create_mailbox(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |svc, conn, post| {
        let ctx = manager_of_posted(conn, post, "create mailboxes", NEXT)?;
        let address = field(&post.form, "address");
        let ws = &ctx.current.id;
        match lifecycle::create(conn, ws, &address, by(&ctx, post)) {
            Ok(m) => Ok(Page::SeeOther(page_url(&m, "mailbox_created"))),
            Err(e) => refused_on_page(svc, conn, post, &ctx, None, e, &address),
        }
    })
    .await
}

const MANAGE: Guard = Guard {
    what: "manage its mailboxes",
    missing: "No such mailbox.",
    next: NEXT,
};

/// A mailbox for an action by a manager of its workspace.
fn managed_mailbox(
    conn: &mut DbConn,
    post: &FormPost,
    id: &str,
) -> Result<(Box<Context>, Mailbox), Stop> {
    let found = lifecycle::find(conn, id);
    managed(conn, post, &MANAGE, found, |m| &m.workspace_id)
}

/// A deletion, with the mailbox's address typed to confirm it.
async fn delete_mailbox(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, m) = managed_mailbox(conn, post, &path)?;
        let typed = field(&post.form, "confirm_address");
        if !typed.trim().eq_ignore_ascii_case(&m.address) {
            let msg = format!(
                "To delete, type the mailbox's address exactly: {}",
                m.address
            );
            let e = Error::invalid(msg);
            return refused_on_page(svc, conn, post, &ctx, Some(&m.id), e, "");
        }
        let cache = &svc.credentials.cache;
        let keys = &crate::apikeys::RESTRICTED_KEYS;
        lifecycle::delete(conn, cache, &m.id, by(&ctx, post), keys)?;
        Ok(Page::SeeOther(format!(
            "/settings/mailboxes?workspace={}&notice=mailbox_deleted",
            m.workspace_id
        )))
    })
    .await
}

async fn create_auth_key(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, m) = managed_mailbox(conn, post, &path)?;
        let name = field(&post.form, "name");
        let created = typed_restrictions(&post.form).and_then(|limits| {
            auth_keys::create_restricted(conn, &m.id, &name, &limits, by(&ctx, post))
        });
        match created {
            Ok(issued) => Ok(show_secret(svc, &issued, "auth_key_created")),
            Err(e) => refused_on_page(svc, conn, post, &ctx, Some(&m.id), e, &name),
        }
    })
    .await
}

const MANAGE_KEYS: Guard = Guard {
    what: "manage its auth keys",
    missing: "No such auth key.",
    next: NEXT,
};

/// Disable, enable, rotate or delete (with the key's name typed) one auth key.
async fn auth_key_action(
    svc: Svc,
    path: web::Path<(String, String)>,
    post: FormPost,
) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (id, action) = (&path.0, &path.1);
        let found = auth_keys::find_with_mailbox(conn, id);
        let (ctx, (key, mailbox)) =
            managed(conn, post, &MANAGE_KEYS, found, |(_, m)| &m.workspace_id)?;
        match apply_key_action(svc, conn, post, &ctx, &key, &mailbox, action) {
            Ok(page) => Ok(page),
            Err(e) => refused_on_page(svc, conn, post, &ctx, Some(&mailbox.id), e, ""),
        }
    })
    .await
}

/// `action` on `key`: back to its mailbox with a notice, or a rotated key's
/// new secret.
fn apply_key_action(
    svc: &Services,
    conn: &mut DbConn,
    post: &FormPost,
    ctx: &Context,
    key: &crate::mailboxes::MailboxAuthKey,
    mailbox: &Mailbox,
    action: &str,
) -> Result<Page, Error> {
    let (cache, id) = (&svc.credentials.cache, key.id.as_str());
    let by = by(ctx, post);
    let notice = match action {
        "disable" => auth_keys::disable(conn, cache, id, by).map(|_| "auth_key_disabled")?,
        "enable" => auth_keys::enable(conn, cache, id, by).map(|_| "auth_key_enabled")?,
        "rotate" => {
            let issued = auth_keys::rotate(conn, cache, id, by)?;
            return Ok(show_secret(svc, &issued, "auth_key_rotated"));
        }
        "restrict" => {
            let limits = typed_restrictions(&post.form)?;
            auth_keys::restrict(conn, cache, id, &limits, by).map(|_| "auth_key_restricted")?
        }
        "delete" if field(&post.form, "confirm_name").trim() == key.name => {
            auth_keys::delete(conn, cache, id, by).map(|_| "auth_key_deleted")?
        }
        "delete" => {
            return Err(Error::invalid(format!(
                "To delete, type the key's name exactly: {}",
                key.name
            )))
        }
        _ => {
            return Ok(Page::Refused(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ))
        }
    };
    Ok(Page::SeeOther(page_url(mailbox, notice)))
}
