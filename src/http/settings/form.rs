//! What the form posts of the settings pages share: the form read, the one
//! guard of every action on a workspace, and the answers a handler gives
//! before its end.

use super::*;
use crate::accounts::audit::Actor;
use actix_web::dev::Payload;
use actix_web::error::{ErrorInternalServerError, InternalError};
use actix_web::FromRequest;
use std::future::Future;
use std::pin::Pin;

/// A form POST of the settings pages, read before any database work (a form
/// too large is answered 413 before the handler runs).
pub(super) struct FormPost {
    pub(super) form: Params,
    pub(super) cookie: Option<String>,
    pub(super) address: String,
}

impl FromRequest for FormPost {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<FormPost, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            let svc = req
                .app_data::<Svc>()
                .cloned()
                .ok_or_else(|| ErrorInternalServerError("no services"))?;
            let body = read_body(payload.await?).await.map_err(|_| {
                let page = error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
                InternalError::from_response("the form is too large", page)
            })?;
            Ok(FormPost {
                form: Params::parse(&body),
                cookie: session_cookie(&req),
                address: client_address(&svc, &req),
            })
        })
    }
}

pub(super) fn field(p: &Params, name: &str) -> String {
    p.get(name).ok().flatten().unwrap_or("").to_string()
}

/// Whether the second step of a two-step form was sent (`confirm=yes`).
pub(super) fn confirmed(form: &Params) -> bool {
    field(form, "confirm") == "yes"
}

/// Why a handler answers before its end: with a page at once (a refusal, the
/// login), or with an error. `?` turns an area's error into one.
pub(super) enum Stop {
    Answer(Page),
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

impl Stop {
    pub(super) fn refused(status: StatusCode, msg: impl Into<String>) -> Stop {
        Stop::Answer(Page::Refused(status, msg.into()))
    }

    pub(super) fn settle(self) -> Result<Page, Error> {
        match self {
            Stop::Answer(page) => Ok(page),
            Stop::Failed(e) => Err(e),
        }
    }
}

/// Every form POST of the settings pages: `act` run with a connection off the
/// async workers, its page answered.
pub(super) async fn on_post<F>(svc: Svc, post: FormPost, act: F) -> HttpResponse
where
    F: FnOnce(&Services, &mut DbConn, &FormPost) -> Result<Page, Stop> + Send + 'static,
{
    respond(
        crate::http::with_conn(&svc, move |svc, conn| {
            act(svc, conn, &post).or_else(Stop::settle)
        })
        .await,
    )
}

/// An action's words for its guard: `what` completes "Only owners and admins
/// of the workspace can …"; `missing` is the 404's message; `next` is where
/// a login returns.
pub(super) struct Guard {
    pub(super) what: &'static str,
    pub(super) missing: &'static str,
    pub(super) next: &'static str,
}

impl Guard {
    fn not_found(&self) -> Stop {
        Stop::refused(StatusCode::NOT_FOUND, self.missing)
    }
}

/// Who acts in a form post, for the security log: the signed-in person, from
/// the request's client address.
pub(super) fn by<'a>(ctx: &'a Context, post: &'a FormPost) -> Actor<'a> {
    Actor {
        id: &ctx.user.id,
        client_address: Some(&post.address),
    }
}

/// A form's CSRF token checked against the session's.
pub(super) fn check_csrf(session_token: &str, form: &Params) -> Result<(), Stop> {
    if crate::crypto::ct_eq(session_token, &field(form, "csrf_token")) {
        return Ok(());
    }
    Err(Stop::refused(
        StatusCode::FORBIDDEN,
        "The form could not be verified (CSRF). Reload the page and try again.",
    ))
}

/// The one guard of every settings action: a signed-in person with a valid
/// CSRF token who is an owner or admin of `workspace_id` (the workspace of
/// the object acted on; `None` when no such object exists).
///
/// An object of a workspace this person is not a member of is answered
/// exactly as an unknown id, after the same session and CSRF checks: a 403
/// would confirm that the id exists elsewhere (OWASP Authorization Cheat
/// Sheet, insecure direct object references).
pub(super) fn manager_of(
    conn: &mut DbConn,
    post: &FormPost,
    workspace_id: Option<&str>,
    guard: &Guard,
) -> Result<Box<Context>, Stop> {
    let ctx = match context(conn, post.cookie.clone(), workspace_id)? {
        Access_::Ok(ctx) => ctx,
        other => return Err(Stop::Answer(Page::NoAccess(other, guard.next))),
    };
    check_csrf(&ctx.session.csrf_token, &post.form)?;
    let Some(workspace_id) = workspace_id.filter(|id| ctx.workspaces.iter().any(|w| w.id == *id))
    else {
        return Err(guard.not_found());
    };
    if ctx.current.id != workspace_id || !ctx.role.can_manage() {
        return Err(Stop::refused(
            StatusCode::FORBIDDEN,
            format!(
                "Only owners and admins of the workspace can {}.",
                guard.what
            ),
        ));
    }
    Ok(ctx)
}

/// `manager_of` the workspace the form names (`workspace_id`), for an action
/// that `what` names; the context's current workspace is then that one.
pub(super) fn manager_of_posted(
    conn: &mut DbConn,
    post: &FormPost,
    what: &'static str,
    next: &'static str,
) -> Result<Box<Context>, Stop> {
    let guard = Guard {
        what,
        missing: "No such workspace.",
        next,
    };
    manager_of(conn, post, Some(&field(&post.form, "workspace_id")), &guard)
}

/// An object of a workspace (`found` by its id) for an action by a manager of
/// that workspace; an unknown id is answered as `guard.missing` after the same
/// session and CSRF checks.
pub(super) fn managed<T>(
    conn: &mut DbConn,
    post: &FormPost,
    guard: &Guard,
    found: Result<T, Error>,
    workspace_of: fn(&T) -> &str,
) -> Result<(Box<Context>, T), Stop> {
    let found = match found {
        Ok(object) => Some(object),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let ctx = manager_of(conn, post, found.as_ref().map(workspace_of), guard)?;
    let object = found.ok_or_else(|| guard.not_found())?;
    Ok((ctx, object))
}

/// A conflicting state (an object already revoked, …) answered as a 409; any
/// other error stays one.
pub(super) fn refused_conflict(e: Error) -> Stop {
    match e {
        Error::Conflict(m) => Stop::refused(StatusCode::CONFLICT, m),
        e => e.into(),
    }
}

/// The words of an area's refusal (bad input, a taken name, a state that
/// forbids the action), to show on the form's page; database faults stay
/// errors.
pub(super) fn refusal_words(e: Error) -> Result<String, Stop> {
    match e {
        Error::Db(_) | Error::Pool(_) => Err(e.into()),
        e => Ok(e.to_string()),
    }
}
