//! The authorized apps page and the two-step revoke.

use super::*;

impl From<Refusal> for AppOutcome {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoAccess(a) => AppOutcome::NoAccess(a),
            Refusal::Refused(status, msg) => AppOutcome::Refused(status, msg),
        }
    }
}

struct AppLine {
    id: String,
    app_name: String,
    permissions: Vec<String>,
    authorized_by: String,
    authorized_at: String,
    last_used: String,
    chart: String,
    status: &'static str,
    /// For apps nobody reviewed: how they were registered, and where their
    /// codes go.
    unreviewed: Option<String>,
    code_goes_to: String,
}

#[derive(Template)]
#[template(path = "settings_apps.html")]
struct AppsTemplate<'a> {
    tab: &'a str,
    workspaces: &'a [Workspace],
    current: &'a Workspace,
    user_email: &'a str,
    csrf_token: &'a str,
    can_manage: bool,
    apps: Vec<AppLine>,
    notice: Option<&'a str>,
}

pub fn permission_words(stored: &str) -> Vec<String> {
    scopes::split(stored)
        .iter()
        .map(|s| {
            scopes::info(s)
                .map(|i| i.description.to_string())
                .unwrap_or_else(|| s.clone())
        })
        .collect()
}

pub(super) async fn apps_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    let wanted = q.workspace.clone();
    let result = crate::http::with_conn(&svc, move |_, conn| {
        let ctx = match context(conn, cookie, wanted.as_deref())? {
            Access_::Ok(ctx) => ctx,
            other => return Ok(Err(other)),
        };
        let rows = if ctx.role.can_manage() {
            authorizations::list_for_workspace(conn, &ctx.current.id)?
        } else {
            Vec::new()
        };
        let usage = load_usage(
            conn,
            crate::credentials::usage::AUTHORIZATION,
            rows.iter().map(|r| r.authorization.id.clone()).collect(),
        )?;
        Ok(Ok((ctx, rows, usage)))
    })
    .await;
    match result {
        Ok(Ok((ctx, rows, usage))) => {
            let apps = rows
                .into_iter()
                .map(|r| AppLine {
                    id: r.authorization.id.clone(),
                    app_name: r.app_name,
                    permissions: permission_words(&r.authorization.scopes),
                    authorized_by: r.authorized_by,
                    authorized_at: day(Some(r.authorization.created_at), ""),
                    last_used: day(r.authorization.last_used_at, "never"),
                    chart: chart(&usage, &r.authorization.id),
                    status: r.authorization.status(),
                    unreviewed: crate::http::pages::unreviewed_note(&r.client),
                    code_goes_to: r
                        .client
                        .redirect_uri_list()
                        .iter()
                        .map(|u| crate::oauth::clients::code_destination(u))
                        .fold(Vec::<String>::new(), |mut all, d| {
                            if !all.contains(&d) {
                                all.push(d);
                            }
                            all
                        })
                        .join(", "),
                })
                .collect();
            let Ok(body) = AppsTemplate {
                tab: "apps",
                workspaces: &ctx.workspaces,
                current: &ctx.current,
                user_email: &ctx.user.email,
                csrf_token: &ctx.session.csrf_token,
                can_manage: ctx.role.can_manage(),
                apps,
                notice: notice_text(q.notice.as_deref()),
            }
            .render() else {
                return crate::http::render_failed();
            };
            role_page(&ctx, body)
        }
        Ok(Err(a)) => no_access(a, "/settings/authorized-apps"),
        Err(e) => internal_error(&e),
    }
}

#[derive(Template)]
#[template(path = "confirm_revoke_app.html")]
struct ConfirmTemplate<'a> {
    id: &'a str,
    app_name: &'a str,
    workspace_name: &'a str,
    workspace_id: &'a str,
    csrf_token: &'a str,
}

enum AppOutcome {
    Confirm(String, String, String, String, String),
    Done(String),
    Refused(StatusCode, String),
    NoAccess(Access_),
}

pub(super) async fn revoke_app(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let result = crate::http::with_conn(&svc, move |svc: &Services, conn| {
        let authorization = match authorizations::find(conn, &id) {
            Ok(a) => Some(a),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let workspace_id = authorization.as_ref().map(|a| a.workspace_id.clone());
        let ctx = match manager_of(
            conn,
            &post,
            workspace_id.as_deref(),
            "revoke its apps",
            "No such authorization.",
        )? {
            Ok(ctx) => ctx,
            Err(refusal) => return Ok(refusal.into()),
        };
        let Some(authorization) = authorization else {
            return Ok(AppOutcome::Refused(
                StatusCode::NOT_FOUND,
                "No such authorization.".into(),
            ));
        };
        if field(&post.form, "confirm") != "yes" {
            let app = crate::oauth::clients::find(conn, &authorization.client_id)?
                .map(|c| c.name)
                .unwrap_or_default();
            return Ok(AppOutcome::Confirm(
                id.clone(),
                app,
                ctx.current.name.clone(),
                ctx.current.id.clone(),
                ctx.session.csrf_token.clone(),
            ));
        }
        authorizations::revoke(
            conn,
            &svc.credentials.cache,
            &id,
            authorizations::Cause::Person {
                actor: &ctx.user.id,
                address: Some(&post.address),
            },
        )?;
        Ok(AppOutcome::Done(format!(
            "/settings/authorized-apps?workspace={}&notice=app_revoked",
            authorization.workspace_id
        )))
    })
    .await;
    match result {
        Ok(AppOutcome::Confirm(id, app_name, workspace_name, workspace_id, csrf)) => {
            let Ok(body) = ConfirmTemplate {
                id: &id,
                app_name: &app_name,
                workspace_name: &workspace_name,
                workspace_id: &workspace_id,
                csrf_token: &csrf,
            }
            .render() else {
                return crate::http::render_failed();
            };
            html(StatusCode::OK, body)
        }
        Ok(AppOutcome::Done(url)) => redirect(StatusCode::SEE_OTHER, &url),
        Ok(AppOutcome::Refused(status, msg)) => error_page(status, &msg),
        Ok(AppOutcome::NoAccess(a)) => no_access(a, "/settings/authorized-apps"),
        Err(e) => internal_error(&e),
    }
}
