//! `Authorization: DPoP <token>` on `/v1` (RFC 9449 §7.1): the token, the
//! request's one `DPoP` proof header, and the method and URL the proof must
//! name (the issuer's origin and path with the request's path).

use crate::v1::dpop::DpopPresented;
use actix_web::HttpRequest;

/// A DPoP presentation, owned until the check borrows it.
pub struct DpopRequest {
    token: String,
    proof: Option<String>,
    htm: String,
    htu: String,
}

impl DpopRequest {
    pub fn presented(&self) -> DpopPresented<'_> {
        DpopPresented {
            token: &self.token,
            proof: self.proof.as_deref(),
            htm: &self.htm,
            htu: &self.htu,
        }
    }
}

/// The request's DPoP presentation of `token` (from `Authorization: DPoP`).
pub fn from_request(req: &HttpRequest, token: &str, issuer: &str) -> DpopRequest {
    DpopRequest {
        token: token.to_string(),
        proof: proof(req),
        htm: req.method().as_str().to_string(),
        htu: format!("{issuer}{}", req.path()),
    }
}

/// At the gateway check, the proof names the original request (RFC 9449
/// §4.3): its method as forwarded, and its URL from `X-Forwarded-Proto`
/// (else `https`), `X-Forwarded-Host` and the forwarded URI's path without
/// its query. Without a host the URL is empty, which no proof names.
pub fn forwarded(
    req: &HttpRequest,
    token: &str,
    method: Option<&str>,
    uri: Option<&str>,
) -> DpopRequest {
    let first = |name: &str| {
        let value = req.headers().get(name)?.to_str().ok()?;
        value
            .split(',')
            .next()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let path = uri.map_or("", |u| u.split(['?', '#']).next().unwrap_or(""));
    let htu = match first("x-forwarded-host") {
        Some(host) => format!(
            "{}://{host}{path}",
            first("x-forwarded-proto").unwrap_or("https")
        ),
        None => String::new(),
    };
    DpopRequest {
        token: token.to_string(),
        proof: proof(req),
        htm: method.unwrap_or("").to_string(),
        htu,
    }
}

/// The request's one `DPoP` header (`None` when there is none, or more than
/// one).
fn proof(req: &HttpRequest) -> Option<String> {
    let mut proofs = req.headers().get_all("dpop");
    match (proofs.next(), proofs.next()) {
        (Some(p), None) => p.to_str().ok().map(str::to_string),
        _ => None,
    }
}
