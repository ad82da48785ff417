//! The OAuth endpoints: authorize (GET and POST), token, revoke, introspect.

use super::{pages, read_body, redirect, BodyError, Svc};
use crate::db::DbConn;
use crate::node::state::Services;
use crate::oauth::authorize::{self, Rejection};
use crate::oauth::client_auth;
use crate::oauth::error::OAuthError;
use crate::oauth::introspect::{self, Introspection};
use crate::oauth::registration::cimd::{self, CimdError, ClientDocument};
use crate::oauth::token::{self, Issued};
use crate::oauth::{revoke, Params};
use actix_cors::Cors;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

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

/// What the token, revocation and introspection endpoints all start from.
struct ClientRequest {
    params: Params,
    /// The Authorization header, if any.
    auth: Option<String>,
    /// The client id, however it was sent (Basic header or form).
    client_id: Option<String>,
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
    let client_id = presented_client_id(auth.as_deref(), &params);
    if client_id
        .as_ref()
        .is_some_and(|id| id.len() > crate::oauth::clients::MAX_CLIENT_ID_BYTES)
    {
        let unknown = OAuthError::invalid_client("client authentication failed");
        return Err(error_response(&unknown));
    }
    let key = format!("client:{}", client_id.as_deref().unwrap_or_default());
    Ok(ClientRequest {
        params,
        auth,
        client_id,
        key,
    })
}

/// The client id presented, however it was sent.
fn presented_client_id(header: Option<&str>, params: &Params) -> Option<String> {
    header
        .and_then(client_auth::basic_credentials)
        .map(|(id, _)| id)
        .or_else(|| params.get("client_id").ok().flatten().map(str::to_string))
        .or_else(|| crate::oauth::client_assertion::claimed(params).map(|(sub, _)| sub))
}

/// The extras of a request (`http::machine`), or the answer to its failure.
async fn request_extras(
    svc: &Svc,
    req: &HttpRequest,
    r: &ClientRequest,
    dpop_url: Option<&str>,
) -> Result<Option<crate::oauth::Extras>, HttpResponse> {
    super::machine::extras(svc, req, &r.params, dpop_url)
        .await
        .map_err(|e| failure_response(svc, &r.key, &e))
}

/// A `client_id` that names a client ID metadata document, while keygate
/// accepts them (`KEYGATE_CIMD`).
fn document_url<'a>(svc: &Services, client_id: Option<&'a str>) -> Option<&'a str> {
    client_id.filter(|id| svc.config.cimd && cimd::is_metadata_url(id))
}

/// Why a request's metadata document was not obtained.
enum NoDocument {
    /// Over a fetch budget, or over the registration quota: retry after this
    /// many seconds. Nothing was fetched.
    TooMany(u64),
    /// The fetch or the document failed; what the caller may be told
    /// ([`CimdError::public_message`]; the details are in the log).
    Failed(String),
}

/// The key of this node's one fetch budget for every address together.
const ALL_ADDRESSES: &str = "all";

/// The metadata document of `client_id`: from the node's cache for free, or
/// fetched within the budgets (per client address per minute, and per second
/// for the whole node: failures are never cached, so fetches are limited
/// instead). `new_client`: keygate has no row for it, so a fetch is its first
/// sighting, counted (when it succeeds) against the address's registration
/// quota, which must not already be used up.
async fn limited_document(
    svc: &Services,
    req: &HttpRequest,
    client_id: &str,
    new_client: bool,
) -> Result<Arc<ClientDocument>, NoDocument> {
    if let Some(doc) = svc.documents.cached(client_id) {
        return Ok(doc);
    }
    let quota_key = super::registration::limiter_key(svc, req);
    if let Some(limits) = &svc.limits {
        let fetch_key = format!("cimd:{quota_key}");
        let blocked = limits
            .document_fetches
            .check(&fetch_key)
            .and_then(|()| limits.document_fetches_global.check(ALL_ADDRESSES))
            .and_then(|()| match new_client {
                true => limits.registrations.check(&quota_key),
                false => Ok(()),
            });
        if let Err(secs) = blocked {
            log::info!("client metadata document {client_id}: not fetched, over a limit");
            return Err(NoDocument::TooMany(secs));
        }
        limits.document_fetches.record(&fetch_key);
        limits.document_fetches_global.record(ALL_ADDRESSES);
    }
    // The fetcher logs why a document failed.
    let doc = svc
        .documents
        .fetch(client_id)
        .await
        .map_err(|e: CimdError| NoDocument::Failed(e.public_message()))?;
    if let (true, Some(limits)) = (new_client, &svc.limits) {
        limits.registrations.record(&quota_key);
    }
    Ok(doc)
}

