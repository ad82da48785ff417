//! What a presented credential is: the API key format, the access-token signing
//! keys, the one bearer check with its cache, the revocation events that keep
//! the cache true, and usage counting.

pub mod bearer;
pub mod cache;
pub mod revocation;
pub mod scopes;
pub mod sealing;
pub mod signing_keys;
pub mod usage;
