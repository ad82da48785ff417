//! The API keys page: generate, rotate, revoke.

use super::view::When;
use super::*;
use crate::apikeys::grace::parse_grace;

struct KeyLine {
    id: String,
    name: String,
    prefix: String,
    access: &'static str,
    /// The address allowlist as CIDRs; empty for anywhere.
    allowed_ips: Vec<String>,
    last_used: When,
    never_used: bool,
    /// Used once, not in the last 30 days.
    unused: bool,
    expires: String,
    /// Active and ending within seven days: shown in words, not colour alone.
    expiring_soon: bool,
    /// When the secret a rotation replaced stops, while it still works.
    grace_until: String,
    status: &'static str,
    /// The address of the one mailbox a restricted key reads; empty for a workspace key.
    mailbox: String,
}

/// A scope checkbox of the generate and edit forms.
pub(super) struct ScopeChoice {
    pub(super) name: &'static str,
    pub(super) description: &'static str,
}

/// Every scope as a checkbox.
pub(super) fn scope_choices() -> Vec<ScopeChoice> {
    scopes::SCOPES
        .iter()
        .map(|s| ScopeChoice {
            name: s.name,
            description: s.description,
        })
        .collect()
}

/// The rotate form's grace periods.
pub(super) fn grace_choices() -> &'static [(&'static str, &'static str)] {
    GRACE_CHOICES
}

/// What the generate form was sent with, shown again after a refusal so
/// that nothing typed or chosen is lost.
#[derive(Default)]
struct GenerateForm {
    name: String,
    access: String,
    scopes: Vec<String>,
    expires: String,
    /// The expiry preset chosen (`EXPIRY_CHOICES`); empty before a post.
    expiry: String,
    allowed_ips: String,
    mailbox_id: String,
}

impl GenerateForm {
    fn from_post(form: &Params) -> GenerateForm {
        GenerateForm {
            name: field(form, "name"),
            access: field(form, "access"),
            scopes: form.all("scope").into_iter().map(str::to_string).collect(),
            expires: field(form, "expires"),
            expiry: field(form, "expiry"),
            allowed_ips: field(form, "allowed_ips"),
            mailbox_id: field(form, "mailbox_id"),
        }
    }

    fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether `value` is the chosen expiry preset (90 days before a post).
    fn expiry_is(&self, value: &str) -> bool {
        match self.expiry.as_str() {
            "" if self.expires.is_empty() => value == "90",
            "" => value == "date",
            chosen => chosen == value,
        }
    }
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
    /// A search or status filter is set (an empty list then means no match,
    /// not no keys).
    filtered: bool,
    notice: Option<&'a str>,
    /// A refusal of a row's action, shown above the list.
    error: Option<&'a str>,
    /// A refusal of the generate form, shown inside its drawer.
    form_error: Option<&'a str>,
    form: &'a GenerateForm,
    scope_choices: Vec<ScopeChoice>,
    grace_choices: &'a [(&'a str, &'a str)],
    expiry_choices: &'a [(&'a str, &'a str)],
    /// The mailboxes a new key may be restricted to.
    mailboxes: Vec<crate::mailboxes::MailboxRow>,
}

framed!(KeysTemplate);

const NEXT: &str = "/settings/api-keys";

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/api-keys")
            .route(web::get().to(keys_page))
            .route(web::post().to(generate_key)),
    )
    .route("/settings/api-keys/{id}/rotate", web::post().to(rotate_key))
    .route("/settings/api-keys/{id}/revoke", web::post().to(revoke_key));
}

/// What the page lists: the workspace's keys, and its
/// mailboxes (a key may be restricted to one).
struct KeysView {
    rows: Vec<apikeys::KeyRow>,
    mailboxes: Vec<crate::mailboxes::MailboxRow>,
}

/// The keys of `ctx`'s workspace that the query's search and status pick, for
/// owners and admins (members see none).
fn load_keys(conn: &mut DbConn, ctx: &Context, q: &KeysQuery) -> Result<KeysView, Error> {
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
    Ok(KeysView { rows, mailboxes })
}

/// Where a refusal is shown: above the list (a row's action), or in the
/// generate drawer with the form as it was sent.
enum Refusal<'a> {
    None,
    Row(&'a str),
    Generate(&'a str, &'a GenerateForm),
}

