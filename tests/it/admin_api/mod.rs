//! The admin API (`/admin/v1`) and events (webhooks), through the real server.

mod credentials;
mod directory;
mod errors;
mod openapi;
mod webhooks;
