//! Developer apps: any signed-in person registers OAuth apps of their own,
//! sees the client id and (once) the secret, rotates the secret, and deletes
//! the app, which revokes every authorization of it.

use super::*;
use crate::oauth::clients::{self, Client, NewClient};

struct DevAppLine {
    id: String,
    name: String,
    kind: &'static str,
    confidential: bool,
    redirect_uris: Vec<String>,
    created: String,
}

#[derive(Template)]
#[template(path = "settings_developer_apps.html")]
struct DevAppsTemplate<'a> {
    tab: &'a str,
    workspaces: &'a [Workspace],
    current: Option<&'a Workspace>,
    user_email: &'a str,
    csrf_token: &'a str,
    apps: Vec<DevAppLine>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    form_name: &'a str,
    form_uris: &'a str,
}

#[derive(Template)]
#[template(path = "developer_app_secret.html")]
struct DevSecretTemplate<'a> {
    name: &'a str,
    client_id: &'a str,
    secret: Option<&'a str>,
    rotated: bool,
    notice: &'a str,
}

/// The signed-in person (no workspace needed) and what the page shows.
struct DevView {
    session: Session,
    user: User,
    workspaces: Vec<Workspace>,
    apps: Vec<Client>,
}

enum DevOutcome {
    Page(DevView, Option<String>, String, String),
    Secret(Client, Option<String>, bool),
    Back(&'static str),
    Refused(StatusCode, String),
    Login,
}

fn load(conn: &mut DbConn, cookie: Option<String>) -> Result<Option<DevView>, Error> {
    let Some(cookie) = cookie else {
        return Ok(None);
    };
    let Some((session, user)) = crate::accounts::sessions::resolve(conn, &cookie)? else {
        return Ok(None);
    };
    let workspaces = accounts::workspaces_of(conn, &user.id)?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let apps = clients::list_developer_apps(conn, &user.id)?;
    Ok(Some(DevView {
        session,
        user,
        workspaces,
        apps,
    }))
}

fn dev_notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "app_created" => Some("App registered."),
        "secret_rotated" => Some("Client secret rotated. The old secret no longer works."),
        "app_deleted" => Some("App deleted. Every authorization of it was revoked."),
        _ => None,
    }
}

fn render(
    view: &DevView,
    notice: Option<&str>,
    error: Option<&str>,
    name: &str,
    uris: &str,
) -> HttpResponse {
    let apps = view
        .apps
        .iter()
        .map(|c| DevAppLine {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: if c.is_public {
                "Public"
            } else {
                "Confidential"
            },
            confidential: !c.is_public,
            redirect_uris: c.redirect_uri_list(),
            created: day(Some(c.created_at), ""),
        })
        .collect();
    let Ok(body) = (DevAppsTemplate {
        tab: "developer",
        workspaces: &view.workspaces,
        current: view.workspaces.first(),
        user_email: &view.user.email,
        csrf_token: &view.session.csrf_token,
        apps,
        notice,
        error,
        form_name: name,
        form_uris: uris,
    })
    .render() else {
        return crate::http::render_failed();
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, body)
}

fn finish(result: Result<DevOutcome, Error>) -> HttpResponse {
    match result {
        Ok(DevOutcome::Page(view, error, name, uris)) => {
            render(&view, None, error.as_deref(), &name, &uris)
        }
        Ok(DevOutcome::Secret(client, secret, rotated)) => {
            let notice = if rotated {
                "secret_rotated"
            } else {
                "app_created"
            };
            let Ok(body) = (DevSecretTemplate {
                name: &client.name,
                client_id: &client.id,
                secret: secret.as_deref(),
                rotated,
                notice,
            })
            .render() else {
                return crate::http::render_failed();
            };
            html(StatusCode::OK, body)
        }
        Ok(DevOutcome::Back(notice)) => redirect(
            StatusCode::SEE_OTHER,
            &format!("/settings/developer-apps?notice={notice}"),
        ),
        Ok(DevOutcome::Refused(status, msg)) => error_page(status, &msg),
        Ok(DevOutcome::Login) => login_redirect("/settings/developer-apps"),
        Err(e) => internal_error(&e),
    }
}

