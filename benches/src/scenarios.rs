//! The benchmark's scenarios, as a table: each has a name (the docs quote
//! them), a setup that prepares one state per connection (a token, a key, a
//! set in rotation), and a request: what one iteration sends on its
//! connection and how its answer is checked. One runner (`load::run`) loads
//! each.

// A request takes its state as `&mut S`, whatever S is (a `String` too): the
// table's `fn(&mut C, &mut S)`.
#![allow(clippy::ptr_arg)]

use crate::dpop;
use crate::flows::{self, Flow};
use crate::http::{form, Conn, FORM};
use crate::load::{self, Connection, Stats};
use crate::nodes::Nodes;
use crate::sasl;
use crate::seed::{self, Fixture, Seeded};
use std::cell::OnceCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which runs a scenario is in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// The table of one node only.
    OneNode,
    /// Also each node count of `--nodes`: the base, the `/v1` checks and
    /// the grants.
    AcrossNodes,
}

/// One row of the table, for connections of type `C` with per-connection
/// state `S`.
pub struct Scenario<C, S> {
    pub name: String,
    pub runs: Runs,
    /// Prepares one state per connection (fewer: fewer connections).
    pub setup: fn(&Ctx) -> Result<Vec<S>, String>,
    /// One request: `Some(true)` answered as expected, `Some(false)` not,
    /// `None` when the connection has nothing left to send.
    pub request: fn(&mut C, &mut S) -> Option<bool>,
}

/// A scenario of any connection and state type, as the table holds it.
pub trait Row {
    fn name(&self) -> &str;
    fn runs(&self) -> Runs;
    /// Sets the scenario up and loads it for `cx.duration`.
    fn run(&self, cx: &Ctx) -> Result<Stats, String>;
}

impl<C: Connection, S: Send + 'static> Row for Scenario<C, S> {
    fn name(&self) -> &str {
        &self.name
    }
    fn runs(&self) -> Runs {
        self.runs
    }
    fn run(&self, cx: &Ctx) -> Result<Stats, String> {
        let states = (self.setup)(cx)?;
        Ok(load::run(
            &self.name,
            cx.nodes,
            cx.duration,
            states,
            self.request,
        ))
    }
}

fn row<C: Connection, S: Send + 'static>(
    name: &str,
    runs: Runs,
    setup: fn(&Ctx) -> Result<Vec<S>, String>,
    request: fn(&mut C, &mut S) -> Option<bool>,
) -> Box<dyn Row> {
    Box::new(Scenario {
        name: name.to_string(),
        runs,
        setup,
        request,
    })
}

/// The name of the base of the ratios, run first in every table.
pub const BASE: &str = "/healthz";
/// The DPoP scenario, and the Bearer one its budget starts from.
pub const DPOP: &str = "/v1/workspace (JWT with DPoP)";
pub const BEARER_JWT: &str = "/v1/workspace (JWT)";
/// keygate's introspection, which the benchmark also asks of
/// node-oidc-provider (`comparison`).
pub const INTROSPECTION: &str = "introspection";