/// Whether keygate has a row for this client id (deleted or not): whether a
/// metadata document's client is new to it.
async fn has_row(
    svc: &Svc,
    client_id: &str,
    deleted_too: bool,
) -> Result<bool, crate::error::Error> {
    if svc.clients.get(client_id).is_some() {
        return Ok(true);
    }
    let id = client_id.to_string();
    super::with_conn(svc, move |_, conn| {
        Ok(if deleted_too {
            crate::oauth::clients::find_any(conn, &id)?.is_some()
        } else {
            crate::oauth::clients::find(conn, &id)?.is_some()
        })
    })
    .await
}

/// The answer to a failed request. Failures are counted per client; a client
/// over its limit gets 429 for further failures, while requests that succeed
/// are never slowed (nor can someone else's failures lock a working client out).
fn failure_response(svc: &Services, key: &str, e: &OAuthError) -> HttpResponse {
    if let Some(limits) = &svc.limits {
        if matches!(
            e,
            OAuthError::InvalidClient(_) | OAuthError::InvalidGrant(_)
        ) {
            limits.client.failure(key);
            if let Err(secs) = limits.client.check(key) {
                return too_many(secs);
            }
        }
    }
    error_response(e)
}

/// How a client endpoint's area function runs.
#[derive(Clone, Copy)]
enum Run {
    /// It reads (introspection): on a blocking thread, on a connection of
    /// the pool.
    Reads,
    /// It writes (grants, revocation): in the node's shared write
    /// transaction (`db::batch`), answered once committed.
    Writes,
}

/// Runs one client endpoint's area function off the async workers and maps
/// its answer; a failed or panicked worker is a 500 in RFC 6749's shape.
async fn client_endpoint<T, F>(svc: Svc, run: Run, request: ClientRequest, f: F) -> HttpResponse
where
    T: Send + 'static,
    F: FnOnce(&Services, &mut DbConn, Option<&str>, &Params) -> Result<T, OAuthError>
        + Send
        + 'static,
    T: ClientAnswer,
{
    let ClientRequest {
        params, auth, key, ..
    } = request;
    let svc2 = svc.clone();
    let result = match run {
        Run::Reads => web::block(move || {
            let mut conn = svc2.pool.get().map_err(crate::error::Error::from)?;
            f(&svc2, &mut conn, auth.as_deref(), &params)
        })
        .await
        .unwrap_or_else(|_| Err(OAuthError::server_error("internal error"))),
        Run::Writes => svc
            .writes
            .batched(&svc.pool, move |conn| {
                f(&svc2, conn, auth.as_deref(), &params)
            })
            .await
            .unwrap_or_else(|e| Err(crate::error::Error::from(e).into())),
    };
    match result {
        Ok(answer) => answer.respond(&svc),
        Err(e) => failure_response(&svc, &key, &e),
    }
}

/// How a client endpoint's success is answered.
trait ClientAnswer {
    fn respond(self, svc: &Services) -> HttpResponse;
}

/// The tokens are signed here, on the worker, once their rows are committed.
impl ClientAnswer for Issued {
    fn respond(self, svc: &Services) -> HttpResponse {
        match self.sign(&svc.credentials.keys) {
            Ok(response) => no_store_json(&response),
            Err(e) => error_response(&e),
        }
    }
}

impl ClientAnswer for Introspection {
    fn respond(self, _: &Services) -> HttpResponse {
        no_store_json(&self)
    }
}

/// RFC 7009 §2.2: 200 with an empty body.
impl ClientAnswer for () {
    fn respond(self, _: &Services) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }
}

async fn token_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let r = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(refused) = documents_off(&svc, &r) {
        return refused;
    }
    // A metadata-document client is looked up afresh (draft §"Client
    // Information Discovery"): its document must still be good. Only one a
    // person approved has a row; any other is refused before anything is
    // fetched, and a token request never makes a row.
    let document = match document_url(&svc, r.client_id.as_deref()) {
        None => None,
        Some(id) => match has_row(&svc, id, false).await {
            Err(e) => return error_response(&e.into()),
            Ok(false) => {
                let e = OAuthError::invalid_client("unknown client");
                return failure_response(&svc, &r.key, &e);
            }
            Ok(true) => match limited_document(&svc, &req, id, false).await {
                Ok(doc) => Some(doc),
                Err(NoDocument::TooMany(secs)) => return too_many(secs),
                Err(NoDocument::Failed(msg)) => {
                    let e = OAuthError::invalid_client(format!("client metadata document: {msg}"));
                    return failure_response(&svc, &r.key, &e);
                }
            },
        },
    };
    let token_url = format!("{}/oauth/token", svc.config.issuer);
    let extras = match request_extras(&svc, &req, &r, Some(&token_url)).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    client_endpoint(svc, Run::Writes, r, move |svc, conn, auth, params| {
        if let Some(doc) = &document {
            client_auth::document_client(&svc.clients, conn, doc)?;
        }
        let mut issuer = svc.issuer();
        issuer.extras = extras.as_ref();
        token::issue(&issuer, conn, auth, params)
    })
    .await
}

