//! The token endpoint's grants (RFC 6749 §4.1.3 and §6), each one short
//! write, shared on SQLite with the writes that arrive with it (`db::group`).
//! Codes and refresh tokens are single-use by a conditional UPDATE, so that a
//! lost race is an `invalid_grant`, never a 500.

use super::authorizations::{self, Authorization};
use super::error::OAuthError;
use super::{engine, Params};
use crate::config::Config;
use crate::credentials::revocation::Event;
use crate::credentials::scopes;
use crate::credentials::signing_keys::{AccessClaims, KeyRing};
use crate::crypto;
use crate::db::schema::{access_tokens, auth_codes, authorizations as authz, refresh_tokens};
use crate::db::{self, DbConn};
use crate::oauth::clients::Client;
use diesel::prelude::*;
use serde::Serialize;

mod authorization_code;
pub(crate) mod client_credentials;
pub mod jwt_bearer;
mod refresh_token;
pub use authorization_code::authorization_code;
pub use client_credentials::client_credentials;
pub use jwt_bearer::jwt_bearer;
pub use refresh_token::refresh_token;

#[derive(Serialize, Debug)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// `None` for a client that did not register the `refresh_token` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    pub workspace_id: String,
}

/// What every grant works with: the node's settings and the client that
/// authenticated.
#[derive(Clone, Copy)]
pub struct Grant<'a> {
    config: &'a Config,
    client: &'a Client,
    writes: &'a db::group::Group,
    /// The key of the request's DPoP proof (RFC 9449 §5), if it sent one.
    dpop_jkt: Option<&'a str>,
    /// An identity assertion's issuer keys, fetched for the request.
    idp_keys: &'a [(String, std::sync::Arc<jsonwebtoken::jwk::JwkSet>)],
}

/// What a grant produced: the tokens issued (stored, the access token still
/// to sign), or an error plus revocation events to apply (a replayed code or
/// refresh token revokes its authorization).
pub type GrantResult = Result<Issued, (OAuthError, Vec<Event>)>;

/// A grant's tokens once their rows are written: the access token's claims,
/// signed by [`Issued::sign`] after the write has committed (outside the
/// write transaction, which on SQLite other grants share).
pub struct Issued {
    claims: AccessClaims,
    refresh_token: Option<String>,
    expires_in: i64,
}

impl Issued {
    /// Signs the access token: the token endpoint's response.
    pub fn sign(self, keys: &KeyRing) -> Result<TokenResponse, OAuthError> {
        let access_token = keys.sign(&self.claims)?;
        Ok(TokenResponse {
            access_token,
            token_type: if self.claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: self.expires_in,
            refresh_token: self.refresh_token,
            scope: self.claims.scope,
            workspace_id: self.claims.workspace_id,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = auth_codes)]
struct CodeRow {
    authorization_id: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    expires_at: i64,
    used_at: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshRow {
    authorization_id: String,
    client_id: String,
    scopes: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    /// The DPoP key a public client's refresh token is bound to.
    jkt: Option<String>,
}

/// What a grant spends once: an authorization code or a refresh token.
#[derive(Clone, Copy)]
enum Spent {
    Code,
    RefreshToken,
}

impl Spent {
    fn noun(self) -> &'static str {
        match self {
            Spent::Code => "authorization code",
            Spent::RefreshToken => "refresh token",
        }
    }

    /// Why its authorization is revoked when it is presented again.
    fn replay_cause(self) -> authorizations::Cause<'static> {
        match self {
            Spent::Code => authorizations::Cause::CodeReplay,
            Spent::RefreshToken => authorizations::Cause::RefreshReuse,
        }
    }
}

/// The state of a code's or refresh token's row that decides whether it can
/// be spent by this client now.
struct Spendable<'a> {
    authorization_id: &'a str,
    client_id: &'a str,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    expires_at: i64,
}

/// A code's or refresh token's row.
trait SingleUse: Sized {
    const SPENT: Spent;
    /// The row of this hash, with its authorization (what a grant needs of
    /// it never changes).
    fn find(conn: &mut DbConn, hash: &str) -> QueryResult<Option<(Self, Authorization)>>;
    fn state(&self) -> Spendable<'_>;
    /// How the grant spends the row of `hash`.
    fn spending(hash: String) -> Spending;
}

