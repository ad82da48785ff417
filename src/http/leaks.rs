//! `POST /api-keys/leaks`: leaked-credential reports in GitHub's
//! secret-scanning partner format ("Secret scanning partner program" in
//! GitHub's documentation). The signature is checked over the raw body before
//! anything else reads it; an unsigned or badly signed report changes nothing.
//! Without `KEYGATE_LEAK_REPORT_KEYS` the endpoint does not exist (404).

use super::{client_address, read_body_up_to, BodyError, Svc};
use crate::apikeys::leak_reports::{self, API_KEYS};
use crate::apikeys::leaks::{self, KEY_IDENTIFIER_HEADER, MAX_BODY_BYTES, SIGNATURE_HEADER};
use crate::credentials::leaked::LeakedCredentials;
use crate::mailboxes::leaks::MAILBOX_AUTH_KEYS;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// The credential kinds a report can revoke, by prefix: API keys (`kgk_`) and
/// mailbox auth keys (`kgm_`). Any other token is answered `false_positive`.
const STORES: &[&dyn LeakedCredentials] = &[&API_KEYS, &MAILBOX_AUTH_KEYS];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys/leaks", web::post().to(report));
}

/// Why a report was not acted on, each with its answer.
enum Refusal {
    TooLarge,
    Unreadable,
    /// Missing, unknown, malformed or bad signature: all one answer (the log
    /// says which).
    Unsigned,
    Malformed(leaks::ReportError),
    Failed,
}

impl Refusal {
    fn response(self) -> HttpResponse {
        let (status, kind, code, message) = match self {
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "payload_too_large",
                "The report is too large.".to_string(),
            ),
            Refusal::Unreadable => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_body",
                "The report could not be read.".to_string(),
            ),
            Refusal::Unsigned => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_signature",
                "The report's signature could not be verified.".to_string(),
            ),
            Refusal::Malformed(e) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_report",
                e.to_string(),
            ),
            Refusal::Failed => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "service_unavailable",
                "The report could not be processed; send it again.".to_string(),
            ),
        };
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"error": {"type": kind, "code": code, "message": message}}))
    }
}

async fn report(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Some(keys) = svc.leak_report_keys.clone() else {
        return HttpResponse::NotFound().finish();
    };
    let body = match read_body_up_to(payload, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Refusal::TooLarge.response(),
        Err(BodyError::Broken) => return Refusal::Unreadable.response(),
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let signed = keys.verify_headers(
        header(KEY_IDENTIFIER_HEADER),
        header(SIGNATURE_HEADER),
        &body,
    );
    let reporter = client_address(&svc, &req);
    if let Err(e) = signed {
        log::warn!("leak report from {reporter} refused: {e}");
        return Refusal::Unsigned.response();
    }
    let reports = match leaks::parse_report(&body) {
        Ok(r) => r,
        Err(e) => return Refusal::Malformed(e).response(),
    };
    let answered = super::with_conn(&svc, move |svc, conn| {
        let cache = &svc.credentials.cache;
        leak_reports::process(conn, cache, &reports, STORES, Some(&reporter))
    })
    .await;
    match answered {
        Ok(rows) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(rows),
        Err(e) => {
            log::error!("a leak report could not be processed: {e}");
            Refusal::Failed.response()
        }
    }
}
