//! `keygate demo`: the demo app's callback page, which shows the code it got
//! and the command that exchanges it.

use super::Svc;
use crate::node::demo;
use crate::oauth::Params;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/callback", web::get().to(callback));
}

#[derive(Template)]
#[template(path = "demo_callback.html")]
struct CallbackTemplate<'a> {
    error: Option<&'a str>,
    error_description: &'a str,
    iss: &'a str,
    command: &'a str,
    issuer: &'a str,
}

async fn callback(svc: Svc, req: HttpRequest) -> HttpResponse {
    if !svc.config.demo {
        return super::pages::error_page(StatusCode::NOT_FOUND, "There is no such page.");
    }
    let params = Params::parse(req.query_string().as_bytes());
    let get = |n: &str| params.get(n).ok().flatten().unwrap_or("");
    let client_id = super::with_conn(&svc, |_, conn| demo::client_id(conn))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let issuer = &svc.config.issuer;
    let command = format!(
        "curl -s -X POST {issuer}/oauth/token -d grant_type=authorization_code -d client_id={client_id} -d code={} -d code_verifier={} --data-urlencode redirect_uri={}",
        get("code"),
        demo::VERIFIER,
        demo::redirect_uri(&svc.config)
    );
    let page = CallbackTemplate {
        error: Some(get("error")).filter(|e| !e.is_empty()),
        error_description: get("error_description"),
        iss: get("iss"),
        command: &command,
        issuer,
    };
    let Ok(body) = page.render() else {
        return super::render_failed();
    };
    super::html(StatusCode::OK, body)
}
