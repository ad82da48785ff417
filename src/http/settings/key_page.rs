//! The page of one API key: its usage over 30 days, last use, scopes,
//! addresses, expiry, creator and security-log rows, and an edit form that
//! changes everything but the secret.

use super::keys::{access_from, allowed_ips_from, grace_choices, scope_choices, ScopeChoice};
use super::log::{line, LogLine};
use super::view::When;
use super::*;
use crate::accounts::audit;

/// The security-log rows shown on a key's page (the log has the rest).
const LOG_ROWS: i64 = 20;

#[derive(Template)]
#[template(path = "settings_key.html")]
struct KeyPageTemplate<'a> {
    frame: Frame<'a>,
    key: &'a apikeys::ApiKey,
    prefix: String,
    access: &'static str,
    scopes: Vec<String>,
    /// A mailbox-restricted key: the mailbox's address (its access is fixed).
    mailbox: String,
    allowed_ips: String,
    status: &'static str,
    creator: String,
    created: When,
    last_used: When,
    /// No use in the last 30 days (or ever).
    unused: bool,
    expires: String,
    expiring_soon: bool,
    grace_until: String,
    usage_total: i64,
    chart: String,
    log: Vec<LogLine>,
    scope_choices: Vec<ScopeChoice>,
    grace_choices: &'a [(&'a str, &'a str)],
    /// The edit form as sent, after a refusal (else the key's own values).
    form: EditForm,
    form_error: Option<&'a str>,
    notice: Option<&'a str>,
}

framed!(KeyPageTemplate);

/// What the edit form shows: the key's values, or what was sent.
struct EditForm {
    name: String,
    description: String,
    access: String,
    scopes: Vec<String>,
    allowed_ips: String,
}

impl EditForm {
    fn of(key: &apikeys::ApiKey) -> EditForm {
        EditForm {
            name: key.name.clone(),
            description: key.description.clone(),
            access: key.access.clone(),
            scopes: key.scope_names(),
            allowed_ips: key.allowed_ip_list().unwrap_or_default().join(", "),
        }
    }

    fn from_post(form: &Params) -> EditForm {
        EditForm {
            name: field(form, "name"),
            description: field(form, "description"),
            access: field(form, "access"),
            scopes: form.all("scope").into_iter().map(str::to_string).collect(),
            allowed_ips: field(form, "allowed_ips"),
        }
    }

    fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(serde::Deserialize, Default)]
struct KeyPageQuery {
    notice: Option<String>,
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/api-keys/{id}")
            .route(web::get().to(key_page))
            .route(web::post().to(edit_key)),
    );
}

fn key_url(id: &str, notice: &str) -> String {
    format!("/settings/api-keys/{id}?notice={notice}")
}

const MISSING: &str = "No such API key.";

/// The key's page for a manager of its workspace; anyone else (and an unknown
/// id) gets the same 404, so that nothing tells a stranger a key exists.
async fn key_page(svc: Svc, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let q: KeyPageQuery = query(&req);
    let cookie = session_cookie(&req);
    let id = path.into_inner();
    respond(
        crate::http::with_conn(&svc, move |_, conn| {
            let key = match apikeys::find(conn, &id) {
                Ok(key) => Some(key),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let ws = key.as_ref().map(|k| k.workspace_id.as_str());
            let ctx = match context(conn, cookie, ws)? {
                Access_::Ok(ctx) => ctx,
                other => return Ok(Page::NoAccess(other, "/settings/api-keys")),
            };
            match key.filter(|k| k.workspace_id == ctx.current.id && ctx.role.can_manage()) {
                Some(key) => {
                    let notice = notice_text(q.notice.as_deref());
                    render(conn, &ctx, &key, EditForm::of(&key), None, notice)
                }
                None => Ok(Page::Refused(StatusCode::NOT_FOUND, MISSING.to_string())),
            }
        })
        .await,
    )
}

fn render(
    conn: &mut DbConn,
    ctx: &Context,
    key: &apikeys::ApiKey,
    form: EditForm,
    form_error: Option<&str>,
    notice: Option<&str>,
) -> Result<Page, Error> {
    let now = db::now();
    let usage = load_usage(
        conn,
        crate::credentials::usage::API_KEY,
        vec![key.id.clone()],
    )?;
    let points: Vec<(i64, i64)> = usage.iter().map(|u| (u.1, u.2)).collect();
    let today = crate::credentials::usage::day_of(now);
    let creator_email = accounts::emails_of(conn, std::slice::from_ref(&key.created_by))?;
    let creator = audit::actor_label(&key.created_by, creator_email.into_values().next());
    let log = audit::of_subject(
        conn,
        &crate::node::names::AreaNames,
        &key.workspace_id,
        &key.id,
        LOG_ROWS,
    )?;
    let mailbox = match &key.mailbox_id {
        Some(id) => crate::mailboxes::lifecycle::find_in(conn, &key.workspace_id, id)
            .map_or_else(|_| format!("deleted mailbox {id}"), |m| m.address),
        None => String::new(),
    };
    let access = key.access_level();
    let page = KeyPageTemplate {
        frame: Frame::of(ctx, "keys"),
        prefix: key.prefix(),
        access: access.label(),
        scopes: access.scopes(),
        mailbox,
        allowed_ips: key.allowed_ip_list().unwrap_or_default().join(", "),
        status: key.status_at(now).as_str(),
        creator,
        created: When::of(Some(key.created_at), now, ""),
        last_used: When::of(key.last_used_at, now, "never used"),
        unused: key.unused_for_30_days(now),
        expires: last_day(key.expires_at),
        expiring_soon: key.expiring_soon(now),
        grace_until: day(key.grace_ends_at(now), ""),
        usage_total: points.iter().map(|p| p.1).sum(),
        chart: crate::credentials::usage::bar_chart(&points, today, 30),
        log: log.into_iter().map(line).collect(),
        scope_choices: scope_choices(),
        grace_choices: grace_choices(),
        form,
        form_error,
        notice,
        key,
    };
    let status = if page.form_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(Page::render(status, &page))
}

const MANAGE: Guard = Guard {
    what: "manage its API keys",
    missing: MISSING,
    next: "/settings/api-keys",
};

/// An edit of the key's name, description, access and addresses; its secret
/// stays. A refusal shows the page again with the form as sent.
async fn edit_key(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let found = apikeys::find(conn, &path);
        let (ctx, key) = managed(conn, post, &MANAGE, found, |k| &k.workspace_id)?;
        let edited = edit_from(&post.form, &key).and_then(|edit| {
            let cache = &svc.credentials.cache;
            apikeys::edit(conn, cache, &key.id, &edit, by(&ctx, post))
        });
        match edited {
            Ok(_) => Ok(Page::SeeOther(key_url(&key.id, "key_updated"))),
            Err(e) => {
                let words = refusal_words(e)?;
                let sent = EditForm::from_post(&post.form);
                Ok(render(conn, &ctx, &key, sent, Some(&words), None)?)
            }
        }
    })
    .await
}

/// The edit the form asks for (a restricted key's access is left as it is).
fn edit_from<'a>(form: &'a Params, key: &apikeys::ApiKey) -> Result<apikeys::KeyEdit<'a>, Error> {
    let access = match key.mailbox_id {
        Some(_) => None,
        None => Some(access_from(form)?),
    };
    Ok(apikeys::KeyEdit {
        name: form.get("name").ok().flatten().unwrap_or(""),
        description: form.get("description").ok().flatten().unwrap_or(""),
        access,
        allowed_ips: allowed_ips_from(form)?,
    })
}