/// The table, in the order the scenarios run; `working_set` > 0 adds the
/// large-working-set scenarios.
pub fn table(working_set: usize) -> Vec<Box<dyn Row>> {
    use Runs::*;
    let mut t = vec![
        row(BASE, AcrossNodes, nothing, healthz),
        row("/v1/workspace (API key)", AcrossNodes, api_key, workspace),
        // What nginx's auth_request asks for each request of the product's
        // API: the /v1 check with a route's scope (it should cost what /v1 costs).
        row("/gateway/check (API key)", OneNode, api_key, gateway_check),
        // The same bytes on the wire as the JWT scenario without the check:
        // what carrying a JWT costs the server before keygate looks at it.
        row(
            "/healthz (with a JWT's Authorization header)",
            OneNode,
            jwt,
            healthz_with,
        ),
        row("/v1/workspace (JWT)", AcrossNodes, jwt, workspace),
    ];
    if working_set > 0 {
        t.push(row(
            &in_rotation_name(API_KEYS, working_set),
            OneNode,
            api_keys_in_rotation,
            workspace_in_rotation,
        ));
        t.push(row(
            &in_rotation_name(ACCESS_TOKENS, working_set),
            OneNode,
            access_tokens_in_rotation,
            workspace_in_rotation,
        ));
    }
    t.extend([
        // The same bytes as the DPoP scenario to `/healthz` (proofs signed
        // before the load, as there): what carrying a DPoP request costs the
        // server before keygate looks at it.
        row(
            "/healthz (with a DPoP request's headers)",
            OneNode,
            dpop_cycled,
            healthz_dpop,
        ),
        row(DPOP, OneNode, dpop, workspace_dpop),
        row(INTROSPECTION, OneNode, introspection, introspect),
        row(REFRESH, AcrossNodes, refresh_tokens, refresh),
        row(
            "authorize → consent → token",
            AcrossNodes,
            flow,
            authorize_consent_token,
        ),
        row("revocation", AcrossNodes, minted, revoke),
        // SMTP AUTH over the SASL socket: Postfix's requests, as fast as answered.
        row("SMTP AUTH (SASL, PLAIN)", OneNode, mailbox, smtp_auth),
    ]);
    t
}

const REFRESH: &str = "refresh grant";

/// The credentials of the two large-working-set scenarios, as their names
/// say them.
pub const API_KEYS: &str = "API key";
pub const ACCESS_TOKENS: &str = "JWT";

/// The name of the large-working-set scenario of `credentials`, `n` in rotation.
pub fn in_rotation_name(credentials: &str, n: usize) -> String {
    format!("/v1/workspace ({credentials}, {n} in rotation)")
}

/// What every run of the table is given.
#[derive(Clone, Copy)]
pub struct Bench<'a> {
    /// The issuer of every node.
    pub issuer: &'a str,
    pub fixture: &'a Fixture,
    pub seeded: &'a Seeded,
    pub connections: usize,
    pub duration: Duration,
    /// How many of the seeded credentials the rotation scenarios use.
    pub working_set: usize,
}

/// What the setups of one run work with: the nodes, what was seeded, and
/// what the scenarios of the run share (prepared at the first that needs it).
pub struct Ctx<'a> {
    pub nodes: &'a Nodes,
    pub issuer: &'a str,
    pub connections: usize,
    pub duration: Duration,
    pub fixture: &'a Fixture,
    pub seeded: &'a Seeded,
    pub working_set: usize,
    /// The owner signed in, for the flows.
    flow: OnceCell<Arc<Flow>>,
    /// One authorization per connection: its access and refresh tokens.
    tokens: OnceCell<Vec<(String, String)>>,
    /// The access tokens the refresh grant minted (the revocation spends them).
    minted: Arc<Mutex<Vec<String>>>,
}

impl<'a> Ctx<'a> {
    pub fn new(nodes: &'a Nodes, b: Bench<'a>) -> Ctx<'a> {
        Ctx {
            nodes,
            issuer: b.issuer,
            connections: b.connections,
            duration: b.duration,
            fixture: b.fixture,
            seeded: b.seeded,
            working_set: b.working_set,
            flow: OnceCell::new(),
            tokens: OnceCell::new(),
            minted: Arc::default(),
        }
    }

    /// A connection for setting up (to the first node).
    fn conn(&self) -> Result<Conn, String> {
        Conn::open(&self.nodes.endpoint(0).http).map_err(|e| e.to_string())
    }

    /// The same state for every connection.
    fn each<S: Clone>(&self, state: S) -> Vec<S> {
        vec![state; self.connections]
    }

    fn flow(&self) -> Result<Arc<Flow>, String> {
        if let Some(f) = self.flow.get() {
            return Ok(f.clone());
        }
        let cookie = flows::login(&mut self.conn()?, seed::OWNER_EMAIL, seed::PASSWORD)?;
        let f = Arc::new(Flow {
            cookie,
            client_id: self.fixture.client_id.clone(),
            basic: self.fixture.client_basic.clone(),
            workspace_id: self.fixture.workspace_id.clone(),
            redirect_uri: seed::REDIRECT.to_string(),
        });
        Ok(self.flow.get_or_init(|| f).clone())
    }

    /// One authorization per connection (through the flow), for the JWT,
    /// introspection and refresh scenarios: (access token, refresh token).
    fn tokens(&self) -> Result<&[(String, String)], String> {
        if let Some(t) = self.tokens.get() {
            return Ok(t);
        }
        let f = self.flow()?;
        let mut c = self.conn()?;
        let mut pairs = Vec::new();
        for _ in 0..self.connections {
            let t = flows::flow(&mut c, &f).ok_or("could not complete the flow")?;
            let field = |name: &str| t[name].as_str().unwrap_or("").to_string();
            pairs.push((field("access_token"), field("refresh_token")));
        }
        Ok(self.tokens.get_or_init(|| pairs))
    }
}

