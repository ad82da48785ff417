//! The domain error every area returns. Each boundary maps it once: the CLI to
//! one line on stderr, `/v1` to its envelope, OAuth endpoints to RFC 6749 errors,
//! pages to an HTML error.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// A sending domain that is not verified for the workspace (or an address
    /// outside its verified domains): `/v1`'s `domain_not_verified`.
    #[error("{0}")]
    NotVerified(String),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] crate::db::PoolError),
    /// A fault of the server itself (a failed worker): always a 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }
    pub fn not_verified(msg: impl Into<String>) -> Self {
        Error::NotVerified(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    /// A database that is away (pool timeout, lost connection) rather than a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Pool(_)
                | Error::Db(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ClosedConnection,
                    _,
                ))
                | Error::Db(diesel::result::Error::BrokenTransactionManager)
        )
    }
}

impl From<crate::db::batch::Unanswered> for Error {
    fn from(e: crate::db::batch::Unanswered) -> Self {
        match e {
            crate::db::batch::Unanswered::Pool(e) => Error::Pool(e),
            crate::db::batch::Unanswered::Failed(e) => Error::Db(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
