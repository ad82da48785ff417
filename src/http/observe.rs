//! Per-request observation: a request id (`X-Request-Id`), one log line per
//! request (method, route, status, duration; never the query string), and the
//! request metrics.

use crate::metrics::METRICS;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use std::time::Instant;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    (v.len() <= 64
        && !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| v.to_string())
}

/// Metrics are labelled from a closed set only: a made-up method is "other",
/// so callers cannot add series.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// This request's id, for the middleware inside (`http::panic`).
#[derive(Clone)]
pub struct RequestId(pub String);

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // 128 random bits from the thread's generator: no system call a request.
    let id = incoming_id(&req).unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let method = method_label(req.method());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.call(req).await.inspect_err(|e| {
        // An error from a middleware inside (a panicked handler): actix
        // answers it; count and log it like any other request.
        let status = e.as_response_error().status_code().as_u16();
        METRICS
            .requests
            .with_label_values(&["error", method, &status.to_string()])
            .inc();
        log_request(method, "error", status, started, &id);
    })?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::observe_request(&route, method, status, seconds);
    if route != "/metrics" && route != "/healthz" {
        log_request(method, &route, status, started, &id);
    }
    Ok(res)
}

/// One line of the request log.
fn log_request(method: &str, route: &str, status: u16, started: Instant, id: &str) {
    log::info!(
        target: "keygate::request",
        "{method} {route} {status} {:.3}ms request_id={id}",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn made_up_methods_share_one_label() {
        use actix_web::http::Method;
        for i in 0..1000 {
            let m = Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            assert_eq!(super::method_label(&m), "other");
        }
        assert_eq!(super::method_label(&Method::GET), "GET");
    }
}

#[cfg(test)]
mod proptests {
    use actix_web::http::header::HeaderValue;
    use proptest::prelude::*;

    proptest! {
        // X-Request-Id is echoed only when it is short and plain.
        #[test]
        fn request_id_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100), text in "\\PC*") {
            for candidate in [bytes, text.into_bytes()] {
                let Ok(v) = HeaderValue::from_bytes(&candidate) else { continue };
                let req = actix_web::test::TestRequest::default()
                    .insert_header((super::REQUEST_ID, v))
                    .to_srv_request();
                if let Some(id) = super::incoming_id(&req) {
                    prop_assert!(id.len() <= 64 && id.is_ascii());
                }
            }
        }
    }
}