// Setups.

fn nothing(cx: &Ctx) -> Result<Vec<()>, String> {
    Ok(cx.each(()))
}

/// The bench workspace's API key as `Authorization`.
fn api_key(cx: &Ctx) -> Result<Vec<String>, String> {
    Ok(cx.each(format!("Bearer {}", cx.fixture.api_key)))
}

/// A connection's own access token as `Authorization`.
fn jwt(cx: &Ctx) -> Result<Vec<String>, String> {
    let tokens = cx.tokens()?;
    Ok(tokens.iter().map(|(a, _)| format!("Bearer {a}")).collect())
}

/// A set of credentials in rotation, and where in it the connection is.
type Rotation = (Vec<String>, usize);

fn api_keys_in_rotation(cx: &Ctx) -> Result<Vec<Rotation>, String> {
    Ok(in_rotation(cx, &cx.seeded.api_keys[..cx.working_set]))
}

fn access_tokens_in_rotation(cx: &Ctx) -> Result<Vec<Rotation>, String> {
    Ok(in_rotation(cx, &cx.seeded.access_tokens[..cx.working_set]))
}

/// Splits the credentials into one `Bearer …` set per connection, and sends
/// each once (unmeasured, from as many threads, to the node its connection
/// will load) to bring it into the node's cache.
fn in_rotation(cx: &Ctx, creds: &[String]) -> Vec<Rotation> {
    let k = cx.connections.min(creds.len()).max(1);
    let mut sets = vec![Vec::new(); k];
    for (i, c) in creds.iter().enumerate() {
        sets[i % k].push(format!("Bearer {c}"));
    }
    std::thread::scope(|scope| {
        for (i, set) in sets.iter().enumerate() {
            let addr = &cx.nodes.endpoint(i).http;
            scope.spawn(move || {
                let Ok(mut c) = Conn::open(addr) else { return };
                for h in set {
                    c.send("GET", "/v1/workspace", &[("Authorization", h)], "");
                }
            });
        }
    });
    sets.into_iter().map(|s| (s, 0)).collect()
}

/// Proofs a second the DPoP scenario's connections together sign ahead for
/// each second of load: above what one server core answers here, so that the
/// load generator measures the server, not its own signing.
const PROOFS_PER_SECOND: usize = 25_000;
/// Proofs each connection of the `/healthz` scenario cycles through (it
/// checks none).
const CYCLED_PROOFS: usize = 64;

/// DPoP (RFC 9449): a token bound to a key of the connection's own, from the
/// service client, and proofs for `/v1/workspace` signed before the load
/// starts, each used once (a connection that runs out signs more as it goes).
fn dpop(cx: &Ctx) -> Result<Vec<DpopState>, String> {
    let per_connection =
        (cx.duration.as_secs_f64() * PROOFS_PER_SECOND as f64 / cx.connections as f64).ceil();
    dpop_states(cx, per_connection as usize, false)
}

/// [`dpop`] with a few proofs each connection sends in turn.
fn dpop_cycled(cx: &Ctx) -> Result<Vec<DpopState>, String> {
    dpop_states(cx, CYCLED_PROOFS, true)
}

