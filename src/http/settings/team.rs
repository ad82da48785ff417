//! The team page: a workspace's members with role and when they joined. Owners
//! add existing users by email, change roles and remove members (which revokes
//! the apps the member authorized there); admins see the list. The last owner
//! is never removed or demoted (`accounts::members`).

use super::*;
use crate::accounts::members::{self, Member};

struct MemberLine {
    user_id: String,
    email: String,
    role: &'static str,
    joined: String,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "settings_team.html")]
struct TeamTemplate<'a> {
    frame: Frame<'a>,
    is_owner: bool,
    members: Vec<MemberLine>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

framed!(TeamTemplate);

#[derive(Template)]
#[template(path = "confirm_remove_member.html")]
struct ConfirmTemplate<'a> {
    user_id: &'a str,
    email: &'a str,
    workspace_name: &'a str,
    workspace_id: &'a str,
    csrf_token: &'a str,
}

const NEXT: &str = "/settings/team";

fn team_url(workspace_id: &str, notice: &str) -> String {
    format!("/settings/team?workspace={workspace_id}&notice={notice}")
}

/// The page for `ctx`, with an optional notice or error.
fn render_team(
    conn: &mut DbConn,
    ctx: &Context,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Page, Error> {
    let members = if ctx.role.can_manage() {
        members::list(conn, &ctx.current.id)?
    } else {
        Vec::new()
    };
    let members = members
        .into_iter()
        .map(|m: Member| MemberLine {
            is_self: m.user_id == ctx.user.id,
            user_id: m.user_id,
            email: m.email,
            role: m.role.as_str(),
            joined: day(Some(m.joined_at), ""),
        })
        .collect();
    let status = match error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => status_for(ctx.role),
    };
    Ok(Page::render(
        status,
        &TeamTemplate {
            frame: Frame::of(ctx, "team"),
            is_owner: ctx.role == Role::Owner,
            members,
            notice: notice_text(notice),
            error,
        },
    ))
}

pub(super) async fn team_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    respond(
        crate::http::with_conn(&svc, move |_, conn| {
            match context(conn, cookie, q.workspace.as_deref())? {
                Access_::Ok(ctx) => render_team(conn, &ctx, q.notice.as_deref(), None),
                other => Ok(Page::NoAccess(other, NEXT)),
            }
        })
        .await,
    )
}

/// The guard of every team change: a manager with a valid CSRF token who is
/// also an owner (admins may read the team, not change it).
fn owner_of(
    conn: &mut DbConn,
    post: &FormPost,
    workspace_id: &str,
) -> Result<Result<Box<Context>, Page>, Error> {
    let ctx = match manager_of(
        conn,
        post,
        Some(workspace_id),
        "see its team",
        "No such workspace.",
    )? {
        Ok(ctx) => ctx,
        Err(r) => return Ok(Err(Page::refusal(r, NEXT))),
    };
    if ctx.role != Role::Owner {
        return Ok(Err(Page::Refused(
            StatusCode::FORBIDDEN,
            "Only owners of the workspace can change its team.".into(),
        )));
    }
    Ok(Ok(ctx))
}

/// A refused change (bad role, unknown email, last owner…) shows the page with
/// the reason; anything else is an error.
fn refused_change(conn: &mut DbConn, ctx: &Context, e: Error) -> Result<Page, Error> {
    match e {
        Error::Invalid(m) | Error::NotFound(m) | Error::Conflict(m) => {
            render_team(conn, ctx, None, Some(&m))
        }
        other => Err(other),
    }
}

pub(super) async fn add_member(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    respond(
        crate::http::with_conn(&svc, move |_, conn| {
            let ws = field(&post.form, "workspace_id");
            let ctx = match owner_of(conn, &post, &ws)? {
                Ok(ctx) => ctx,
                Err(page) => return Ok(page),
            };
            let added = Role::parse(&field(&post.form, "role")).and_then(|role| {
                let email = field(&post.form, "email");
                members::add_by_email(conn, &ws, &email, role, &ctx.user.id, Some(&post.address))
            });
            match added {
                Ok(_) => Ok(Page::SeeOther(team_url(&ws, "member_added"))),
                Err(e) => refused_change(conn, &ctx, e),
            }
        })
        .await,
    )
}

pub(super) async fn change_role(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = path.into_inner();
    respond(
        crate::http::with_conn(&svc, move |_, conn| {
            let ws = field(&post.form, "workspace_id");
            let ctx = match owner_of(conn, &post, &ws)? {
                Ok(ctx) => ctx,
                Err(page) => return Ok(page),
            };
            let changed = Role::parse(&field(&post.form, "role")).and_then(|role| {
                members::change_role(conn, &ws, &user, role, &ctx.user.id, Some(&post.address))
            });
            match changed {
                Ok(_) => Ok(Page::SeeOther(team_url(&ws, "role_changed"))),
                Err(e) => refused_change(conn, &ctx, e),
            }
        })
        .await,
    )
}

/// Two steps: the first post shows what removal does (their authorizations
/// are revoked); the second, with `confirm=yes`, removes.
pub(super) async fn remove_member(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = path.into_inner();
    respond(
        crate::http::with_conn(&svc, move |svc: &Services, conn| {
            let ws = field(&post.form, "workspace_id");
            let ctx = match owner_of(conn, &post, &ws)? {
                Ok(ctx) => ctx,
                Err(page) => return Ok(page),
            };
            if field(&post.form, "confirm") != "yes" {
                return confirm_removal(conn, &ctx, &user);
            }
            let removed = authorizations::remove_member(
                conn,
                &svc.credentials.cache,
                &ws,
                &user,
                &ctx.user.id,
            );
            match removed {
                Ok(_) => Ok(Page::SeeOther(team_url(&ws, "member_removed"))),
                Err(e) => refused_change(conn, &ctx, e),
            }
        })
        .await,
    )
}

fn confirm_removal(conn: &mut DbConn, ctx: &Context, user_id: &str) -> Result<Page, Error> {
    let Some(member) = members::list(conn, &ctx.current.id)?
        .into_iter()
        .find(|m| m.user_id == user_id)
    else {
        return Ok(Page::Refused(
            StatusCode::NOT_FOUND,
            "No such member of this workspace.".into(),
        ));
    };
    Ok(Page::render(
        StatusCode::OK,
        &ConfirmTemplate {
            user_id,
            email: &member.email,
            workspace_name: &ctx.current.name,
            workspace_id: &ctx.current.id,
            csrf_token: &ctx.session.csrf_token,
        },
    ))
}
