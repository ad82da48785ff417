//! The OAuth endpoints: authorize (GET and POST), token, revoke, introspect.

use super::{pages, read_body, redirect, BodyError, Svc};
use crate::oauth::authorize::{self, Rejection};
use crate::oauth::client_auth::{self, Allow};
use crate::oauth::error::OAuthError;
use crate::oauth::{introspect, revoke, token, Params};
use crate::node::state::Services;
use actix_cors::Cors;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/oauth/authorize")
            .route(web::get().to(authorize_get))
            .route(web::post().to(authorize_post)),
    );
    // Browser-based public clients call these cross-origin; no cookies are involved.
    for (path, handler) in [
        ("/oauth/token", 0),
        ("/oauth/revoke", 1),
        ("/oauth/introspect", 2),
    ] {
        let cors = Cors::default()
            .allow_any_origin()
            .allowed_methods(["POST"])
            .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(3600);
        let route = match handler {
            0 => web::post().to(token_endpoint),
            1 => web::post().to(revoke_endpoint),
            _ => web::post().to(introspect_endpoint),
        };
        cfg.service(web::resource(path).wrap(cors).route(route));
    }
}

/// RFC 6749 §5.2: JSON error, 401 with `WWW-Authenticate` for `invalid_client`.
pub fn error_response(e: &OAuthError) -> HttpResponse {
    error_response_as(e, status_of(e))
}

/// The HTTP status of each OAuth error: RFC 6749 §5.2 (400, and 401 for
/// `invalid_client`), 429 for `slow_down`, 500 and 503 for the server's own.
pub fn status_of(e: &OAuthError) -> StatusCode {
    match e {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::SlowDown(_) => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn error_response_as(e: &OAuthError, status: StatusCode) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if matches!(e, OAuthError::InvalidClient(_)) {
        b.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"keygate\""));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        b.insert_header((header::RETRY_AFTER, "1"));
    }
    b.json(e)
}

fn no_store_json(value: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(value)
}

fn too_many(retry_after: u64) -> HttpResponse {
    let e = OAuthError::slow_down("too many failed requests; retry later");
    let mut r = error_response(&e);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    r
}

/// The form body of a token, revocation or introspection request.
async fn form_params(req: &HttpRequest, payload: web::Payload) -> Result<Params, HttpResponse> {
    if super::media_type(req).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(error_response(&OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        )));
    }
    match read_body(payload).await {
        Ok(body) => Ok(Params::parse(&body)),
        Err(BodyError::TooLarge) => Err(error_response_as(
            &OAuthError::invalid_request("the request body is too large"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )),
        Err(BodyError::Broken) => Err(error_response(&OAuthError::invalid_request(
            "unreadable request body",
        ))),
    }
}

fn authorization_header(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    match req.headers().get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| OAuthError::invalid_client("malformed Authorization header")),
    }
}