/// How a grant spends a code or refresh token: a conditional UPDATE that
/// marks its row used only while it is still unused, so that of two
/// concurrent grants one wins and the other sees a replay.
struct Spending {
    table: &'static str,
    /// Its row, still unspent.
    unspent: Box<dyn db::kept::Fragment + Send>,
}

/// `SingleUse` for the row type `$row` of the table `$table`; `$revoked`
/// reads its revocation time (a code has none: revoking its authorization
/// marks it used), and `$unspent` are the filters of a row still to spend.
macro_rules! single_use {
    ($row:ident, $table:ident, $spent:expr, $revoked:expr, $($unspent:expr),+) => {
        impl SingleUse for $row {
            const SPENT: Spent = $spent;

            fn find(conn: &mut DbConn, hash: &str) -> QueryResult<Option<(Self, Authorization)>> {
                db::on_engine!(conn, |c| $table::table
                    .find(hash)
                    .inner_join(authz::table.on(authz::id.eq($table::authorization_id)))
                    .select(($row::as_select(), Authorization::as_select()))
                    .first(c)
                    .optional())
            }

            fn state(&self) -> Spendable<'_> {
                let revoked: fn(&$row) -> Option<i64> = $revoked;
                Spendable {
                    authorization_id: &self.authorization_id,
                    client_id: &self.client_id,
                    used_at: self.used_at,
                    revoked_at: revoked(self),
                    expires_at: self.expires_at,
                }
            }

            fn spending(hash: String) -> Spending {
                let unspent = diesel::Table::primary_key(&$table::table).eq(hash)$(.and($unspent))+;
                Spending {
                    table: stringify!($table),
                    unspent: Box::new(unspent),
                }
            }
        }
    };
}

single_use!(
    CodeRow,
    auth_codes,
    Spent::Code,
    |_| None,
    auth_codes::used_at.is_null()
);
single_use!(
    RefreshRow,
    refresh_tokens,
    Spent::RefreshToken,
    |row| row.revoked_at,
    refresh_tokens::used_at.is_null(),
    refresh_tokens::revoked_at.is_null()
);

/// RFC 6749 §5.2: refuses a code or refresh token that was not found, was
/// issued to another client, is revoked, already used (which revokes its
/// authorization, RFC 9700 §4.14.2) or expired; otherwise hands it back with
/// its authorization.
fn find_spendable<R: SingleUse>(
    conn: &mut DbConn,
    client: &Client,
    hash: &str,
) -> Result<(R, Authorization), (OAuthError, Vec<Event>)> {
    let spent = R::SPENT;
    let found = R::find(conn, hash).map_err(internal)?;
    let noun = spent.noun();
    let invalid = |why: String| Err(plain(OAuthError::invalid_grant(why)));
    let Some((row, authorization)) = found else {
        return invalid(format!("the {noun} is invalid"));
    };
    let state = row.state();
    if state.client_id != client.id {
        return invalid(format!("the {noun} was issued to another client"));
    }
    if state.revoked_at.is_some() {
        return invalid(format!("the {noun} has been revoked"));
    }
    if state.used_at.is_some() {
        return Err(replayed(conn, state.authorization_id, spent));
    }
    if state.expires_at < db::now() {
        return invalid(format!("the {noun} has expired"));
    }
    Ok((row, authorization))
}

/// Spends the code or refresh token of `hash` for new tokens (see `redeem`)
/// and answers: the signed tokens once committed, or why not.
fn spend<R: SingleUse>(
    conn: &mut DbConn,
    cx: &Grant,
    authorization: &Authorization,
    hash: &str,
    prepared: Prepared,
) -> GrantResult {
    let prepared = bind(prepared, cx);
    let spending = R::spending(hash.to_string());
    let outcome = redeem(
        conn,
        cx.writes,
        authorization.clone(),
        prepared,
        Some(spending),
    )
    .map_err(plain)?;
    match outcome {
        Redeemed::Issued(p) => Ok(p.issued(cx.config)),
        Redeemed::Refused(e) => Err(plain(e)),
        Redeemed::ApproverGone => Err(approver_gone(conn, &authorization.id)),
        Redeemed::Replayed => Err(replayed(conn, &authorization.id, R::SPENT)),
    }
}

