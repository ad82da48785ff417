//! One running keygate node: the services every handler shares, the abuse
//! limits, and the background tasks (revocation feed, usage flush, housekeeping).

pub mod demo;
pub mod login;
pub mod maintenance;
pub mod names;
pub mod quota;
pub mod ratelimit;
pub mod state;
