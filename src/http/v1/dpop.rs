//! `Authorization: DPoP <token>` on `/v1` (RFC 9449 §7.1): the token, the
//! request's one `DPoP` proof header, and the method and URL the proof must
//! name (the issuer's origin and path with the request's path).

use crate::v1::dpop::DpopPresented;
use actix_web::http::header;
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

/// The request's DPoP presentation; `None` when its scheme is not `DPoP`.
pub fn from_request(req: &HttpRequest, issuer: &str) -> Option<DpopRequest> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("dpop") {
        return None;
    }
    let token = token.trim();
    let mut proofs = req.headers().get_all("dpop");
    let proof = match (proofs.next(), proofs.next()) {
        (Some(p), None) => p.to_str().ok().map(str::to_string),
        _ => None,
    };
    Some(DpopRequest {
        token: token.to_string(),
        proof,
        htm: req.method().as_str().to_string(),
        htu: format!("{issuer}{}", req.path()),
    })
}
