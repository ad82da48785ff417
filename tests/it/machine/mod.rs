//! Machine clients and agents: client credentials, private_key_jwt, DPoP and
//! identity assertion grants, through the real server.

mod at_resources;
mod client_credentials;
mod dpop;
mod id_jag;
mod openid_client;
mod private_key_jwt;
mod registered_keys;
mod settings;