/// RFC 8707 §2.2: a token request names no resource, or the one its
/// authorization was granted for (`{issuer}/v1` when it named none).
fn same_resource(
    params: &Params,
    config: &Config,
    authorization: &Authorization,
) -> Result<(), (OAuthError, Vec<Event>)> {
    let granted = (authorization.resource.clone()).unwrap_or_else(|| config.resource());
    match params.all("resource")[..] {
        [] => Ok(()),
        [one] if crate::resources::identifier::same(one, &granted) => Ok(()),
        [_] => Err(plain(OAuthError::invalid_target(
            "the authorization was not granted for this resource",
        ))),
        _ => Err(plain(OAuthError::invalid_target(
            "name one resource per request (RFC 8707)",
        ))),
    }
}

/// The resource a machine grant's token is for (RFC 8707): `None` for
/// `{issuer}/v1` (none named), else the identifier of the registered resource
/// `named` (an unknown one is `invalid_target`).
fn machine_resource(
    conn: &mut DbConn,
    config: &Config,
    named: Option<&str>,
) -> Result<Option<String>, (OAuthError, Vec<Event>)> {
    match named {
        None => Ok(None),
        Some(r) if crate::resources::identifier::same(r, &config.resource()) => Ok(None),
        Some(r) => {
            let found = crate::oauth::registered_resource(conn, r).map_err(plain)?;
            Ok(Some(found.identifier))
        }
    }
}

/// A parameter the grant cannot go without (RFC 6749 §4.1.3, §6).
fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, (OAuthError, Vec<Event>)> {
    params
        .get(name)
        .map_err(plain)?
        .ok_or_else(|| plain(OAuthError::invalid_request(format!("{name} is required"))))
}

fn plain(e: OAuthError) -> (OAuthError, Vec<Event>) {
    (e, Vec::new())
}

fn internal(e: impl Into<OAuthError>) -> (OAuthError, Vec<Event>) {
    (e.into(), Vec::new())
}

/// Revokes the authorization behind a replayed code or refresh token and answers
/// `invalid_grant`.
fn replayed(conn: &mut DbConn, authorization_id: &str, spent: Spent) -> (OAuthError, Vec<Event>) {
    let what = spent.noun();
    // Lost to a revocation rather than replayed: nothing more to revoke.
    if let Ok(a) = authorizations::find(conn, authorization_id) {
        if a.revoked_at.is_some() {
            return plain(OAuthError::invalid_grant(
                "the authorization has been revoked",
            ));
        }
    }
    log::warn!("{what} replayed: revoking authorization {authorization_id}");
    let events = match authorizations::revoke_recorded(conn, authorization_id, spent.replay_cause())
    {
        Ok((_, events)) => events,
        Err(e) => return internal(e),
    };
    (
        OAuthError::invalid_grant(format!(
            "the {what} was already used; every token issued from it has been revoked"
        )),
        events,
    )
}

/// Inside a grant's transaction: whether the person who approved the app is
/// still an owner or admin of its workspace (the grant's UPDATE of the
/// authorization carries the same rule as `accounts::manages`). A removal revokes what they
/// approved, but a grant must not rest on that alone (a role changed outside
/// keygate, or a removal that raced the approval). A plain read, no lock: the
/// grant already holds the authorization row, which a removal locks after the
/// membership, so locking the membership here could deadlock with it; and a
/// removal that commits after this read still revokes what the grant issues.
fn approver_still_manages(
    conn: &mut DbConn,
    authorization: &Authorization,
) -> Result<bool, OAuthError> {
    let role = crate::accounts::role_in(conn, &authorization.workspace_id, &authorization.user_id)?;
    Ok(role.is_some_and(crate::accounts::Role::can_manage))
}

/// Revokes an authorization whose approver no longer manages the workspace,
/// and answers `invalid_grant`.
fn approver_gone(conn: &mut DbConn, authorization_id: &str) -> (OAuthError, Vec<Event>) {
    log::warn!("the approver of authorization {authorization_id} no longer manages its workspace: revoking it");
    match authorizations::revoke_recorded(
        conn,
        authorization_id,
        authorizations::Cause::ApproverRemoved,
    ) {
        Ok((_, events)) => (
            OAuthError::invalid_grant(
                "the person who authorized this app is no longer an owner or admin of the workspace",
            ),
            events,
        ),
        Err(e) => internal(e),
    }
}

