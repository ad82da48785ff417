//! `GET /gateway/check`: the gateway check for reverse proxies, and each
//! resource's RFC 9728 metadata document, which its `401`s name. Parses what
//! the proxy forwarded, calls `resources::gateway::check`, answers: `200`
//! with the identity headers, or exactly what `/v1` would answer.

use super::v1::caller::{authorization, Authorization};
use super::v1::error;
use super::{client_ip, Svc};
use crate::credentials::bearer::Principal;
use crate::node::state::Services;
use crate::resources::gateway::{self, Allowed, Forwarded, Refused};
use crate::resources::Registry;
use crate::v1::check::Presented;
use crate::v1::V1Error;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // GET for nginx and Traefik; Envoy's ext_authz asks with the original
    // request's method (its body is never read).
    cfg.route("/gateway/check", web::route().to(check))
        // Before `/.well-known/oauth-protected-resource/{path}` (`wellknown`).
        .route(
            "/.well-known/oauth-protected-resource/gateway/{id}",
            web::get().to(metadata),
        );
}

impl gateway::Node for Services {
    fn resources(&self) -> &Registry {
        &self.resources
    }
}

/// A resource's RFC 9728 document, which its `401`s name.
pub fn metadata_url(svc: &Services, resource_id: &str) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/gateway/{resource_id}",
        svc.config.issuer
    )
}

/// A header's value as text; `Some("")` for one that is not visible ASCII
/// (the check refuses it as a path it cannot read).
fn header_text<'r>(req: &'r HttpRequest, names: &[&str]) -> Option<&'r str> {
    let value = names.iter().find_map(|n| req.headers().get(*n))?;
    Some(value.to_str().unwrap_or(""))
}

/// `?resource=`, once; a repeated one names no resource.
fn resource_param(req: &HttpRequest) -> Result<Option<std::borrow::Cow<'_, str>>, V1Error> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if k == "resource" {
            if found.is_some() {
                return Err(V1Error::ParameterInvalid(
                    "The resource parameter must not be repeated.".into(),
                ));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

async fn check(svc: Svc, req: HttpRequest) -> HttpResponse {
    let resource = match resource_param(&req) {
        Ok(r) => r,
        Err(e) => return error::response(&e, None),
    };
    let method = header_text(&req, &["x-forwarded-method", "x-original-method"]);
    let uri = header_text(&req, &["x-forwarded-uri", "x-original-uri"]);
    let dpop;
    let presented = match authorization(&req) {
        Authorization::Bearer(credential) => Presented::Bearer(credential),
        Authorization::Dpop(token) => {
            dpop = super::v1::dpop::forwarded(&req, token, method, uri);
            Presented::Dpop(dpop.presented())
        }
        Authorization::Nothing => Presented::Nothing,
        Authorization::Malformed => Presented::Malformed,
    };
    let forwarded = Forwarded {
        resource: resource.as_deref(),
        method,
        uri,
        presented,
        client: client_ip(&svc, &req),
    };
    let node: Arc<Services> = svc.clone().into_inner();
    match gateway::check(&node, forwarded).await {
        Ok(allowed) => allow(&allowed),
        Err(Refused::BadRequest(e)) => error::response(&e, None),
        Err(Refused::ByResource(e, id)) => error::response(&e, Some(&metadata_url(&svc, &id))),
    }
}

/// The identity headers of an allowed request (names given once, not parsed
/// at each response).
const WORKSPACE_ID: header::HeaderName = header::HeaderName::from_static("x-keygate-workspace-id");
const SCOPES: header::HeaderName = header::HeaderName::from_static("x-keygate-scopes");
const CREDENTIAL: header::HeaderName = header::HeaderName::from_static("x-keygate-credential");
const CLIENT_ID: header::HeaderName = header::HeaderName::from_static("x-keygate-client-id");
const SUBJECT: header::HeaderName = header::HeaderName::from_static("x-keygate-subject");

/// `200`, empty, with who the caller is for the upstream.
fn allow(allowed: &Allowed) -> HttpResponse {
    let p = &allowed.principal;
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((WORKSPACE_ID, p.workspace_id()));
    match p {
        Principal::ApiKey(k) => {
            b.insert_header((SCOPES, k.scopes.join(" ")))
                .insert_header((CREDENTIAL, format!("api_key:{}", k.id)));
        }
        Principal::AccessToken(t) => {
            b.insert_header((SCOPES, t.scopes.join(" ")))
                .insert_header((CREDENTIAL, format!("authorization:{}", t.authorization_id)))
                .insert_header((CLIENT_ID, t.client_id.as_str()))
                .insert_header((SUBJECT, t.sub.as_str()));
        }
    }
    b.finish()
}

/// RFC 9728 §3 for a registered resource: this issuer, and its routes' scopes.
async fn metadata(svc: Svc, id: web::Path<String>) -> HttpResponse {
    let node: Arc<Services> = svc.clone().into_inner();
    let snapshot = match gateway::snapshot(&node).await {
        Ok(s) => s,
        Err(e) => return error::response(&e, None),
    };
    let Some(r) = snapshot.by_id(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let i = &svc.config.issuer;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(serde_json::json!({
            "resource": r.identifier,
            "resource_name": r.name,
            "authorization_servers": [i],
            "jwks_uri": format!("{i}/.well-known/jwks.json"),
            "scopes_supported": r.scopes(),
            "bearer_methods_supported": ["header"],
            "resource_signing_alg_values_supported": [crate::credentials::signing_keys::ALGORITHM],
        }))
}