fn dpop_states(cx: &Ctx, proofs: usize, cycled: bool) -> Result<Vec<DpopState>, String> {
    let mut c = cx.conn()?;
    let token_url = format!("{}/oauth/token", cx.issuer);
    let url = format!("{}/v1/workspace", cx.issuer);
    let mut states = Vec::new();
    for _ in 0..cx.connections {
        let key = dpop::Key::new().ok_or("cannot make a DPoP key")?;
        let proof = key.proof("POST", &token_url, None);
        let r = c.send(
            "POST",
            "/oauth/token",
            &[
                ("Authorization", &cx.fixture.service_basic),
                ("DPoP", &proof),
                FORM,
            ],
            "grant_type=client_credentials",
        );
        let token = r.json()["access_token"].as_str().unwrap_or("").to_string();
        states.push(DpopState {
            key,
            token,
            url: url.clone(),
            proofs: Vec::new(),
            cycled,
            next: 0,
        });
    }
    // Signed on every core at once, before the load.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = states.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        for chunk in states.chunks_mut(share) {
            scope.spawn(move || {
                for s in chunk {
                    s.proofs = (0..proofs)
                        .map(|_| s.key.proof("GET", &s.url, Some(&s.token)))
                        .collect();
                }
            });
        }
    });
    Ok(states)
}

pub struct DpopState {
    key: dpop::Key,
    token: String,
    /// The `htu` of the proofs.
    url: String,
    /// Proofs signed ahead.
    proofs: Vec<String>,
    /// Whether the proofs are sent in turn (or each once).
    cycled: bool,
    next: usize,
}

impl DpopState {
    fn proof(&mut self) -> String {
        if self.cycled && !self.proofs.is_empty() {
            self.next = (self.next + 1) % self.proofs.len();
            return self.proofs[self.next].clone();
        }
        self.proofs
            .pop()
            .unwrap_or_else(|| self.key.proof("GET", &self.url, Some(&self.token)))
    }
}

/// The client's credentials and an introspection request of the
/// connection's access token.
fn introspection(cx: &Ctx) -> Result<Vec<(String, String)>, String> {
    let tokens = cx.tokens()?;
    let basic = &cx.fixture.client_basic;
    Ok(tokens
        .iter()
        .map(|(a, _)| (basic.clone(), form(&[("token", a)])))
        .collect())
}

/// Per connection: the client's credentials, the current refresh token, and
/// where the minted access tokens go (the revocation scenario spends them).
pub struct RefreshState {
    basic: String,
    refresh_token: String,
    minted: Arc<Mutex<Vec<String>>>,
}

fn refresh_tokens(cx: &Ctx) -> Result<Vec<RefreshState>, String> {
    let tokens = cx.tokens()?;
    Ok(tokens
        .iter()
        .map(|(_, r)| RefreshState {
            basic: cx.fixture.client_basic.clone(),
            refresh_token: r.clone(),
            minted: cx.minted.clone(),
        })
        .collect())
}

fn flow(cx: &Ctx) -> Result<Vec<Arc<Flow>>, String> {
    Ok(cx.each(cx.flow()?))
}

/// The access tokens the refresh grant minted, each revoked once, split over
/// the connections. When the refresh grant did not run (`--only`), it runs
/// first, unreported, to mint them.
fn minted(cx: &Ctx) -> Result<Vec<(String, Vec<String>)>, String> {
    if cx.minted.lock().unwrap().is_empty() {
        let states = refresh_tokens(cx)?;
        load::run(REFRESH, cx.nodes, cx.duration, states, refresh);
    }
    let tokens = std::mem::take(&mut *cx.minted.lock().unwrap());
    let per = (tokens.len() / cx.connections.max(1)).max(1);
    let basic = &cx.fixture.client_basic;
    Ok(tokens
        .chunks(per)
        .map(|c| (basic.clone(), c.to_vec()))
        .take(cx.connections)
        .collect())
}

