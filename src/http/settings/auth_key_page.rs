//! The page of one mailbox auth key: its usage over 30 days, last use,
//! creator, status, restrictions and security-log rows, and the edit of its
//! restrictions (allowed addresses, last day) without rotating it.

use super::log::{line, LogLine};
use super::view::When;
use super::*;
use crate::accounts::audit;
use crate::mailboxes::auth_keys::{self, Restrictions};
use crate::mailboxes::{Mailbox, MailboxAuthKey};

/// The security-log rows shown on a key's page (the log has the rest).
const LOG_ROWS: i64 = 20;

#[derive(Template)]
#[template(path = "settings_auth_key.html")]
struct AuthKeyPageTemplate<'a> {
    frame: Frame<'a>,
    key: &'a MailboxAuthKey,
    mailbox: &'a Mailbox,
    prefix: String,
    status: &'static str,
    creator: String,
    created: When,
    last_used: When,
    expires: String,
    usage_total: i64,
    chart: String,
    smtp_host: String,
    log: Vec<LogLine>,
    /// The restrictions form as sent after a refusal, else the key's own.
    form_ips: String,
    form_expires: String,
    form_error: Option<&'a str>,
    notice: Option<&'a str>,
}

framed!(AuthKeyPageTemplate);

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    notice: Option<String>,
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/mailbox-auth-keys/{id}")
            .route(web::get().to(auth_key_page))
            .route(web::post().to(edit_restrictions)),
    );
}

const MISSING: &str = "No such auth key.";

/// The key's page for a manager of its workspace; anyone else (and an unknown
/// id) gets the same 404.
async fn auth_key_page(svc: Svc, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let q: PageQuery = query(&req);
    let cookie = session_cookie(&req);
    let id = path.into_inner();
    respond(
        crate::http::with_conn(&svc, move |svc, conn| {
            let found = match auth_keys::find_with_mailbox(conn, &id) {
                Ok(found) => Some(found),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let ws = found.as_ref().map(|(_, m)| m.workspace_id.as_str());
            let ctx = match context(conn, cookie, ws)? {
                Access_::Ok(ctx) => ctx,
                other => return Ok(Page::NoAccess(other, "/settings/mailboxes")),
            };
            let mine = |(_, m): &(MailboxAuthKey, Mailbox)| {
                m.workspace_id == ctx.current.id && ctx.role.can_manage()
            };
            match found.filter(mine) {
                Some((key, mailbox)) => {
                    let notice = notice_text(q.notice.as_deref());
                    let form = Sent::of(&key);
                    render(svc, conn, &ctx, (&key, &mailbox), form, None, notice)
                }
                None => Ok(Page::Refused(StatusCode::NOT_FOUND, MISSING.to_string())),
            }
        })
        .await,
    )
}

/// The restrictions form's fields.
struct Sent {
    ips: String,
    expires: String,
}

impl Sent {
    fn of(key: &MailboxAuthKey) -> Sent {
        let ips = key
            .allowed_ips
            .as_deref()
            .and_then(|s| crate::credentials::address::IpAllowList::from_storage(s).ok())
            .map(|l| l.to_strings().join(", "))
            .unwrap_or_default();
        Sent {
            ips,
            expires: key.expires_at.map_or(String::new(), |t| last_day(Some(t))),
        }
    }
}

fn render(
    svc: &Services,
    conn: &mut DbConn,
    ctx: &Context,
    (key, mailbox): (&MailboxAuthKey, &Mailbox),
    form: Sent,
    form_error: Option<&str>,
    notice: Option<&str>,
) -> Result<Page, Error> {
    let now = db::now();
    let kind = crate::credentials::usage::MAILBOX_AUTH_KEY;
    let usage = load_usage(conn, kind, vec![key.id.clone()])?;
    let points: Vec<(i64, i64)> = usage.iter().map(|u| (u.1, u.2)).collect();
    let today = crate::credentials::usage::day_of(now);
    let emails = accounts::emails_of(conn, std::slice::from_ref(&key.created_by))?;
    let names = &crate::node::names::AreaNames;
    let log = audit::of_subject(conn, names, &mailbox.workspace_id, &key.id, LOG_ROWS)?;
    let page = AuthKeyPageTemplate {
        frame: Frame::of(ctx, "mailboxes"),
        prefix: key.prefix(),
        status: key.status().as_str(),
        creator: audit::actor_label(&key.created_by, emails.into_values().next()),
        created: When::of(Some(key.created_at), now, ""),
        last_used: When::of(key.last_used_at, now, "never used"),
        expires: last_day(key.expires_at),
        usage_total: points.iter().map(|p| p.1).sum(),
        chart: crate::credentials::usage::bar_chart(&points, today, 30),
        smtp_host: svc.config.smtp_host(),
        log: log.into_iter().map(line).collect(),
        form_ips: form.ips,
        form_expires: form.expires,
        form_error,
        notice,
        key,
        mailbox,
    };
    let status = match page.form_error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    Ok(Page::render(status, &page))
}

const MANAGE: Guard = Guard {
    what: "manage its mailboxes",
    missing: MISSING,
    next: "/settings/mailboxes",
};

/// Saves the key's allowed addresses and last day; a refusal shows the page
/// again with what was typed.
async fn edit_restrictions(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let found = auth_keys::find_with_mailbox(conn, &path);
        let (ctx, (key, mailbox)) = managed(conn, post, &MANAGE, found, |(_, m)| &m.workspace_id)?;
        let (ips, expires) = (
            field(&post.form, "allowed_ips"),
            field(&post.form, "expires"),
        );
        let entries: Vec<&str> = ips
            .split([',', ' ', '\t', '\r', '\n'])
            .filter(|e| !e.is_empty())
            .collect();
        let saved = Restrictions::parse(&entries, Some(&expires)).and_then(|limits| {
            let cache = &svc.credentials.cache;
            auth_keys::restrict(conn, cache, &key.id, &limits, by(&ctx, post))
        });
        match saved {
            Ok(_) => Ok(Page::SeeOther(format!(
                "/settings/mailbox-auth-keys/{}?notice=auth_key_restricted",
                key.id
            ))),
            Err(e) => {
                let words = refusal_words(e)?;
                let sent = Sent { ips, expires };
                Ok(render(
                    svc,
                    conn,
                    &ctx,
                    (&key, &mailbox),
                    sent,
                    Some(&words),
                    None,
                )?)
            }
        }
    })
    .await
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "auth_key_restricted" => Some("Restrictions saved. They apply from the key's next login."),
        _ => None,
    }
}