/// Client authentication with the client looked up in memory first, then in the
/// database (and remembered).
fn authenticate(
    svc: &Services,
    conn: &mut crate::db::DbConn,
    header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Result<crate::oauth::clients::Client, OAuthError> {
    client_auth::authenticate_with(
        |id| {
            if let Some(c) = svc.cache.client(id) {
                return Ok(Some((*c).clone()));
            }
            let found = crate::oauth::clients::find(conn, id)?;
            if let Some(c) = &found {
                svc.cache.put_client(c);
            }
            Ok(found)
        },
        header,
        params,
        allow,
    )
}

/// Client authentication from memory only; `None` when the client is not cached.
fn authenticate_cached(
    svc: &Services,
    header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Option<Result<crate::oauth::clients::Client, OAuthError>> {
    let mut missed = false;
    let result = client_auth::authenticate_with(
        |id| {
            let c = svc.cache.client(id).map(|c| (*c).clone());
            missed = c.is_none();
            Ok(c)
        },
        header,
        params,
        allow,
    );
    (!missed).then_some(result)
}

/// What the token, revocation and introspection endpoints all start from.
struct ClientRequest {
    params: Params,
    /// The Authorization header, if any.
    auth: Option<String>,
    /// The key this client's failures are counted under.
    key: String,
}

/// Reads the form and the Authorization header.
async fn client_request(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<ClientRequest, HttpResponse> {
    let params = form_params(req, payload).await?;
    let auth = authorization_header(req).map_err(|e| error_response(&e))?;
    let key = client_key(auth.as_deref(), &params);
    Ok(ClientRequest { params, auth, key })
}

/// The key failures of a client are counted under: its id, however it was sent.
fn client_key(header: Option<&str>, params: &Params) -> String {
    let id = header
        .and_then(client_auth::basic_credentials)
        .map(|(id, _)| id)
        .or_else(|| params.get("client_id").ok().flatten().map(str::to_string))
        .unwrap_or_default();
    format!("client:{id}")
}

/// The answer to a failed request. Failures are counted per client; a client
/// over its limit gets 429 for further failures, while requests that succeed
/// are never slowed (nor can someone else's failures lock a working client out).
fn failure_response(svc: &Services, key: &str, e: &OAuthError) -> HttpResponse {
    if let Some(limits) = &svc.limits {
        if matches!(e, OAuthError::InvalidClient(_) | OAuthError::InvalidGrant(_)) {
            limits.client.failure(key);
            if let Err(secs) = limits.client.check(key) {
                return too_many(secs);
            }
        }
    }
    error_response(e)
}

async fn token_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let ClientRequest { params, auth, key } = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let grant = match params.get("grant_type").ok().flatten() {
        Some(g @ ("authorization_code" | "refresh_token")) => g.to_string(),
        Some(_) => "other".to_string(),
        None => "none".to_string(),
    };
    let svc2 = svc.clone();
    let result = web::block(move || {
        let mut conn = svc2
            .pool
            .get()
            .map_err(|e| (OAuthError::from(crate::error::Error::from(e)), vec![]))?;
        let client = authenticate(&svc2, &mut conn, auth.as_deref(), &params, Allow::PublicToo)
            .map_err(|e| (e, vec![]))?;
        match params.get("grant_type").map_err(|e| (e, vec![]))? {
            Some("authorization_code") => {
                token::authorization_code(&mut conn, &svc2.config, &svc2.keys, &client, &params)
            }
            Some("refresh_token") => {
                token::refresh_token(&mut conn, &svc2.config, &svc2.keys, &client, &params)
            }
            Some(other) => Err((
                OAuthError::unsupported_grant_type(format!(
                    "grant_type {other:?} is not supported"
                )),
                vec![],
            )),
            None => Err((
                OAuthError::invalid_request("grant_type is required"),
                vec![],
            )),
        }
    })
    .await;
    let grants = &crate::metrics::METRICS.grants;
    match result {
        Ok(Ok(resp)) => {
            grants.with_label_values(&[&grant, "ok"]).inc();
            no_store_json(&resp)
        }
        Ok(Err((e, events))) => {
            grants.with_label_values(&[&grant, e.code()]).inc();
            svc.cache.apply(&events);
            failure_response(&svc, &key, &e)
        }
        Err(_) => error_response(&OAuthError::server_error("internal error")),
    }
}

async fn revoke_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let ClientRequest { params, auth, key } = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let svc2 = svc.clone();
    let result = web::block(
        move || -> Result<Vec<crate::credentials::revocation::Event>, OAuthError> {
            let mut conn = svc2.pool.get().map_err(crate::error::Error::from)?;
            let client =
                authenticate(&svc2, &mut conn, auth.as_deref(), &params, Allow::PublicToo)?;
            let token = params
                .get("token")?
                .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
            Ok(revoke::revoke(&svc2, &mut conn, &client, token, &params)?)
        },
    )
    .await;
    match result {
        Ok(Ok(events)) => {
            if !events.is_empty() {
                crate::metrics::METRICS
                    .revocations
                    .with_label_values(&["token"])
                    .inc();
            }
            svc.cache.apply(&events);
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Ok(Err(e)) => failure_response(&svc, &key, &e),
        Err(_) => error_response(&OAuthError::server_error("internal error")),
    }
}

async fn introspect_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let ClientRequest { params, auth, key } = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The steady state needs no database: a known client and a verified token.
    if let Some(auth_result) =
        authenticate_cached(&svc, auth.as_deref(), &params, Allow::ConfidentialOnly)
    {
        let client = match auth_result {
            Ok(c) => c,
            Err(e) => {
                return failure_response(&svc, &key, &e);
            }
        };
        if let Ok(Some(token)) = params.get("token") {
            if params.get("token_type_hint").ok().flatten() != Some("refresh_token") {
                if let Some(v) = introspect::cached(&svc, &client, token) {
                    return no_store_json(&v);
                }
            }
        }
    }
    let svc2 = svc.clone();
    let result = web::block(move || -> Result<serde_json::Value, OAuthError> {
        let mut conn = svc2.pool.get().map_err(crate::error::Error::from)?;
        let client = authenticate(
            &svc2,
            &mut conn,
            auth.as_deref(),
            &params,
            Allow::ConfidentialOnly,
        )?;
        if params.get("token")?.is_none() {
            return Err(OAuthError::invalid_request("token is required"));
        }
        Ok(introspect::introspect(&svc2, &mut conn, &client, &params)?)
    })
    .await;
    match result {
        Ok(Ok(v)) => no_store_json(&v),
        Ok(Err(e)) => failure_response(&svc, &key, &e),
        Err(_) => error_response(&OAuthError::server_error("internal error")),
    }
}

async fn authorize_get(svc: Svc, req: HttpRequest) -> HttpResponse {
    let query = req.query_string().to_string();
    authorization_request(svc, req, query).await
}

/// POST carries either a client's authorization request (RFC 6749 §3.1 allows
/// POST) or the person's decision on the consent page.
async fn authorize_post(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(_) => {
            return pages::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.")
        }
    };
    if super::media_type(&req).as_deref() != Some("application/x-www-form-urlencoded") {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    }
    let params = Params::parse(&body);
    if params.get("consent_id").ok().flatten().is_some() {
        return pages::consent_decision(svc, req, params).await;
    }
    let query = String::from_utf8_lossy(&body).into_owned();
    authorization_request(svc, req, query).await
}