/// The mailbox's address and auth key, as SASL PLAIN's initial response.
fn mailbox(cx: &Ctx) -> Result<Vec<String>, String> {
    Ok(cx.each(sasl::plain(seed::MAILBOX, &cx.fixture.auth_key)))
}

// Requests.

fn healthz(c: &mut Conn, _: &mut ()) -> Option<bool> {
    Some(c.send("GET", "/healthz", &[], "").status == 200)
}

fn healthz_with(c: &mut Conn, authorization: &mut String) -> Option<bool> {
    let r = c.send("GET", "/healthz", &[("Authorization", authorization)], "");
    Some(r.status == 200)
}

fn workspace(c: &mut Conn, authorization: &mut String) -> Option<bool> {
    let r = c.send(
        "GET",
        "/v1/workspace",
        &[("Authorization", authorization)],
        "",
    );
    Some(r.status == 200)
}

fn gateway_check(c: &mut Conn, authorization: &mut String) -> Option<bool> {
    let headers = [
        ("Authorization", authorization.as_str()),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/tags/7?page=2"),
    ];
    let path = "/gateway/check?resource=https%3A%2F%2Fapi.bench.example";
    Some(c.send("GET", path, &headers, "").status == 200)
}

fn workspace_in_rotation(c: &mut Conn, (set, i): &mut Rotation) -> Option<bool> {
    *i = (*i + 1) % set.len();
    let r = c.send("GET", "/v1/workspace", &[("Authorization", &set[*i])], "");
    Some(r.status == 200)
}

fn workspace_dpop(c: &mut Conn, s: &mut DpopState) -> Option<bool> {
    dpop_request(c, s, "/v1/workspace")
}

fn healthz_dpop(c: &mut Conn, s: &mut DpopState) -> Option<bool> {
    dpop_request(c, s, "/healthz")
}

/// `GET path` with the headers of a DPoP request for `/v1/workspace`.
fn dpop_request(c: &mut Conn, s: &mut DpopState, path: &str) -> Option<bool> {
    let proof = s.proof();
    let auth = format!("DPoP {}", s.token);
    let headers = [("Authorization", auth.as_str()), ("DPoP", &proof)];
    Some(c.send("GET", path, &headers, "").status == 200)
}

fn introspect(c: &mut Conn, state: &mut (String, String)) -> Option<bool> {
    introspect_at(c, "/oauth/introspect", state)
}

/// An introspection request at `path` with the client's Basic header and the
/// form `body`; `true` when the token is active.
pub fn introspect_at(c: &mut Conn, path: &str, (basic, body): &(String, String)) -> Option<bool> {
    let r = c.send("POST", path, &[("Authorization", basic), FORM], body);
    Some(r.status == 200 && r.body.starts_with(b"{\"active\":true"))
}

fn refresh(c: &mut Conn, s: &mut RefreshState) -> Option<bool> {
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &s.refresh_token),
    ]);
    let r = c.send(
        "POST",
        "/oauth/token",
        &[("Authorization", &s.basic), FORM],
        &body,
    );
    if r.status != 200 {
        return Some(false);
    }
    let v = r.json();
    s.refresh_token = v["refresh_token"].as_str().unwrap_or("").to_string();
    let access = v["access_token"].as_str().unwrap_or("").to_string();
    s.minted.lock().unwrap().push(access);
    Some(true)
}

fn authorize_consent_token(c: &mut Conn, f: &mut Arc<Flow>) -> Option<bool> {
    Some(flows::flow(c, f).is_some())
}

fn revoke(c: &mut Conn, (basic, tokens): &mut (String, Vec<String>)) -> Option<bool> {
    let token = tokens.pop()?;
    let r = c.send(
        "POST",
        "/oauth/revoke",
        &[("Authorization", basic), FORM],
        &form(&[("token", &token)]),
    );
    Some(r.status == 200)
}

fn smtp_auth(c: &mut sasl::Client, resp: &mut String) -> Option<bool> {
    Some(c.auth(resp))
}
