//! What `/v1` reads and writes on the wire, apart from the logic (as Kanidm's
//! `proto`). Errors are `V1Error`; their envelope is written in `http::v1`.

use serde::{Deserialize, Serialize};

/// The query of a list request: `?limit=…&starting_after=…`, as text, so
/// that every way it is wrong gets the contract's own message.
#[derive(Deserialize, Debug, Default)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub starting_after: Option<String>,
}

/// A list: `{"data": [...], "has_more": bool}`, newest first.
#[derive(Serialize, Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

/// A tag or a form: `{"id", "name", "created_at"}`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// `GET /v1/workspace`.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct WorkspaceBody {
    pub id: String,
    pub name: String,
}

/// A mailbox: `{"id", "address", "created_at"}`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MailboxBody {
    pub id: String,
    pub address: String,
    pub created_at: String,
}

/// A sending domain: `{"id", "domain", "status", "txt_name", "txt_value",
/// "verified_at"}`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DomainBody {
    pub id: String,
    pub domain: String,
    pub status: String,
    pub txt_name: String,
    pub txt_value: String,
    pub verified_at: Option<String>,
}
