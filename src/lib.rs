//! keygate: an OAuth 2.0 authorization server and API-key service for a
//! workspace product.
//!
//! Layers, top to bottom: `cli` and `http` (parse, call, map) → `oauth`,
//! `apikeys`, `bearer`, `v1`, `accounts`, `clients`, `sessions` (the logic) →
//! `db` (schema, connections, migrations).

pub mod accounts;
pub mod apikeys;
pub mod audit;
pub mod bearer;
pub mod cache;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
mod fuzz;
pub mod http;
pub mod mailboxes;
pub mod maintenance;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod ratelimit;
pub mod revocation;
pub mod sealing;
pub mod server;
pub mod sessions;
pub mod state;
pub mod usage;
pub mod v1;
