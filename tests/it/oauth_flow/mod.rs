//! The authorization-code flow end to end: discovery, login, consent, code,
//! token, refresh, and every refusal on the way.

use crate::support::*;
use serde_json::Value;

mod code_flow;
mod consent_login;
mod demo;
mod discovery;
mod errors;
