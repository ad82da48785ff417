//! keygate: an OAuth 2.0 authorization server and API-key service for a
//! workspace product.
//!
//! Layers, top to bottom; a module imports only from layers below it:
//!
//! - `cli`: the commands, and `serve`, which starts the listeners;
//! - `http`: thin handlers that parse, call one area function, and map the result;
//!   beside it `smtp`, the SMTP-auth listener Postfix asks (it depends on nothing
//!   else in keygate: `mailboxes` implements its `Authenticator`);
//! - `node`: what one running node holds (services, caches, abuse limits) and
//!   its background tasks;
//! - the areas: `oauth` (the issuer), `apikeys`, `resources` (the product's
//!   own APIs registered as protected resources, and the gateway check: below
//!   `oauth`, which names them, above `v1`, whose check it runs), `v1` (the
//!   workspace resources), `signin` (people signing in through the product's
//!   identity provider);
//! - `credentials` (what a presented credential is: key formats, signing keys,
//!   the one bearer check, its cache, revocation events, usage) and `accounts`
//!   (workspaces, people, roles, sessions, the security log);
//! - `db`: connections, schema, migrations, backups;
//! - shared by all: `error`, `crypto`, `config`, `metrics`, and `outbound`, the one
//!   HTTPS client for requests to URLs others chose (with its SSRF rules).

pub mod accounts;
pub mod admin;
pub mod apikeys;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod http;
pub mod mailboxes;
pub mod metrics;
pub mod node;
pub mod oauth;
pub mod outbound;
pub mod resources;
pub mod signin;
pub mod smtp;
pub mod v1;
pub mod webhooks;
