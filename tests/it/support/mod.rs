//! Test support: a real keygate process on a free port over a fresh database
//! (a SQLite file, or a fresh PostgreSQL database when KEYGATE_TEST_POSTGRES_URL
//! is set), the CLI, and an HTTP client that reads like a client's session.
//!
//! One module per concern; the browser tests include this folder too
//! (`#[path = "../it/support/mod.rs"]`), so each helper is written once.

#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod cli;
pub mod db;
pub mod dns;
pub mod fixture;
pub mod http;
pub mod jose;
pub mod oidc;
pub mod resource;
pub mod server;
pub mod tls;
pub mod upstream;

pub use admin::*;
pub use cli::*;
pub use db::*;
pub use fixture::*;
pub use http::*;
pub use jose::*;
pub use oidc::*;
pub use resource::*;
pub use server::*;
pub use upstream::*;

use std::time::{Duration, Instant};

/// Runs each named test once per backend: `name::sqlite` always, and
/// `name::postgres` against KEYGATE_TEST_POSTGRES_URL (CI sets it; without it the
/// PostgreSQL variant says so and returns).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::support::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if $crate::support::postgres_admin_url().is_none() {
                    eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
                    return;
                }
                super::$name($crate::support::Backend::Postgres)
            } )*
        }
    };
}

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Polls until `f` holds or the time is up.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
