//! The security log page.

use super::*;
use crate::accounts::audit::{self, Kind, NamedEvent};

pub(super) struct LogLine {
    pub(super) when: String,
    pub(super) action: &'static str,
    /// The key, app, person or mailbox, by name (its id when it is gone).
    pub(super) subject: String,
    /// Whether `subject` is an id, not a name.
    pub(super) subject_is_id: bool,
    pub(super) detail: String,
    pub(super) actor: String,
    pub(super) address: String,
}

/// A filter link: its label, the `kind` value ("" for all), and whether chosen.
struct KindLink {
    label: &'static str,
    value: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "settings_log.html")]
struct LogTemplate<'a> {
    frame: Frame<'a>,
    events: Vec<LogLine>,
    kinds: Vec<KindLink>,
    /// The chosen kind, "" for all.
    kind: &'a str,
    page: u32,
    newer: Option<u32>,
    older: Option<u32>,
}

framed!(LogTemplate);

/// Events on one page of the log.
pub(super) const PER_PAGE: u32 = 50;

#[derive(serde::Deserialize, Default)]
struct LogQuery {
    workspace: Option<String>,
    kind: Option<String>,
    page: Option<u32>,
}

impl WorkspaceQuery for LogQuery {
    fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }
}

const NEXT: &str = "/settings/security-log";

fn kind_label(kind: Option<Kind>) -> &'static str {
    match kind {
        None => "All",
        Some(Kind::Keys) => "API keys",
        Some(Kind::Apps) => "Authorized apps",
        Some(Kind::Team) => "Team",
        Some(Kind::Mailboxes) => "Mailboxes",
    }
}

pub(super) fn line(e: NamedEvent) -> LogLine {
    let NamedEvent {
        event: e,
        subject_name,
        actor_name,
    } = e;
    let actor = match actor_name {
        Some(name) => name,
        None if e.actor == apikeys::CLI_ACTOR => "keygate CLI".to_string(),
        None if e.actor == apikeys::leak_reports::LEAK_REPORT_ACTOR => "a leak report".to_string(),
        None => e.actor.clone(),
    };
    LogLine {
        when: when_html(Some(e.created_at), ""),
        action: action_words(&e.action),
        subject_is_id: subject_name.is_none(),
        subject: subject_name.unwrap_or(e.subject),
        detail: e.detail.unwrap_or_default(),
        actor,
        address: e.client_address.unwrap_or_default(),
    }
}

fn render_log(conn: &mut DbConn, ctx: &Context, q: &LogQuery) -> Result<Page, Error> {
    let kind = q.kind.as_deref().and_then(Kind::parse);
    let page = q.page.unwrap_or(1).max(1);
    let (events, has_older) = if ctx.role.can_manage() {
        let p = audit::page(
            conn,
            &crate::node::names::AreaNames,
            &ctx.current.id,
            kind,
            page,
            PER_PAGE,
        )?;
        (p.events.into_iter().map(line).collect(), p.has_older)
    } else {
        (Vec::new(), false)
    };
    let kinds = std::iter::once(None)
        .chain(Kind::ALL.into_iter().map(Some))
        .map(|k| KindLink {
            label: kind_label(k),
            value: k.map_or("", Kind::as_str),
            current: k == kind,
        })
        .collect();
    Ok(Page::render(
        status_for(ctx.role),
        &LogTemplate {
            frame: Frame::of(ctx, "log"),
            events,
            kinds,
            kind: kind.map_or("", Kind::as_str),
            page,
            newer: (page > 1).then(|| page - 1),
            older: has_older.then(|| page + 1),
        },
    ))
}

fn action_words(action: &str) -> &'static str {
    match action {
        "api_key.generated" => "API key generated",
        "api_key.rotated" => "API key rotated",
        "api_key.updated" => "API key edited",
        "api_key.revoked" => "API key revoked",
        "api_key.revoked_leaked" => "API key revoked: reported leaked",
        "app.authorized" => "App authorized",
        "app.revoked" => "App revoked",
        "app.revoked_code_replay" => "App revoked: a code was used twice",
        "app.revoked_refresh_reuse" => "App revoked: a used refresh token came back",
        "app.revoked_by_client" => "App revoked by the app itself",
        "app.revoked_approver_removed" => {
            "App revoked: its approver is no longer an owner or admin"
        }
        "access_token.revoked_by_client" => "Access token revoked by the app",
        "member.removed" => "Member removed",
        "app.revoked_member_removed" => "App revoked: the person who approved it left",
        "app.revoked_member_demoted" => {
            "App revoked: the person who approved it is no longer an owner or admin"
        }
        "member.added_owner" => "Member added as owner",
        "member.added_admin" => "Member added as admin",
        "member.added_member" => "Member added",
        "member.role_owner" => "Role changed to owner",
        "member.role_admin" => "Role changed to admin",
        "member.role_member" => "Role changed to member",
        audit::SIGNED_IN_WITH_PROVIDER => "Signed in through the identity provider",
        audit::IDENTITY_LINKED => "Identity provider account linked",
        "app.revoked_client_deleted" => "App revoked: its developer deleted it",
        "mailbox.created" => "Mailbox created",
        "mailbox.deleted" => "Mailbox deleted",
        "mailbox_auth_key.created" => "Mailbox auth key created",
        "mailbox_auth_key.disabled" => "Mailbox auth key disabled",
        "mailbox_auth_key.enabled" => "Mailbox auth key enabled",
        "mailbox_auth_key.rotated" => "Mailbox auth key rotated",
        "mailbox_auth_key.deleted" => "Mailbox auth key deleted",
        "workspace.created" => "Workspace created",
        "workspace.updated" => "Workspace changed",
        "workspace.deleted" => "Workspace deleted",
        "person.email_changed" => "Person's email changed",
        "person.disabled" => "Person disabled",
        "person.enabled" => "Person enabled",
        "app.revoked_person_disabled" => "App revoked: the person who approved it was disabled",
        "app.revoked_person_deleted" => "App revoked: the person who approved it was deleted",
        "app.revoked_workspace_deleted" => "App revoked: the workspace was deleted",
        _ => "Other",
    }
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings/security-log", web::get().to(log_page));
}

async fn log_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |_, conn, ctx, q: &LogQuery| {
        render_log(conn, ctx, q)
    })
    .await
}