/// The tokens of a grant, made before its transaction: the transaction
/// only stores their rows, and the JWT is signed after it has committed.
struct Prepared {
    refresh: Option<NewRefresh>,
    claims: AccessClaims,
}

/// A refresh token to issue with the access token.
struct NewRefresh {
    token: String,
    hash: String,
    scopes: String,
    expires_at: i64,
    /// The DPoP key it is bound to (public clients, RFC 9449 §5).
    jkt: Option<String>,
}

/// RFC 9449 §5: with a DPoP proof, the access token is bound to its key
/// (`cnf.jkt`), and so is a public client's refresh token.
fn bind(mut prepared: Prepared, cx: &Grant) -> Prepared {
    if let Some(jkt) = cx.dpop_jkt {
        prepared.claims.cnf = Some(crate::credentials::signing_keys::Confirmation {
            jkt: jkt.to_string(),
        });
        if let (Some(refresh), true) = (prepared.refresh.as_mut(), cx.client.is_public) {
            refresh.jkt = Some(jkt.to_string());
        }
    }
    prepared
}

/// `refresh_scopes`: the scopes of a new refresh token, or `None` when the
/// client gets none (it did not register the `refresh_token` grant).
fn prepare(
    config: &Config,
    authorization: &Authorization,
    refresh_scopes: Option<&str>,
    access_scopes: &str,
) -> Prepared {
    let now = db::now();
    let refresh = refresh_scopes.map(|scopes| {
        let token = crypto::random_token(32);
        NewRefresh {
            hash: crypto::sha256_hex(&token),
            token,
            scopes: scopes.to_string(),
            expires_at: now + config.refresh_token_ttl,
            jkt: None,
        }
    });
    Prepared {
        refresh,
        claims: AccessClaims {
            iss: config.issuer.clone(),
            sub: authorization.user_id.clone(),
            // RFC 8707: the resource the authorization was granted for.
            aud: authorization
                .resource
                .clone()
                .unwrap_or_else(|| config.resource()),
            client_id: authorization.client_id.clone(),
            scope: access_scopes.to_string(),
            jti: db::new_id(),
            iat: now,
            exp: now + config.access_token_ttl,
            workspace_id: authorization.workspace_id.clone(),
            cnf: None,
        },
    }
}

impl Prepared {
    /// The rows to store: the refresh token's (if any) and the access token's.
    #[allow(clippy::type_complexity)]
    fn rows<'a>(
        &'a self,
        authorization_id: &'a str,
    ) -> (
        Option<[(&'static str, db::Piece<'a>); 7]>,
        [(&'static str, db::Piece<'a>); 5],
    ) {
        use db::Piece::{Int, OptText, Text};
        use diesel::Column;
        let now = self.claims.iat;
        let refresh = self.refresh.as_ref().map(|refresh| {
            [
                (refresh_tokens::token_hash::NAME, Text(&refresh.hash)),
                (
                    refresh_tokens::authorization_id::NAME,
                    Text(authorization_id),
                ),
                (
                    refresh_tokens::client_id::NAME,
                    Text(&self.claims.client_id),
                ),
                (refresh_tokens::scopes::NAME, Text(&refresh.scopes)),
                (refresh_tokens::created_at::NAME, Int(now)),
                (refresh_tokens::expires_at::NAME, Int(refresh.expires_at)),
                (refresh_tokens::jkt::NAME, OptText(refresh.jkt.as_deref())),
            ]
        });
        let access = [
            (access_tokens::jti::NAME, Text(&self.claims.jti)),
            (
                access_tokens::authorization_id::NAME,
                Text(authorization_id),
            ),
            (access_tokens::client_id::NAME, Text(&self.claims.client_id)),
            (access_tokens::created_at::NAME, Int(now)),
            (access_tokens::expires_at::NAME, Int(self.claims.exp)),
        ];
        (refresh, access)
    }

    /// Inside the transaction: stores the refresh token's and the access token's rows.
    fn store(&self, conn: &mut DbConn, authorization_id: &str) -> Result<(), OAuthError> {
        let (refresh, access) = self.rows(authorization_id);
        if let Some(refresh) = refresh {
            db::kept::insert(conn, "refresh_tokens", &refresh)?;
        }
        db::kept::insert(conn, "access_tokens", &access)?;
        Ok(())
    }

    /// Once its rows are written: the tokens, to sign after the commit.
    fn issued(self, config: &Config) -> Issued {
        Issued {
            claims: self.claims,
            refresh_token: self.refresh.map(|r| r.token),
            expires_in: config.access_token_ttl,
        }
    }
}

