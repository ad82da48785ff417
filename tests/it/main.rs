//! One integration-test binary: each module drives a real keygate process over
//! HTTP and its CLI, on SQLite and (with KEYGATE_TEST_POSTGRES_URL) PostgreSQL.

#[macro_use]
pub mod support;

mod apikeys;
mod cimd;
mod cli;
mod faults;
mod https_server;
mod mailboxes;
mod oauth2_client;
mod oauth_flow;
mod openapi;
mod ops;
mod postfix;
mod require;
mod revocation;
mod sasl;
mod security;
mod v1_api;