/// With `KEYGATE_CIMD=off`, a `client_id` that is a metadata-document URL
/// is an unknown client, whatever rows keygate keeps.
fn documents_off(svc: &Services, r: &ClientRequest) -> Option<HttpResponse> {
    let id = r.client_id.as_deref()?;
    if svc.config.cimd || !cimd::is_metadata_url(id) {
        return None;
    }
    let e = OAuthError::invalid_client("unknown client");
    Some(failure_response(svc, &r.key, &e))
}

async fn revoke_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let r = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(refused) = documents_off(&svc, &r) {
        return refused;
    }
    let extras = match request_extras(&svc, &req, &r, None).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    client_endpoint(svc, Run::Writes, r, move |svc, conn, auth, params| {
        let mut issuer = svc.issuer();
        issuer.extras = extras.as_ref();
        revoke::request(&issuer, conn, auth, params)
    })
    .await
}

async fn introspect_endpoint(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let r = match client_request(&req, payload).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The steady state needs no database: a known client and a verified token.
    match introspect::from_memory(&svc.issuer(), r.auth.as_deref(), &r.params) {
        Some(Ok(v)) => v.respond(&svc),
        Some(Err(e)) => failure_response(&svc, &r.key, &e),
        None => {
            let extras = match request_extras(&svc, &req, &r, None).await {
                Ok(e) => e,
                Err(refused) => return refused,
            };
            client_endpoint(svc, Run::Reads, r, move |svc, conn, auth, params| {
                let mut issuer = svc.issuer();
                issuer.extras = extras.as_ref();
                introspect::request(&issuer, conn, auth, params)
            })
            .await
        }
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

/// The metadata document of the request's client, fetched before anything
/// else (within the fetch budgets, and the registration quota for a client
/// keygate has no row for): a bad document is an error page (the client is
/// unknown), never a redirect, and so is a request over a limit (`429`).
async fn document_or_page(
    svc: &Svc,
    req: &HttpRequest,
    params: &Params,
) -> Result<Option<Arc<ClientDocument>>, HttpResponse> {
    let Some(id) = document_url(svc, params.get("client_id").ok().flatten()) else {
        return Ok(None);
    };
    if let Some(doc) = svc.documents.cached(id) {
        return Ok(Some(doc));
    }
    let new_client = match svc.limits {
        Some(_) => match has_row(svc, id, true).await {
            Ok(found) => !found,
            Err(e) => return Err(pages::internal_error(&e)),
        },
        None => false,
    };
    match limited_document(svc, req, id, new_client).await {
        Ok(doc) => Ok(Some(doc)),
        Err(NoDocument::TooMany(secs)) => {
            let mut page = pages::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many applications were looked up from this address. Try again later.",
            );
            page.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            Err(page)
        }
        Err(NoDocument::Failed(msg)) => Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            &format!("The application's client metadata document cannot be used: {msg}."),
        )),
    }
}

/// Validates an authorization request; then login, or the consent page.
async fn authorization_request(svc: Svc, req: HttpRequest, query: String) -> HttpResponse {
    let params = Params::parse(query.as_bytes());
    let cookie = pages::session_cookie(&req);
    let issuer = svc.config.issuer.clone();
    let document = match document_or_page(&svc, &req, &params).await {
        Ok(d) => d,
        Err(page) => return page,
    };
    let result = super::with_conn(&svc, move |svc, conn| {
        let request =
            match authorize::validate_with(conn, &svc.config, &params, document.as_deref()) {
                Ok(r) => r,
                Err(rejection) => return Ok(Err(rejection)),
            };
        consent_view(conn, svc, cookie, request).map(Ok)
    })
    .await;
    match result {
        Ok(Ok(Some(view))) => pages::consent_page(&view, &query),
        Ok(Ok(None)) => redirect(StatusCode::FOUND, &login_then(&query)),
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

/// For a signed-in person, the consent page of a valid request (held
/// server-side); `None` without a session.
fn consent_view(
    conn: &mut DbConn,
    svc: &Services,
    cookie: Option<String>,
    request: authorize::AuthorizationRequest,
) -> Result<Option<pages::ConsentView>, crate::error::Error> {
    let session = match cookie {
        Some(c) => crate::accounts::sessions::resolve(conn, &c)?,
        None => None,
    };
    let Some((session, user)) = session else {
        return Ok(None);
    };
    let consent_id = authorize::hold(conn, &svc.writes, &svc.config, &session.id_hash, &request)?;
    let workspaces = crate::accounts::managed_workspaces(conn, &user.id)?;
    Ok(Some(pages::ConsentView {
        request,
        consent_id,
        csrf_token: session.csrf_token,
        user_email: user.email,
        workspaces,
    }))
}

/// The login page, leading back to this authorization request.
fn login_then(query: &str) -> String {
    let next = format!("/oauth/authorize?{query}");
    format!(
        "/login?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish()
    )
}