/// The write of a grant: checks the authorization and its approver, spends
/// the code or refresh token if the grant spends one (answering a replay
/// when it was no longer unspent) and stores the new tokens' rows. It is
/// answered only once committed; the JWT is signed after that, so the write
/// lock is held for database work only. On SQLite it runs in a transaction
/// shared with the grants that arrive with it (`db::group`); on PostgreSQL
/// it is one statement ([`redeem_at_once`]).
fn redeem(
    conn: &mut DbConn,
    writes: &db::group::Group,
    authorization: Authorization,
    prepared: Prepared,
    spending: Option<Spending>,
) -> Result<Redeemed, OAuthError> {
    if let DbConn::Postgresql(_) = conn {
        return redeem_at_once(conn, &authorization, prepared, spending);
    }
    writes.run(conn, move |conn| {
        // The authorization row first: a revocation locks it first too, so the
        // two never wait on each other in opposite orders.
        let touched = still_active(&authorization, |still| {
            db::kept::update(conn, "authorizations", "last_used_at", db::now(), still)
        })?;
        if touched == 0 {
            return why_inactive(conn, &authorization);
        }
        if let Some(spending) = spending {
            let spent = db::kept::update(
                conn,
                spending.table,
                "used_at",
                db::now(),
                &*spending.unspent,
            )?;
            if spent == 0 {
                return Ok(Redeemed::Replayed);
            }
        }
        prepared.store(conn, &authorization.id)?;
        Ok(Redeemed::Issued(Box::new(prepared)))
    })
}

/// PostgreSQL: [`redeem`]'s write as one statement, a data-modifying `WITH`
/// whose parts run in the same order and each only if the one before
/// matched (`a`: the authorization touched, `c`: the code or refresh token
/// spent, then the new rows): one round trip instead of six (`BEGIN`, four
/// writes, `COMMIT`), atomic as every statement, and kept prepared.
fn redeem_at_once(
    conn: &mut DbConn,
    authorization: &Authorization,
    prepared: Prepared,
    spending: Option<Spending>,
) -> Result<Redeemed, OAuthError> {
    let now = db::now();
    let (refresh, access) = prepared.rows(&authorization.id);
    let [touched, spent] = still_active(authorization, |still| {
        let mut chain = db::kept::Chain::new();
        let touch = db::kept::Update {
            table: "authorizations",
            column: "last_used_at",
            value: now,
            condition: still,
        };
        chain.update("a", touch, None);
        match &spending {
            Some(spending) => {
                let spend = db::kept::Update {
                    table: spending.table,
                    column: "used_at",
                    value: now,
                    condition: &*spending.unspent,
                };
                chain.update("c", spend, Some("a"));
            }
            None => chain.part("c", [db::Piece::Sql("SELECT 1 FROM a")]),
        }
        if let Some(refresh) = &refresh {
            chain.insert("r", "refresh_tokens", refresh, "c");
        }
        chain.insert("t", "access_tokens", &access, "c");
        chain.counts(["a", "c"], conn)
    })?;
    if touched == 0 {
        return why_inactive(conn, authorization);
    }
    if spent == 0 {
        return Ok(Redeemed::Replayed);
    }
    Ok(Redeemed::Issued(Box::new(prepared)))
}

/// `f` given the condition of the authorization still active with its
/// approver still managing the workspace (see [`approver_still_manages`]):
/// the grant's UPDATE of the authorization carries both, and the row lock it
/// takes orders the grant against a concurrent revocation, which locks the
/// same row first.
fn still_active<T>(
    authorization: &Authorization,
    f: impl FnOnce(&dyn db::kept::Fragment) -> T,
) -> T {
    let active = authz::id
        .eq(&authorization.id)
        .and(authz::revoked_at.is_null());
    let manages = crate::accounts::manages(&authorization.workspace_id, &authorization.user_id);
    let approver = db::Kept(&manages);
    f(&db::Kept(&[
        db::Piece::Fragment(&active),
        db::Piece::Sql(" AND "),
        db::Piece::Fragment(&approver),
    ]))
}