/// The page for `ctx`; after a refused form, with its refusal.
fn render_keys(ctx: &Context, view: &KeysView, q: &KeysQuery, refusal: Refusal) -> Page {
    let empty = GenerateForm::default();
    let (error, form_error, form) = match refusal {
        Refusal::None => (None, None, &empty),
        Refusal::Row(e) => (Some(e), None, &empty),
        Refusal::Generate(e, form) => (None, Some(e), form),
    };
    let query = q.q.as_deref().unwrap_or("");
    let status = q.status.as_deref().unwrap_or("");
    let now = db::now();
    let page = KeysTemplate {
        frame: Frame::of(ctx, "keys"),
        api_access: accounts::plan_includes_api(&ctx.current.plan),
        keys: view.rows.iter().map(|r| key_line(view, r, now)).collect(),
        query,
        status,
        filtered: !query.trim().is_empty() || !status.is_empty(),
        notice: notice_text(q.notice.as_deref()),
        error,
        form_error,
        form,
        scope_choices: scope_choices(),
        grace_choices: GRACE_CHOICES,
        expiry_choices: EXPIRY_CHOICES,
        mailboxes: view.mailboxes.clone(),
    };
    let refused = page.error.is_some() || page.form_error.is_some();
    Page::render(form_status(ctx.role, refused), &page)
}

/// One key's row of the list, as of `now`.
fn key_line(view: &KeysView, r: &apikeys::KeyRow, now: i64) -> KeyLine {
    let active = r.key.status_at(now) == apikeys::KeyStatus::Active;
    KeyLine {
        id: r.key.id.clone(),
        name: r.key.name.clone(),
        prefix: r.key.prefix(),
        access: r.key.access_level().label(),
        allowed_ips: r.key.allowed_ip_list().unwrap_or_default(),
        last_used: When::of(r.key.last_used_at, now, "never"),
        never_used: active && r.key.last_used_at.is_none(),
        unused: r.key.unused_for_30_days(now),
        expires: last_day(r.key.expires_at),
        expiring_soon: r.key.expiring_soon(now),
        grace_until: day(r.key.grace_ends_at(now), ""),
        status: r.key.status_at(now).as_str(),
        mailbox: restricted_to(&view.mailboxes, r.key.mailbox_id.as_deref()),
    }
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

async fn keys_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |_, conn, ctx, q: &KeysQuery| {
        let view = load_keys(conn, ctx, q)?;
        Ok(render_keys(ctx, &view, q, Refusal::None))
    })
    .await
}

/// The page again after a refused form, with its refusal: unfiltered,
/// without a notice.
fn refused_form(conn: &mut DbConn, ctx: &Context, refusal: Refusal) -> Result<Page, Stop> {
    let q = KeysQuery::default();
    let view = load_keys(conn, ctx, &q)?;
    Ok(render_keys(ctx, &view, &q, refusal))
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

/// The one showing of a new or rotated key's secret.
fn show_secret(issued: &apikeys::IssuedKey, notice: &str) -> Page {
    let page = SecretTemplate {
        grace_until: day(issued.key.grace_ends_at(db::now()), ""),
        name: &issued.key.name,
        access: issued.key.access_level().label(),
        expires: last_day(issued.key.expires_at),
        secret: &issued.secret,
        workspace_id: &issued.key.workspace_id,
        notice,
        rotated: notice.starts_with("key_rotated"),
    };
    Page::render(StatusCode::OK, &page)
}

fn keys_url(workspace_id: &str, notice: &str) -> String {
    format!("/settings/api-keys?workspace={workspace_id}&notice={notice}")
}

async fn generate_key(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |_, conn, post| {
        let ctx = manager_of_posted(conn, post, "generate API keys", NEXT)?;
        let name = field(&post.form, "name");
        let created = new_key_from(&post.form, &ctx.current.id, &name)
            .and_then(|spec| apikeys::create_key(conn, &spec, by(&ctx, post)));
        match created {
            Ok(issued) => Ok(show_secret(&issued, "key_created")),
            Err(e) => {
                let words = refusal_words(e)?;
                let sent = GenerateForm::from_post(&post.form);
                refused_form(conn, &ctx, Refusal::Generate(&words, &sent))
            }
        }
    })
    .await
}

