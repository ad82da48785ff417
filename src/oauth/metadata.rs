//! Discovery documents: RFC 8414 (authorization server) and RFC 9728 (the `/v1`
//! protected resource).

use crate::config::Config;
use crate::credentials::scopes;
use serde_json::{json, Value};

pub fn authorization_server(config: &Config) -> Value {
    let i = &config.issuer;
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    ];
    let mut metadata = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "revocation_endpoint": format!("{i}/oauth/revoke"),
        "introspection_endpoint": format!("{i}/oauth/introspect"),
        "jwks_uri": format!("{i}/.well-known/jwks.json"),
        "scopes_supported": scopes::all_names(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::oauth::token::jwt_bearer::GRANT,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": crate::credentials::jose::ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": crate::credentials::jose::ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": crate::credentials::jose::ALGORITHMS,
        "dpop_signing_alg_values_supported": crate::credentials::dpop::ALGORITHMS,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{i}/openapi.json"),
        // draft-ietf-oauth-client-id-metadata-document: an https client_id
        // with a path is fetched as the client's metadata (`KEYGATE_CIMD`).
        "client_id_metadata_document_supported": config.cimd,
    });
    // RFC 8414 §2 / RFC 7591 §3: advertised only while registration is open.
    if config.registration_open {
        metadata["registration_endpoint"] = json!(format!("{i}/oauth/register"));
    }
    metadata
}

pub fn protected_resource(config: &Config) -> Value {
    let i = &config.issuer;
    json!({
        "resource": config.resource(),
        "authorization_servers": [i],
        "jwks_uri": format!("{i}/.well-known/jwks.json"),
        "scopes_supported": scopes::all_names(),
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported": [crate::credentials::signing_keys::ALGORITHM],
        "resource_name": "keygate workspace API",
    })
}
