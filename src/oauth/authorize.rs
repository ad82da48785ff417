//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2): validating the request,
//! binding it server-side while the person decides, and issuing the code.

use super::error::OAuthError;
use super::{authorizations::Authorization, engine, redirect_with, Params};
use crate::accounts;
use crate::config::Config;
use crate::credentials::change::Change;
use crate::credentials::scopes;
use crate::crypto;
use crate::db::group::Group;
use crate::db::schema::{auth_codes, consent_requests};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use crate::oauth::clients::{self, Client};
use crate::oauth::registration::cimd::{self, ClientDocument};
use diesel::prelude::*;

/// A request that passed validation.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// For a metadata-document client, the row it would have: it is written
    /// only when a person approves.
    pub client: Client,
    /// The validated metadata document of a client known by one.
    pub document: Option<ClientDocument>,
    pub redirect_uri: String,
    pub scopes: Vec<&'static str>,
    pub state: Option<String>,
    /// The PKCE challenge as the engine stores it.
    pub code_challenge: String,
    /// The registered resource the tokens are for (RFC 8707); `None`:
    /// keygate's own `{issuer}/v1`.
    pub resource: Option<crate::resources::Resource>,
}

/// Why a request was refused, and how the person learns of it.
#[derive(Debug)]
pub enum Rejection {
    /// The client or redirect URI cannot be trusted: never redirect (RFC 6749 §4.1.2.1).
    Page(String),
    /// Everything else goes back to the client.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
    /// Storage failed.
    Internal(Error),
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::Internal(e)
    }
}

/// Validates in the order of RFC 6749 §4.1.2.1: client and redirect URI first
/// (errors shown as a page), then the rest (errors redirected).
pub fn validate(
    conn: &mut DbConn,
    config: &Config,
    params: &Params,
) -> std::result::Result<AuthorizationRequest, Rejection> {
    validate_with(conn, config, params, None)
}

/// [`validate`], for a request whose `client_id` may be a client ID metadata
/// document URL: `document` is what the caller fetched for it (the fetch is
/// asynchronous, this is not). A URL `client_id` without its document is
/// refused as a page, never redirected; with `KEYGATE_CIMD=off` it is an
/// unknown client. Nothing is written: a document's client gets its row only
/// when a person approves ([`answer`]).
pub fn validate_with(
    conn: &mut DbConn,
    config: &Config,
    params: &Params,
    document: Option<&ClientDocument>,
) -> std::result::Result<AuthorizationRequest, Rejection> {
    let page = |msg: &str| Rejection::Page(msg.to_string());
    let client_id = params
        .get("client_id")
        .map_err(|_| page("The client_id parameter is repeated."))?
        .ok_or_else(|| page("The request has no client_id."))?;
    let unknown = || page("The application is not registered with keygate (unknown client_id).");
    let document = document.filter(|doc| config.cimd && doc.client_id == client_id);
    let client = match document {
        Some(doc) => match clients::check_document(conn, doc) {
            Ok(c) => c,
            Err(Error::Forbidden(msg)) => return Err(Rejection::Page(msg)),
            Err(e) => return Err(e.into()),
        },
        None if cimd::is_metadata_url(client_id) && !config.cimd => return Err(unknown()),
        None if cimd::is_metadata_url(client_id) => {
            return Err(page(
                "The application's client metadata document could not be used.",
            ))
        }
        None => clients::find(conn, client_id)?.ok_or_else(unknown)?,
    };
    let redirect_uri = params
        .get("redirect_uri")
        .map_err(|_| page("The redirect_uri parameter is repeated."))?
        .ok_or_else(|| page("The request has no redirect_uri."))?;
    if !client.redirect_uri_matches(redirect_uri) {
        return Err(page(
            "The redirect_uri does not match any URI registered for this application.",
        ));
    }
    let redirect_uri = redirect_uri.to_string();
    // The state goes back with every error; if it is repeated, none is trusted.
    let state = params.get("state").ok().flatten().map(str::to_string);
    let fail = |error: OAuthError| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };
    if let Some(name) = params.first_of_any_repeated(&["resource"]) {
        return Err(fail(OAuthError::invalid_request(format!(
            "the {name} parameter must not be repeated"
        ))));
    }
    match params.get("response_type").map_err(fail)? {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::unsupported_response_type(
                "only response_type=code is supported",
            )))
        }
    }
    if params
        .get("response_mode")
        .map_err(fail)?
        .is_some_and(|m| m != "query")
    {
        return Err(fail(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )));
    }
    let code_challenge = engine::challenge(
        params.get("code_challenge_method").map_err(fail)?,
        params.get("code_challenge").map_err(fail)?,
    )
    .map_err(fail)?;
    let scopes = scopes::parse(params.get("scope").map_err(fail)?).map_err(|e| fail(e.into()))?;
    // RFC 7591 §2 `scope`: a client that registered scopes asks for no others.
    if let Some(allowed) = client.registered_scopes() {
        if let Some(s) = scopes.iter().find(|s| !allowed.iter().any(|a| a == *s)) {
            return Err(fail(OAuthError::invalid_scope(format!(
                "the scope {s} is not among the scopes this client registered"
            ))));
        }
    }
    let v1 = config.resource();
    let resource = match super::named_resource(params, &v1).map_err(fail)? {
        Some(named) => Some(super::registered_resource(conn, named).map_err(fail)?),
        None => None,
    };
    Ok(AuthorizationRequest {
        client,
        document: document.cloned(),
        redirect_uri,
        scopes,
        state,
        code_challenge,
        resource,
    })
}