/// The generate form as a new key: the access level (a checkbox per scope for
/// custom; the boxes are ignored for the fixed levels, which a person may pick
/// after ticking some), the expiry, and the allowed addresses.
fn new_key_from<'a>(
    form: &'a Params,
    ws: &'a str,
    name: &'a str,
) -> Result<apikeys::NewKey<'a>, Error> {
    let access = access_from(form)?;
    let expires_at = apikeys::parse_expiry(Some(&chosen_expiry(form)?))?;
    let allowed_ips = allowed_ips_from(form)?;
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

/// The access level a form chose (`access`, and the ticked `scope`s for custom).
pub(super) fn access_from(form: &Params) -> Result<Access, Error> {
    let level = field(form, "access");
    let chosen = if level == "custom" {
        form.all("scope")
    } else {
        Vec::new()
    };
    Access::with_scopes(&level, &chosen)
}

/// The allowed addresses a form gave (separated by commas, spaces or lines;
/// empty for anywhere).
pub(super) fn allowed_ips_from(form: &Params) -> Result<Option<apikeys::IpAllowList>, Error> {
    let raw_ips = field(form, "allowed_ips");
    let entries: Vec<&str> = raw_ips
        .split([',', ' ', '\t', '\r', '\n'])
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    apikeys::IpAllowList::parse_entries(&entries)
        .map(Some)
        .map_err(|e| Error::invalid(format!("Allowed addresses: {e}")))
}

/// The expiry presets of the generate form: a value of `expiry` and its words.
const EXPIRY_CHOICES: &[(&str, &str)] = &[
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("date", "On a date I choose"),
    ("never", "Never expires"),
];

/// The last day the form chose, as `YYYY-MM-DD`, or empty for never: a preset
/// (`expiry` = days from today, `never`) or a date (`expiry=date`, `expires`).
/// A form without `expiry` (older pages, scripts) reads `expires` alone.
fn chosen_expiry(form: &Params) -> Result<String, Error> {
    let preset = field(form, "expiry");
    match preset.as_str() {
        "" | "date" => Ok(field(form, "expires")),
        "never" => Ok(String::new()),
        days => {
            let days: i64 = days
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| Error::invalid("Expiration: choose one of the offered periods"))?;
            let last = chrono::Utc::now().date_naive() + chrono::Days::new(days as u64);
            Ok(last.format("%Y-%m-%d").to_string())
        }
    }
}

const MANAGE: Guard = Guard {
    what: "manage its API keys",
    missing: "No such API key.",
    next: NEXT,
};

/// A key for an action by a manager of its workspace.
fn managed_key(
    conn: &mut DbConn,
    post: &FormPost,
    id: &str,
) -> Result<(Box<Context>, apikeys::ApiKey), Stop> {
    let found = apikeys::find(conn, id);
    managed(conn, post, &MANAGE, found, |k| &k.workspace_id)
}

/// The grace period the rotate form chose for the old secret, in seconds
/// (none when left empty).
fn chosen_grace(form: &Params) -> Result<Option<u32>, String> {
    let raw = field(form, "grace");
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_grace(&raw)
        .map(Some)
        .map_err(|e| format!("Grace period: {e}"))
}

/// A rotation, with the grace period the form chose for the old secret.
async fn rotate_key(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, key) = managed_key(conn, post, &path)?;
        let grace = match chosen_grace(&post.form) {
            Ok(grace) => grace,
            Err(msg) => return refused_form(conn, &ctx, Refusal::Row(&msg)),
        };
        let cache = &svc.credentials.cache;
        let issued = apikeys::rotate_with_grace(conn, cache, &key.id, grace, by(&ctx, post))
            .map_err(refused_conflict)?;
        let notice = match grace {
            Some(_) => "key_rotated_grace",
            None => "key_rotated",
        };
        Ok(show_secret(&issued, notice))
    })
    .await
}

/// A revocation, with the key's name typed to confirm it.
async fn revoke_key(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, key) = managed_key(conn, post, &path)?;
        if field(&post.form, "confirm_name").trim() != key.name {
            let msg = format!("To revoke, type the key's name exactly: {}", key.name);
            return refused_form(conn, &ctx, Refusal::Row(&msg));
        }
        let cache = &svc.credentials.cache;
        apikeys::revoke(conn, cache, &key.id, by(&ctx, post)).map_err(refused_conflict)?;
        Ok(Page::SeeOther(keys_url(&key.workspace_id, "key_revoked")))
    })
    .await
}