/// When the authorization's UPDATE matched no row: a second read tells a
/// revoked authorization from an approver who no longer manages the workspace.
fn why_inactive(conn: &mut DbConn, authorization: &Authorization) -> Result<Redeemed, OAuthError> {
    let active = authz::table
        .find(&authorization.id)
        .filter(authz::revoked_at.is_null())
        .count()
        .get_result::<i64>(conn)?;
    if active == 0 || approver_still_manages(conn, authorization)? {
        // (The membership came back between the two reads: a refusal all the same.)
        return Ok(Redeemed::Refused(OAuthError::invalid_grant(
            "the authorization has been revoked",
        )));
    }
    Ok(Redeemed::ApproverGone)
}

enum Redeemed {
    /// Committed: what is left is to sign the access token.
    Issued(Box<Prepared>),
    Replayed,
    Refused(OAuthError),
    /// The approver no longer manages the workspace: nothing was consumed;
    /// the authorization is to be revoked.
    ApproverGone,
}

/// RFC 9449 §11.1: a DPoP proof at the token endpoint is used once; its
/// `jti` is recorded once the client has authenticated (a stranger's proofs
/// write nothing).
fn spend_dpop_proof(issuer: &super::Issuer, conn: &mut DbConn) -> Result<(), OAuthError> {
    let Some(proof) = issuer.extras.and_then(|e| e.dpop.as_ref()) else {
        return Ok(());
    };
    if crate::credentials::dpop::use_jti(conn, proof)? {
        Ok(())
    } else {
        Err(OAuthError::invalid_dpop_proof(
            "this proof (its jti) was already used",
        ))
    }
}

/// The token endpoint (RFC 6749 §3.2), its tokens signed: [`issue`], then
/// [`Issued::sign`].
pub fn grant(
    issuer: &super::Issuer,
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    issue(issuer, conn, authorization_header, params)?.sign(&issuer.credentials.keys)
}

/// The token endpoint's work in the database (RFC 6749 §3.2): authenticates
/// the client, dispatches on `grant_type`, applies what a refused grant
/// revoked (a replayed code or refresh token) to this node's cache, and
/// counts the outcome. The access token is left to sign once the write has
/// committed.
pub fn issue(
    issuer: &super::Issuer,
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let grant_type = params.get("grant_type").ok().flatten();
    let label = match grant_type {
        Some(g @ ("authorization_code" | "refresh_token" | "client_credentials")) => g,
        Some(jwt_bearer::GRANT) => "jwt_bearer",
        Some(_) => "other",
        None => "none",
    };
    let result = (|| {
        // A protected resource's credentials are for introspection only.
        if let Some(resource) =
            super::resource_clients::authenticate(issuer, conn, authorization_header, params)
        {
            resource.map_err(plain)?;
            return Err(plain(OAuthError::unauthorized_client(
                "a resource's credentials obtain no tokens; they serve introspection",
            )));
        }
        let client = issuer
            .authenticate(
                conn,
                authorization_header,
                params,
                super::client_auth::Allow::PublicToo,
            )
            .map_err(plain)?;
        spend_dpop_proof(issuer, conn).map_err(plain)?;
        let cx = Grant {
            config: issuer.config,
            client: &client,
            writes: issuer.writes,
            dpop_jkt: issuer
                .extras
                .and_then(|e| e.dpop.as_ref())
                .map(|p| p.jkt.as_str()),
            idp_keys: issuer.extras.map_or(&[], |e| e.idp_keys.as_slice()),
        };
        match params.get("grant_type").map_err(plain)? {
            Some("authorization_code") => authorization_code(conn, &cx, params),
            Some("refresh_token") => refresh_token(conn, &cx, params),
            Some("client_credentials") => client_credentials(conn, &cx, params),
            Some(jwt_bearer::GRANT) => jwt_bearer(conn, &cx, params),
            Some(other) => Err(plain(OAuthError::unsupported_grant_type(format!(
                "grant_type {other:?} is not supported"
            )))),
            None => Err(plain(OAuthError::invalid_request("grant_type is required"))),
        }
    })();
    let grants = &crate::metrics::METRICS.grants;
    match result {
        Ok(resp) => {
            grants.with_label_values(&[label, "ok"]).inc();
            Ok(resp)
        }
        Err((e, events)) => {
            grants.with_label_values(&[label, e.code()]).inc();
            issuer.credentials.cache.apply(&events);
            Err(e)
        }
    }
}