/// The redirect that carries an error back to the client (with `iss`, RFC 9207).
pub fn error_redirect(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> String {
    let mut params = vec![
        ("error", error.code()),
        ("error_description", error.description()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect_with(redirect_uri, &params)
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = consent_requests)]
pub struct ConsentRequest {
    pub id_hash: String,
    pub session_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The validated metadata document (JSON) of a client known by one: its
    /// row is written from it when a person approves.
    pub client_document: Option<String>,
    /// The identifier of the registered resource asked for; `None`: `/v1`.
    pub resource: Option<String>,
}

/// Holds a validated request server-side while the person decides, bound to their
/// session. The form carries only the returned id, so nothing in it can widen the
/// request.
pub fn hold(
    conn: &mut DbConn,
    writes: &Group,
    config: &Config,
    session_hash: &str,
    req: &AuthorizationRequest,
) -> Result<String> {
    let id = crypto::random_token(24);
    let now = db::now();
    let row = ConsentRequest {
        id_hash: crypto::sha256_hex(&id),
        session_hash: session_hash.to_string(),
        client_id: req.client.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scopes: scopes::join(&req.scopes),
        state: req.state.clone(),
        code_challenge: req.code_challenge.clone(),
        created_at: now,
        expires_at: now + config.consent_ttl,
        client_document: req
            .document
            .as_ref()
            .and_then(|d| serde_json::to_string(d).ok()),
        resource: req.resource.as_ref().map(|r| r.identifier.clone()),
    };
    writes.run_one(conn, move |conn| {
        use consent_requests as c;
        use db::Piece::{Int, OptText, Text};
        use diesel::Column;
        let values = [
            (c::id_hash::NAME, Text(&row.id_hash)),
            (c::session_hash::NAME, Text(&row.session_hash)),
            (c::client_id::NAME, Text(&row.client_id)),
            (c::redirect_uri::NAME, Text(&row.redirect_uri)),
            (c::scopes::NAME, Text(&row.scopes)),
            (c::state::NAME, OptText(row.state.as_deref())),
            (c::code_challenge::NAME, Text(&row.code_challenge)),
            (c::created_at::NAME, Int(row.created_at)),
            (c::expires_at::NAME, Int(row.expires_at)),
            (
                c::client_document::NAME,
                OptText(row.client_document.as_deref()),
            ),
            (c::resource::NAME, OptText(row.resource.as_deref())),
        ];
        db::kept::insert(conn, "consent_requests", &values)?;
        Ok::<_, Error>(())
    })?;
    Ok(id)
}

/// The held request of this id, if it belongs to this session.
fn find_held(conn: &mut DbConn, id: &str, session_hash: &str) -> Result<Option<ConsentRequest>> {
    let held: Option<ConsentRequest> = consent_requests::table
        .find(crypto::sha256_hex(id))
        .select(ConsentRequest::as_select())
        .first(conn)
        .optional()?;
    Ok(held.filter(|h| crypto::ct_eq(&h.session_hash, session_hash)))
}

/// Inside a transaction: removes the held request (single use) and answers
/// whether it was still there and fresh.
fn spend_held(conn: &mut DbConn, held: &ConsentRequest) -> Result<bool> {
    let n = diesel::delete(consent_requests::table.find(&held.id_hash)).execute(conn)?;
    Ok(n == 1 && held.expires_at >= db::now())
}

pub struct Approved {
    pub authorization: Authorization,
    pub code: String,
}

/// Why an approval is refused when the person decided.
const NOT_A_MANAGER: &str = "only owners and admins of a workspace may authorize apps for it";
const CLIENT_REMOVED: &str = "This application was removed by the operator of keygate.";
const RESOURCE_REMOVED: &str =
    "The API this application asked for was removed by the operator of keygate.";

/// The row of a new code for `held`'s request under `authorization_id`.
fn code_row<'a>(
    held: &'a ConsentRequest,
    authorization_id: &'a str,
    code_hash: &'a str,
    (now, expires_at): (i64, i64),
) -> [(&'static str, db::Piece<'a>); 7] {
    use db::Piece::{Int, Text};
    use diesel::Column;
    [
        (auth_codes::code_hash::NAME, Text(code_hash)),
        (auth_codes::authorization_id::NAME, Text(authorization_id)),
        (auth_codes::client_id::NAME, Text(&held.client_id)),
        (auth_codes::redirect_uri::NAME, Text(&held.redirect_uri)),
        (auth_codes::code_challenge::NAME, Text(&held.code_challenge)),
        (auth_codes::created_at::NAME, Int(now)),
        (auth_codes::expires_at::NAME, Int(expires_at)),
    ]
}

/// Inside a transaction: records the authorization (the authorized-apps row)
/// and issues a single-use code bound to client, redirect URI, PKCE
/// challenge, scopes, user and workspace.
fn record_approval(
    conn: &mut DbConn,
    code_ttl: i64,
    held: &ConsentRequest,
    user_id: &str,
    workspace_id: &str,
) -> Result<Approved> {
    // Locked, so that a concurrent removal of this person either waits
    // for this authorization (and revokes it) or is seen here.
    let role = accounts::role_in_locked(conn, workspace_id, user_id)?;
    if !role.is_some_and(accounts::Role::can_manage) {
        return Err(Error::forbidden(NOT_A_MANAGER));
    }
    // Deleted while the person decided (or, for a metadata document, never
    // written): nothing to authorize.
    if clients::find(conn, &held.client_id)?.is_none() {
        return Err(Error::forbidden(CLIENT_REMOVED));
    }
    // Deleted while the person decided: nothing to grant it for.
    if let Some(resource) = &held.resource {
        if crate::resources::find_by_identifier(conn, resource)?.is_none() {
            return Err(Error::forbidden(RESOURCE_REMOVED));
        }
    }
    let now = db::now();
    let authorization = Authorization::new(
        &held.client_id,
        (workspace_id, user_id),
        &held.scopes,
        held.resource.clone(),
    )
    .record(conn)?;
    let code = crypto::random_token(32);
    let code_hash = crypto::sha256_hex(&code);
    let row = code_row(held, &authorization.id, &code_hash, (now, now + code_ttl));
    db::kept::insert(conn, "auth_codes", &row)?;
    let by = crate::accounts::audit::Actor {
        id: user_id,
        client_address: None,
    };
    Change::new(&authorization.id, "app.authorized", by).record(conn, workspace_id, None)?;
    Ok(Approved {
        authorization,
        code,
    })
}

/// The success redirect (RFC 6749 §4.1.2, `iss` per RFC 9207).
pub fn code_redirect(issuer: &str, held: &ConsentRequest, code: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(s) = held.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect_with(&held.redirect_uri, &params)
}

/// The person's answer on the consent page.
pub enum Answer<'a> {
    Approve { workspace_id: &'a str },
    Deny,
}

/// What answering the consent page leads to.
pub enum Decided {
    /// Back to the client: a code, or `access_denied` (RFC 6749 §4.1.2).
    Redirect(String),
    /// The held request expired or was already answered.
    Expired,
    /// This person may not authorize apps for that workspace.
    Refused(String),
}

/// What answering a held request did.
pub enum Answered {
    /// The request had expired or was already answered.
    Expired,
    Denied(Box<ConsentRequest>),
    /// This person may not authorize apps for that workspace (the request
    /// is spent all the same: it is answered once).
    Refused(String),
    Approved(Box<ConsentRequest>, Approved),
}

/// Answers a held authorization request for the person whose session holds
/// it: in one write, shared with those that arrive with it (`db::group`),
/// the request is taken once, then approved (the authorization and a code)
/// or denied.
pub fn answer(
    conn: &mut DbConn,
    writes: &Group,
    config: &Config,
    session_hash: &str,
    user_id: &str,
    consent_id: &str,
    answer: Answer,
) -> Result<Answered> {
    let Some(held) = find_held(conn, consent_id, session_hash)? else {
        return Ok(Answered::Expired);
    };
    let approve_for = match answer {
        Answer::Approve { workspace_id } => Some(workspace_id.to_string()),
        Answer::Deny => None,
    };
    if let (Some(workspace_id), Some(document)) = (&approve_for, &held.client_document) {
        if let Some(refused) =
            save_approved_document(conn, config, &held, user_id, workspace_id, document)?
        {
            return Ok(refused);
        }
    }
    if let (DbConn::Postgresql(_), Some(workspace_id)) = (&*conn, &approve_for) {
        if let Some(answered) =
            approve_at_once(conn, config.code_ttl, &held, user_id, workspace_id)?
        {
            return Ok(answered);
        }
    }
    let (user_id, code_ttl) = (user_id.to_string(), config.code_ttl);
    writes.run(conn, move |conn| {
        if !spend_held(conn, &held)? {
            return Ok(Answered::Expired);
        }
        let Some(workspace_id) = approve_for else {
            return Ok(Answered::Denied(Box::new(held)));
        };
        match record_approval(conn, code_ttl, &held, &user_id, &workspace_id) {
            Ok(approved) => Ok(Answered::Approved(Box::new(held), approved)),
            Err(Error::Forbidden(msg)) => Ok(Answered::Refused(msg)),
            Err(e) => Err(e),
        }
    })
}

/// PostgreSQL: [`answer`]'s approval as one statement, a data-modifying
/// `WITH` whose parts run in the transaction's order, each only if the one
/// before matched: the request taken (`d`) and fresh (`f`), the person still
/// an owner or admin, their membership locked as [`record_approval`] locks
/// it (`m`), the client still there (`k`), the resource too (`r`), then the
/// authorization, the code and the log row. One round trip instead of nine.
/// `None` when the log row would write an outgoing event (an endpoint wants
/// it): that needs the transaction.
fn approve_at_once(
    conn: &mut DbConn,
    code_ttl: i64,
    held: &ConsentRequest,
    user_id: &str,
    workspace_id: &str,
) -> Result<Option<Answered>> {
    use db::Piece::{Int, Sql, Text};
    let authorization = Authorization::new(
        &held.client_id,
        (workspace_id, user_id),
        &held.scopes,
        held.resource.clone(),
    );
    let by = crate::accounts::audit::Actor {
        id: user_id,
        client_address: None,
    };
    let change = Change::new(&authorization.id, "app.authorized", by);
    let entry = change.entry(workspace_id, None);
    if !change.ends_nothing() || entry.writes_event(conn)? {
        return Ok(None);
    }
    let now = db::now();
    let code = crypto::random_token(32);
    let code_hash = crypto::sha256_hex(&code);
    let log_id = db::new_id();
    let resource_key = held
        .resource
        .as_deref()
        .map(crate::resources::identifier::key);
    let authorization_row = authorization.row();
    let code_row = code_row(held, &authorization.id, &code_hash, (now, now + code_ttl));
    let log_row = entry.row(&log_id, now);
    let mut chain = db::kept::Chain::new();
    chain.part(
        "d",
        [
            Sql("DELETE FROM consent_requests WHERE consent_requests.id_hash = "),
            Text(&held.id_hash),
            Sql(" RETURNING expires_at"),
        ],
    );
    chain.part("f", [Sql("SELECT 1 FROM d WHERE expires_at >= "), Int(now)]);
    let manager = accounts::manages_locked(workspace_id, user_id);
    chain.part(
        "m",
        [Sql("SELECT 1 FROM f WHERE ")].into_iter().chain(manager),
    );
    let live = clients::live(&held.client_id);
    chain.part("k", [Sql("SELECT 1 FROM m WHERE ")].into_iter().chain(live));
    match resource_key {
        Some(key) => {
            let registered = crate::resources::registered(key);
            chain.part(
                "r",
                [Sql("SELECT 1 FROM k WHERE ")]
                    .into_iter()
                    .chain(registered),
            );
        }
        None => chain.part("r", [Sql("SELECT 1 FROM k")]),
    }
    chain.insert("a", super::authorizations::TABLE, &authorization_row, "r");
    chain.insert("c", "auth_codes", &code_row, "r");
    chain.insert("l", crate::accounts::audit::TABLE, &log_row, "r");
    let [taken, fresh, manager, client, approved] =
        chain.counts(["d", "f", "m", "k", "r"], conn)?;
    Ok(Some(match () {
        _ if taken == 0 || fresh == 0 => Answered::Expired,
        _ if manager == 0 => Answered::Refused(NOT_A_MANAGER.into()),
        _ if client == 0 => Answered::Refused(CLIENT_REMOVED.into()),
        _ if approved == 0 => Answered::Refused(RESOURCE_REMOVED.into()),
        _ => Answered::Approved(
            Box::new(held.clone()),
            Approved {
                authorization,
                code,
            },
        ),
    }))
}

/// Before the approval of a metadata-document client: writes (or brings up
/// to date) its row from the document held with the request, the one moment
/// such a row is made. Only for a fresh request that this person may approve
/// for that workspace (anything else is answered by the approval itself,
/// which checks again under lock, and writes nothing here). `Some` answers
/// the request at once: documents turned off, or a client the operator
/// deleted.
fn save_approved_document(
    conn: &mut DbConn,
    config: &Config,
    held: &ConsentRequest,
    user_id: &str,
    workspace_id: &str,
    document: &str,
) -> Result<Option<Answered>> {
    if !config.cimd || held.expires_at < db::now() {
        return Ok(Some(Answered::Expired));
    }
    let role = accounts::role_in(conn, workspace_id, user_id)?;
    if !role.is_some_and(accounts::Role::can_manage) {
        return Ok(None);
    }
    let doc: ClientDocument = serde_json::from_str(document)
        .map_err(|e| Error::internal(format!("a held client metadata document: {e}")))?;
    if doc.client_id != held.client_id {
        return Ok(Some(Answered::Expired));
    }
    match clients::save_document(conn, &doc) {
        Ok(_) => Ok(None),
        Err(Error::Forbidden(msg)) => Ok(Some(Answered::Refused(msg))),
        Err(e) => Err(e),
    }
}

/// [`answer`], and where it sends the person.
pub fn decide(
    conn: &mut DbConn,
    writes: &Group,
    config: &Config,
    session_hash: &str,
    user_id: &str,
    consent_id: &str,
    answer_given: Answer,
) -> Result<Decided> {
    let answered = answer(
        conn,
        writes,
        config,
        session_hash,
        user_id,
        consent_id,
        answer_given,
    )?;
    Ok(match answered {
        Answered::Expired => Decided::Expired,
        Answered::Refused(msg) => Decided::Refused(msg),
        Answered::Approved(held, approved) => {
            Decided::Redirect(code_redirect(&config.issuer, &held, &approved.code))
        }
        Answered::Denied(held) => Decided::Redirect(error_redirect(
            &config.issuer,
            &held.redirect_uri,
            held.state.as_deref(),
            &OAuthError::access_denied("the person denied the request"),
        )),
    })
}
