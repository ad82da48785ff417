//! Security properties that cut across endpoints: headers, abuse limits, size
//! limits, secrets in logs and at rest, clean shutdown.

use crate::support::*;
use std::time::Duration;

mod headers;
mod hostile_input;
mod isolation;
mod rate_limits;
mod secrets;
mod shutdown;