/// Validates an authorization request; then login, or the consent page.
async fn authorization_request(svc: Svc, req: HttpRequest, query: String) -> HttpResponse {
    let params = Params::parse(query.as_bytes());
    let cookie = pages::session_cookie(&req);
    let issuer = svc.config.issuer.clone();
    let result = super::with_conn(&svc, move |svc, conn| {
        let request = match authorize::validate(conn, &svc.config, &params) {
            Ok(r) => r,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let session = match cookie {
            Some(c) => crate::accounts::sessions::resolve(conn, &c)?,
            None => None,
        };
        let Some((session, user)) = session else {
            return Ok(Ok(None));
        };
        let consent_id = authorize::hold(conn, &svc.config, &session.id_hash, &request)?;
        let workspaces = crate::accounts::managed_workspaces(conn, &user.id)?;
        Ok(Ok(Some(pages::ConsentView {
            request,
            consent_id,
            csrf_token: session.csrf_token,
            user_email: user.email,
            workspaces,
        })))
    })
    .await;
    match result {
        Ok(Ok(Some(view))) => pages::consent_page(&view, &query),
        Ok(Ok(None)) => {
            let next = format!("/oauth/authorize?{query}");
            let location = format!(
                "/login?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish()
            );
            redirect(StatusCode::FOUND, &location)
        }
        Ok(Err(Rejection::Page(msg))) => pages::error_page(StatusCode::BAD_REQUEST, &msg),
        Ok(Err(Rejection::Redirect {
            redirect_uri,
            state,
            error,
        })) => redirect(
            StatusCode::FOUND,
            &authorize::error_redirect(&issuer, &redirect_uri, state.as_deref(), &error),
        ),
        Ok(Err(Rejection::Internal(e))) | Err(e) => pages::internal_error(&e),
    }
}
