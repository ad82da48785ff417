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
    identity: Option<super::view::LinkedIdentity>,
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
    identity: Option<super::view::LinkedIdentity>,
    workspaces: Vec<Workspace>,
    apps: Vec<Client>,
}

const NEXT: &str = "/settings/developer-apps";

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/developer-apps")
            .route(web::get().to(developer_apps_page))
            .route(web::post().to(create_developer_app)),
    )
    .route(
        "/settings/developer-apps/{id}/rotate",
        web::post().to(rotate_developer_app),
    )
    .route(
        "/settings/developer-apps/{id}/delete",
        web::post().to(delete_developer_app),
    );
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
    let identity = super::view::LinkedIdentity::load(conn, &user.id)?;
    Ok(Some(DevView {
        session,
        identity,
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

/// What a refused registration left to show again.
#[derive(Default)]
struct Form<'a> {
    error: Option<&'a str>,
    name: &'a str,
    uris: &'a str,
}

/// The page, with a notice, or a refused form (a 400).
fn render(view: &DevView, notice: Option<&str>, form: Form) -> Page {
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
            created: when_html(Some(c.created_at), ""),
        })
        .collect();
    let page = DevAppsTemplate {
        tab: "developer",
        workspaces: &view.workspaces,
        current: view.workspaces.first(),
        user_email: &view.user.email,
        csrf_token: &view.session.csrf_token,
        identity: view.identity.clone(),
        apps,
        notice,
        error: form.error,
        form_name: form.name,
        form_uris: form.uris,
    };
    let status = match form.error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    Page::render(status, &page)
}

/// The one showing of a new app's client id and secret, or of a rotated
/// secret.
fn show_secret(client: &Client, secret: Option<&str>, rotated: bool) -> Page {
    let page = DevSecretTemplate {
        name: &client.name,
        client_id: &client.id,
        secret,
        rotated,
        notice: if rotated {
            "secret_rotated"
        } else {
            "app_created"
        },
    };
    Page::render(StatusCode::OK, &page)
}

async fn developer_apps_page(svc: Svc, req: HttpRequest) -> HttpResponse {
    let q: KeysQuery = query(&req);
    let cookie = session_cookie(&req);
    respond(
        crate::http::with_conn(&svc, move |_, conn| {
            Ok(match load(conn, cookie)? {
                Some(view) => render(&view, dev_notice(q.notice.as_deref()), Form::default()),
                None => Page::NoAccess(Access_::Login, NEXT),
            })
        })
        .await,
    )
}

/// The signed-in person behind a form post, with its CSRF token checked.
fn poster(conn: &mut DbConn, post: &FormPost) -> Result<DevView, Stop> {
    let Some(view) = load(conn, post.cookie.clone())? else {
        return Err(Stop::Answer(Page::NoAccess(Access_::Login, NEXT)));
    };
    check_csrf(&view.session.csrf_token, &post.form)?;
    Ok(view)
}

async fn create_developer_app(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |_, conn, post| {
        let view = poster(conn, post)?;
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
            Ok(NewClient { client, secret, .. }) => {
                Ok(show_secret(&client, secret.as_deref(), false))
            }
            Err(Error::Invalid(msg)) => Ok(render(
                &view,
                None,
                Form {
                    error: Some(&msg),
                    name: &name,
                    uris: &uris_text,
                },
            )),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// One of the person's own developer apps, for an action on it; another's is
/// "no such app".
fn own_app(conn: &mut DbConn, post: &FormPost, id: &str) -> Result<(DevView, Client), Stop> {
    let view = poster(conn, post)?;
    let Some(app) = view.apps.iter().find(|c| c.id == id).cloned() else {
        return Err(Stop::refused(StatusCode::NOT_FOUND, "No such app."));
    };
    Ok((view, app))
}

async fn rotate_developer_app(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (_, app) = own_app(conn, post, &path)?;
        let (client, secret) =
            clients::rotate_secret(conn, &svc.clients, &app.id).map_err(refused_conflict)?;
        Ok(show_secret(&client, Some(&secret), true))
    })
    .await
}

/// A deletion, with the confirmation box ticked; it revokes every
/// authorization of the app.
async fn delete_developer_app(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (view, app) = own_app(conn, post, &path)?;
        if !confirmed(&post.form) {
            let error = format!("To delete {}, tick the confirmation box.", app.name);
            let form = Form {
                error: Some(&error),
                ..Form::default()
            };
            return Ok(render(&view, None, form));
        }
        let cache = &svc.credentials.cache;
        let (who, from) = (&view.user.id, Some(post.address.as_str()));
        clients::delete(conn, &svc.clients, cache, &app.id, who, from)?;
        Ok(Page::SeeOther(format!("{NEXT}?notice=app_deleted")))
    })
    .await
}
