//! `/admin/v1/webhooks`.

use super::{caller, change, gone, json_body, list_query, post, read, to_value, Answer, Made};
use crate::http::Svc;
use crate::webhooks;
use actix_web::{web, HttpRequest};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::post().to(create))
        .route("/webhooks", web::get().to(list))
        .route("/webhooks/{id}", web::delete().to(delete))
        .route("/webhooks/{id}/deliveries", web::get().to(deliveries));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    events: Option<Vec<String>>,
}

async fn create(svc: Svc, req: HttpRequest, payload: web::Payload) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, raw): (NewEndpoint, _) = json_body(&req, payload).await?;
    post(&svc, &req, caller, raw, move |svc, conn, _| {
        let endpoint = webhooks::create(
            conn,
            &svc.config.outbound_allowed_hosts,
            svc.config.master_key.as_ref(),
            &body.url,
            &body.events.unwrap_or_default(),
        )?;
        Ok(Made::created(to_value(&endpoint)).secret("secret"))
    })
    .await
}

async fn list(svc: Svc, req: HttpRequest) -> Answer {
    caller(&svc, &req).await?;
    let (paging, q) = list_query(&req)?;
    if q.email.is_some() || q.external_id.is_some() {
        return Err(super::AdminError::invalid(
            "webhook endpoints are listed by page only",
        ));
    }
    read(&svc, move |_, conn| {
        Ok(to_value(&webhooks::list(conn, &paging)?))
    })
    .await
}

async fn delete(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    let caller = caller(&svc, &req).await?;
    let id = id.into_inner();
    change(&svc, caller, move |_, conn, _| {
        webhooks::delete(conn, &id)?;
        Ok(gone())
    })
    .await
}

async fn deliveries(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let (paging, _) = list_query(&req)?;
    let id = id.into_inner();
    read(&svc, move |_, conn| {
        Ok(to_value(&webhooks::deliveries(conn, &id, &paging)?))
    })
    .await
}
