//! Mailboxes: sending identities of a workspace, and the credentials outside
//! sending tools present for them over SMTP.
//!
//! `sasl` is the SMTP side: the authentication service Postfix asks when a client
//! says `AUTH`. It knows nothing of mailboxes itself; the caller hands it an
//! [`sasl::Authenticator`] that checks an address and a mailbox auth key.

pub mod sasl;