pub(super) async fn developer_apps_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<KeysQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let cookie = session_cookie(&req);
    match crate::http::with_conn(&svc, move |_, conn| load(conn, cookie)).await {
        Ok(Some(view)) => render(&view, dev_notice(q.notice.as_deref()), None, "", ""),
        Ok(None) => login_redirect("/settings/developer-apps"),
        Err(e) => internal_error(&e),
    }
}

/// The signed-in person behind a form post, with its CSRF token checked.
fn poster(conn: &mut DbConn, post: &FormPost) -> Result<Result<DevView, DevOutcome>, Error> {
    let Some(view) = load(conn, post.cookie.clone())? else {
        return Ok(Err(DevOutcome::Login));
    };
    if !crate::crypto::ct_eq(&view.session.csrf_token, &field(&post.form, "csrf_token")) {
        return Ok(Err(DevOutcome::Refused(
            StatusCode::FORBIDDEN,
            "The form could not be verified (CSRF). Reload the page and try again.".into(),
        )));
    }
    Ok(Ok(view))
}

pub(super) async fn create_developer_app(
    svc: Svc,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = crate::http::with_conn(&svc, move |_, conn| {
        let view = match poster(conn, &post)? {
            Ok(v) => v,
            Err(outcome) => return Ok(outcome),
        };
        let name = field(&post.form, "name");
        let uris_text = field(&post.form, "redirect_uris");
        let uris: Vec<String> = uris_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let public = field(&post.form, "client_type") == "public";
        match clients::create_developer_app(conn, &view.user.id, &name, &uris, public) {
            Ok(NewClient { client, secret, .. }) => Ok(DevOutcome::Secret(client, secret, false)),
            Err(Error::Invalid(msg)) => Ok(DevOutcome::Page(view, Some(msg), name, uris_text)),
            Err(e) => Err(e),
        }
    })
    .await;
    finish(result)
}

/// A POST on one of the person's own developer apps; another's is "no such app".
async fn app_action<F>(
    svc: Svc,
    req: HttpRequest,
    id: String,
    payload: web::Payload,
    act: F,
) -> HttpResponse
where
    F: FnOnce(&Services, &mut DbConn, &FormPost, DevView, Client) -> Result<DevOutcome, Error>
        + Send
        + 'static,
{
    let post = match form_post(&svc, &req, payload).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = crate::http::with_conn(&svc, move |svc: &Services, conn| {
        let view = match poster(conn, &post)? {
            Ok(v) => v,
            Err(outcome) => return Ok(outcome),
        };
        let Some(app) = view.apps.iter().find(|c| c.id == id).cloned() else {
            return Ok(DevOutcome::Refused(
                StatusCode::NOT_FOUND,
                "No such app.".into(),
            ));
        };
        act(svc, conn, &post, view, app)
    })
    .await;
    finish(result)
}

pub(super) async fn rotate_developer_app(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    app_action(
        svc,
        req,
        path.into_inner(),
        payload,
        |svc, conn, _, _, app| match clients::rotate_secret(conn, &svc.clients, &app.id) {
            Ok((client, secret)) => Ok(DevOutcome::Secret(client, Some(secret), true)),
            Err(Error::Conflict(msg)) => Ok(DevOutcome::Refused(StatusCode::CONFLICT, msg)),
            Err(e) => Err(e),
        },
    )
    .await
}

pub(super) async fn delete_developer_app(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    app_action(
        svc,
        req,
        path.into_inner(),
        payload,
        |svc, conn, post, view, app| {
            if field(&post.form, "confirm") != "yes" {
                let error = format!("To delete {}, tick the confirmation box.", app.name);
                return Ok(DevOutcome::Page(
                    view,
                    Some(error),
                    String::new(),
                    String::new(),
                ));
            }
            clients::delete(
                conn,
                &svc.clients,
                &svc.credentials.cache,
                &app.id,
                &view.user.id,
                Some(&post.address),
            )?;
            Ok(DevOutcome::Back("app_deleted"))
        },
    )
    .await
}
