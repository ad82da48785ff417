//! The security log page.

use super::*;

struct LogLine {
    when: String,
    action: &'static str,
    subject: String,
    detail: String,
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
        "member.added_owner" => "Member added as owner",
        "member.added_admin" => "Member added as admin",
        "member.added_member" => "Member added",
        "member.role_owner" => "Role changed to owner",
        "member.role_admin" => "Role changed to admin",
        "member.role_member" => "Role changed to member",
        _ => "Other",
    }
}

pub(super) async fn log_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let result = crate::http::with_conn(&svc, move |_, conn| {
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
                detail: e.detail.unwrap_or_default(),
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
