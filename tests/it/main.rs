//! One integration-test binary: each module drives a real keygate process over
//! HTTP and its CLI, on SQLite and (with KEYGATE_TEST_POSTGRES_URL) PostgreSQL.

#[macro_use]
pub mod support;

mod admin_api;
mod apikey_features;
mod apikeys;
mod architecture;
mod cimd;
mod cimd_flow;
mod cimd_limits;
mod cli;
mod developer_apps;
mod domains;
mod faults;
mod https_server;
mod login_limits;
mod machine;
mod mailboxes;
mod mcp_sdk;
mod membership;
mod oauth2_client;
mod oauth_flow;
mod openapi;
mod ops;
mod postfix;
mod registration;
mod require;
mod resources;
mod revocation;
mod revocation_bound;
mod revocation_clients;
mod sasl;
mod security;
mod settings_ui;
mod signin_provider;
mod signin_refusals;
mod team;
mod v1_api;
