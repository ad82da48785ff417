//! The team page: a workspace's members with role and when they joined. Owners
//! add existing users by email, change roles and remove members (which revokes
//! the apps the member authorized there); admins see the list. The last owner
//! is never removed or demoted (`accounts::members`).

use super::*;
use crate::accounts::audit::Actor;
use crate::accounts::members::{self, Member};
use crate::oauth::authorizations;

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
            joined: when_html(Some(m.joined_at), ""),
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

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/team")
            .route(web::get().to(team_page))
            .route(web::post().to(add_member)),
    )
    .route("/settings/team/{user}/role", web::post().to(change_role))
    .route(
        "/settings/team/{user}/remove",
        web::post().to(remove_member),
    );
}

async fn team_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    show(svc, req, NEXT, |_, conn, ctx, q: &KeysQuery| {
        render_team(conn, ctx, q.notice.as_deref(), None)
    })
    .await
}

/// The guard of every team change: a manager of the workspace the form names,
/// with a valid CSRF token, who is also an owner (admins may read the team,
/// not change it).
fn owner_of(conn: &mut DbConn, post: &FormPost) -> Result<Box<Context>, Stop> {
    let ctx = manager_of_posted(conn, post, "see its team", NEXT)?;
    if ctx.role != Role::Owner {
        return Err(Stop::refused(
            StatusCode::FORBIDDEN,
            "Only owners of the workspace can change its team.",
        ));
    }
    Ok(ctx)
}

/// After a change: back to the team with `notice`; a refused change (bad role,
/// unknown email, last owner…) shows the page with the reason; anything else
/// is an error.
fn changed<T>(
    conn: &mut DbConn,
    ctx: &Context,
    change: Result<T, Error>,
    notice: &str,
) -> Result<Page, Stop> {
    match change {
        Ok(_) => Ok(Page::SeeOther(team_url(&ctx.current.id, notice))),
        Err(Error::Invalid(m) | Error::NotFound(m) | Error::Conflict(m)) => {
            Ok(render_team(conn, ctx, None, Some(&m))?)
        }
        Err(other) => Err(other.into()),
    }
}

/// A change to the role the form chose, by an owner.
fn role_change<T>(
    conn: &mut DbConn,
    post: &FormPost,
    notice: &str,
    change: impl FnOnce(&mut DbConn, &Context, Role) -> Result<T, Error>,
) -> Result<Page, Stop> {
    let ctx = owner_of(conn, post)?;
    let done = Role::parse(&field(&post.form, "role")).and_then(|role| change(conn, &ctx, role));
    changed(conn, &ctx, done, notice)
}

async fn add_member(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |_, conn, post| {
        let email = field(&post.form, "email");
        let from = Some(post.address.as_str());
        role_change(conn, post, "member_added", |conn, ctx, role| {
            members::add_by_email(conn, &ctx.current.id, &email, role, &ctx.user.id, from)
        })
    })
    .await
}

async fn change_role(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let from = Some(post.address.as_str());
        role_change(conn, post, "role_changed", |conn, ctx, role| {
            let cache = &svc.credentials.cache;
            let by = Actor {
                id: &ctx.user.id,
                client_address: from,
            };
            authorizations::change_role(conn, cache, &ctx.current.id, &path, role, by)
        })
    })
    .await
}

/// Two steps: the first post shows what removal does (their authorizations
/// are revoked); the second, with `confirm=yes`, removes.
async fn remove_member(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    let user = path.into_inner();
    on_post(svc, post, move |svc, conn, post| {
        let ctx = owner_of(conn, post)?;
        if !confirmed(&post.form) {
            return confirm_removal(conn, &ctx, &user);
        }
        let cache = &svc.credentials.cache;
        let removed =
            authorizations::remove_member(conn, cache, &ctx.current.id, &user, &ctx.user.id);
        changed(conn, &ctx, removed, "member_removed")
    })
    .await
}

fn confirm_removal(conn: &mut DbConn, ctx: &Context, user_id: &str) -> Result<Page, Stop> {
    let Some(member) = members::list(conn, &ctx.current.id)?
        .into_iter()
        .find(|m| m.user_id == user_id)
    else {
        return Err(Stop::refused(
            StatusCode::NOT_FOUND,
            "No such member of this workspace.",
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
